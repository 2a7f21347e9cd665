package sink

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	const pw = "Tr41l!p@ss:w/rd#%?&"
	enc := url.UserPassword("pgtrail", pw).String()
	cases := []struct{ dsn, want string }{
		{"postgres://" + enc + "@db.example:5432/trail?sslmode=verify-full",
			"postgres://pgtrail:xxxxx@db.example:5432/trail?sslmode=verify-full"},
		{"postgresql://pgtrail@db.example/trail", "postgresql://pgtrail@db.example/trail"},
		{"postgres://db.example/trail", "postgres://db.example/trail"},
		// Not percent-encoded, as people paste them: everything up to the
		// last '@' is the user information.
		{"postgres://pgtrail:" + pw + "@db.example:5432/trail", "postgres://pgtrail:xxxxx@db.example:5432/trail"},
		{"POSTGRES://u:Sekr3t%zz@h/db", "POSTGRES://u:xxxxx@h/db"},
		{"postgres://u@h/db?sslmode=require&password=Sekr3t&x=1", "postgres://u@h/db?sslmode=require&password=xxxxx&x=1"},
		{"postgres://u@h/db?sslpassword=Sekr3t", "postgres://u@h/db?sslpassword=xxxxx"},
		{"host=h user=u password=Sekr3t dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password = 'Se k\\'r3t' dbname=d", "host=h password = xxxxx dbname=d"},
		{"host=h password='unterminated Sekr3t", "host=h password=xxxxx"},
		{"host=h sslpassword=Sekr3t", "host=h sslpassword=xxxxx"},
		{"host=h user=u", "host=h user=u"},
	}
	for _, c := range cases {
		got := Redact(c.dsn)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.dsn, got, c.want)
		}
		if strings.Contains(got, "Sekr3t") || strings.Contains(got, "r3t") || strings.Contains(got, "Tr41l") {
			t.Errorf("Redact(%q) = %q shows the password", c.dsn, got)
		}
	}
}

var errSentinel = errors.New("sentinel")

func TestScrub(t *testing.T) {
	t.Parallel()
	const pw = "Tr41l!p@ss:w/rd#%?&"
	for _, dsn := range []string{
		"postgres://" + url.UserPassword("u", pw).String() + "@h/db",
		"postgres://u:" + pw + "@h/db",
		"host=h password='" + strings.ReplaceAll(pw, "'", `\'`) + "'",
		"postgres://u@h/db?password=" + url.QueryEscape(pw),
	} {
		for _, shown := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
			base := fmt.Errorf("cannot use %s here: %w", shown, errSentinel)
			err := scrub(base, dsn)
			if strings.Contains(err.Error(), "Tr41l") {
				t.Errorf("scrub(%q, %q) = %q", base, dsn, err)
			}
			if !errors.Is(err, errSentinel) {
				t.Errorf("scrub(%q) lost the sentinel it wraps", base)
			}
		}
	}
	if err := scrub(errors.New("plain"), "postgres://u:pw@h/db"); err.Error() != "plain" {
		t.Errorf("scrub changed an error without the password: %q", err)
	}
}
