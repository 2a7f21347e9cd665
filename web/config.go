package web

import (
	"errors"
	"fmt"
	"time"
)

// Config is what pgtrail serve reads from its environment for the page;
// the listener, TLS and keys are the API's (lookup.Config).
type Config struct {
	// Enabled serves the page on the API's listener.
	Enabled bool `env:"PGTRAIL_WEB, default=true" want:"true or false"`
	// SessionTTL ends a session unused for this long.
	SessionTTL time.Duration `env:"PGTRAIL_WEB_SESSION_TTL, default=30m" want:"a duration of 1m or more"`
	// MaxSession ends every session this long after its login.
	MaxSession time.Duration `env:"PGTRAIL_WEB_MAX_SESSION, default=12h" want:"a duration no shorter than PGTRAIL_WEB_SESSION_TTL"`
	// SecureCookie marks the session cookie Secure on plain HTTP too, for a
	// proxy in front that terminates TLS.
	SecureCookie bool `env:"PGTRAIL_WEB_SECURE_COOKIE, default=false" want:"true or false"`
}

// Validate names the variable at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("config: PGTRAIL_WEB_SESSION_TTL: want at least 1m, got %s", c.SessionTTL))
	}
	if c.MaxSession < c.SessionTTL {
		errs = append(errs, fmt.Errorf("config: PGTRAIL_WEB_MAX_SESSION: want at least PGTRAIL_WEB_SESSION_TTL (%s), got %s", c.SessionTTL, c.MaxSession))
	}
	return errors.Join(errs...)
}

// Options turns the configuration into a Handler's options, less the
// store, the keys and the log.
func (c *Config) Options() Options {
	return Options{SessionTTL: c.SessionTTL, MaxSession: c.MaxSession, SecureCookie: c.SecureCookie}
}
