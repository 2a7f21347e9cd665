package sink

import (
	"errors"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Redact returns a database URL fit for logs: the password, in URL or
// key=value form, is replaced by "xxxxx".
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	if pw := password(dsn); pw != "" {
		return strings.ReplaceAll(dsn, pw, "xxxxx")
	}
	return dsn
}

// scrub returns err with any occurrence of the DSN's password removed from
// its text, so that an error that quotes the connection string can be logged.
func scrub(err error, dsn string) error {
	if err == nil {
		return nil
	}
	pw := password(dsn)
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }

// Unwrap keeps errors.Is working for sentinels, but not errors.As on types
// whose text would show the password again.
func (s *scrubbed) Unwrap() error {
	var pgErr *pgconn.PgError
	if errors.As(s.err, &pgErr) {
		return nil
	}
	return errors.Unwrap(s.err)
}

// password extracts the password from a URL or key=value connection string.
func password(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		pw, _ := u.User.Password()
		return pw
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			return strings.Trim(v, "'")
		}
	}
	return ""
}
