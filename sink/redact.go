package sink

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Redact returns a database URL fit for logs: the password (and a client
// key's sslpassword), in URL or keyword/value form, is replaced by "xxxxx".
// It errs on the safe side: in
// a URL whose password holds characters that should have been
// percent-encoded ('@', '/', '#', '?'), everything up to the last '@' is
// taken for the user information, and a password query parameter is
// hidden too.
func Redact(dsn string) string {
	if rest, ok := cutURLScheme(dsn); ok {
		scheme := dsn[:len(dsn)-len(rest)]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, _, hasPW := strings.Cut(rest[:at], ":")
			if hasPW {
				rest = user + ":xxxxx" + rest[at:]
			}
		}
		return scheme + queryPassword.ReplaceAllString(rest, "${1}xxxxx")
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

var (
	// queryPassword is a password (or a client key's sslpassword)
	// parameter of a URL's query.
	queryPassword = regexp.MustCompile(`([?&](?:ssl)?password=)[^&#]*`)
	// kvPassword is the password or sslpassword of a keyword/value string,
	// quoted (with backslash escapes) or not.
	kvPassword = regexp.MustCompile(`(\b(?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s]*)`)
)

// cutURLScheme returns what follows postgres:// or postgresql://.
func cutURLScheme(dsn string) (string, bool) {
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if len(dsn) >= len(scheme) && strings.EqualFold(dsn[:len(scheme)], scheme) {
			return dsn[len(scheme):], true
		}
	}
	return "", false
}

// scrub returns err with any occurrence of the DSN's password removed from
// its text, so that an error that quotes the connection string can be logged.
func scrub(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, pw := range passwords(dsn) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
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

// passwords returns the forms the DSN's password may take in a message:
// as written, decoded and encoded, as a URL parser and as Redact read it,
// longest first.
func passwords(dsn string) []string {
	var out []string
	add := func(pw string) {
		if pw != "" && !slices.Contains(out, pw) {
			out = append(out, pw)
		}
	}
	addRaw := func(raw string) {
		add(raw)
		if dec, err := url.PathUnescape(raw); err == nil {
			add(dec)
		}
		if dec, err := url.QueryUnescape(raw); err == nil {
			add(dec)
		}
	}
	if rest, ok := cutURLScheme(dsn); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				addRaw(pw)
			}
		}
		if u, err := url.Parse(dsn); err == nil {
			if pw, ok := u.User.Password(); ok {
				add(pw)
			}
			add(u.Query().Get("password"))
			add(u.Query().Get("sslpassword"))
		}
		for _, m := range queryPassword.FindAllString(rest, -1) {
			_, pw, _ := strings.Cut(m, "=")
			addRaw(pw)
		}
	} else {
		for _, m := range kvPassword.FindAllStringSubmatchIndex(dsn, -1) {
			v := dsn[m[3]:m[1]]
			if strings.HasPrefix(v, "'") {
				v = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
				add(v)
				v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v)
			}
			add(v)
		}
	}
	// A message may quote the password encoded otherwise than the DSN.
	for _, pw := range slices.Clone(out) {
		add(url.QueryEscape(pw))
		add(url.PathEscape(pw))
		if _, userinfo, ok := strings.Cut(url.UserPassword("", pw).String(), ":"); ok {
			add(userinfo)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
