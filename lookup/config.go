package lookup

import (
	"errors"
	"fmt"
	"math"
	"net"

	"golang.org/x/time/rate"
)

// Config is what pgtrail serve reads from its environment, besides
// DATABASE_URL and PGTRAIL_READER_ROLE.
type Config struct {
	// Addr is the API's own listener, loopback unless told otherwise.
	Addr string `env:"PGTRAIL_API_ADDR, default=127.0.0.1:8455"`
	// CredentialsFile names the file of ACCESS_KEY_ID:SECRET_ACCESS_KEY
	// lines that may sign requests; re-read on SIGHUP. Required.
	CredentialsFile string `env:"PGTRAIL_API_CREDENTIALS"`
	// TLSCert and TLSKey, both or neither, are PEM files: with them the API
	// speaks HTTPS only.
	TLSCert string `env:"PGTRAIL_API_TLS_CERT"`
	TLSKey  string `env:"PGTRAIL_API_TLS_KEY"`
	// TokenKey authenticates NextTokens, at least 32 bytes; set the same
	// value on every server behind one endpoint, so that a page's token
	// works on the next server. Empty: a random key per process.
	TokenKey string `env:"PGTRAIL_API_TOKEN_KEY"`
	// Rate is the requests per second each access key may make (CloudTrail
	// allows 2); 0 lifts the limit (beyond AWS).
	Rate float64 `env:"PGTRAIL_API_RATE, default=2" want:"a number of requests per second, 0 (no limit) or more"`
	// Burst is how many requests a key may make at once; 0 means Rate,
	// rounded up.
	Burst int `env:"PGTRAIL_API_BURST, default=0" want:"an integer of 0 (PGTRAIL_API_RATE rounded up) or more"`
	// FullHistory lifts CloudTrail's 90-day window (beyond AWS).
	FullHistory bool `env:"PGTRAIL_API_FULL_HISTORY, default=false" want:"true or false"`
	// MultipleAttributes accepts several LookupAttributes, ANDed (beyond
	// AWS).
	MultipleAttributes bool `env:"PGTRAIL_API_MULTIPLE_ATTRIBUTES, default=false" want:"true or false"`
}

// Validate names the variable at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{name}, args...)...))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("PGTRAIL_API_ADDR", "want host:port, got %q", c.Addr)
	}
	if c.CredentialsFile == "" {
		bad("PGTRAIL_API_CREDENTIALS", "required: a file of ACCESS_KEY_ID:SECRET_ACCESS_KEY lines")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("PGTRAIL_API_TLS_CERT", "and PGTRAIL_API_TLS_KEY go together")
	}
	if c.TokenKey != "" && len(c.TokenKey) < 32 {
		bad("PGTRAIL_API_TOKEN_KEY", "must be at least 32 bytes, got %d", len(c.TokenKey))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		bad("PGTRAIL_API_RATE", "want a number of requests per second, 0 (no limit) or more, got %v", c.Rate)
	}
	if c.Burst < 0 {
		bad("PGTRAIL_API_BURST", "want an integer of 0 (PGTRAIL_API_RATE rounded up) or more, got %d", c.Burst)
	}
	return errors.Join(errs...)
}

// Options turns the configuration into a Server's options, less the store,
// the credentials and the log.
func (c *Config) Options() Options {
	o := Options{
		TokenKey:           []byte(c.TokenKey),
		Rate:               rate.Limit(c.Rate),
		Burst:              c.Burst,
		FullHistory:        c.FullHistory,
		MultipleAttributes: c.MultipleAttributes,
	}
	if c.Rate == 0 {
		o.Rate = rate.Inf
	}
	if o.Burst == 0 && o.Rate != rate.Inf {
		o.Burst = max(1, int(math.Ceil(c.Rate)))
	}
	return o
}
