package lookup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
)

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text, err string
		keys            int
	}{
		{"keys and comments", "# analysts\nAKIA1:secret1\n\n  AKIA2 : secret:with:colons  \n", "", 2},
		{"no key", "# nobody\n", "no access key", 0},
		{"no colon", "AKIA1\n", "line 1", 0},
		{"empty secret", "AKIA1:\n", "line 1", 0},
		{"twice", "AKIA1:a\nAKIA1:b\n", "line 2: access key ID AKIA1 given twice", 0},
		{"slash in ID", "AK/IA:a\n", "line 1", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			creds, err := lookup.LoadCredentials(path)
			switch {
			case c.err == "" && err != nil:
				t.Fatal(err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("got %v, want an error with %q", err, c.err)
			case c.err == "" && creds.Len() != c.keys:
				t.Fatalf("%d keys, want %d", creds.Len(), c.keys)
			}
		})
	}
}

// TestReload: a key added to the file works after Reload (SIGHUP), a key
// removed stops working, and a broken file keeps the keys in force.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("AKIAOLD:old-secret\n")
	creds, err := lookup.LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lookup.New(lookup.Options{Store: emptyStore{}, Credentials: creds, Rate: rate.Inf, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptestServer(t, srv)
	ctx := context.Background()
	call := func(id, secret string) error {
		_, err := client(ts, id, secret).LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
		return err
	}
	if err := call("AKIAOLD", "old-secret"); err != nil {
		t.Fatal(err)
	}
	expectCode(t, call("AKIANEW", "new-secret"), "UnrecognizedClientException")

	write("# rotated\nAKIANEW:new-secret\n")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := call("AKIANEW", "new-secret"); err != nil {
		t.Errorf("the new key after reload: %v", err)
	}
	expectCode(t, call("AKIAOLD", "old-secret"), "UnrecognizedClientException")

	write("garbage\n")
	if err := srv.Reload(); err == nil {
		t.Error("a broken file reloaded")
	}
	if err := call("AKIANEW", "new-secret"); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

type emptyStore struct{}

func (emptyStore) LookupEvents(context.Context, sink.LookupQuery) ([]sink.LookupEvent, error) {
	return nil, nil
}
