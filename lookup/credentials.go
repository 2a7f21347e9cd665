package lookup

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Credentials are the access keys that may call the API: a file of
// ACCESS_KEY_ID:SECRET_ACCESS_KEY lines, # comments and blank lines ignored,
// named by PGTRAIL_API_CREDENTIALS. Reload reads the file again (pgtrail
// serve calls it on SIGHUP); until it succeeds the keys read last stay in
// force. Credentials is safe for concurrent use.
type Credentials struct {
	path string

	mu   sync.RWMutex
	keys map[string]string // access key ID → secret
}

// LoadCredentials reads the credentials file at path. A file that names no
// key is an error: a server nobody may call is a mistake.
func LoadCredentials(path string) (*Credentials, error) {
	c := &Credentials{path: path}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// StaticCredentials holds the given keys (ID → secret) and has no file to
// reload: for tests and embedding.
func StaticCredentials(keys map[string]string) *Credentials {
	return &Credentials{keys: keys}
}

// Reload reads the file again and replaces the keys with its own; on error
// the keys stay as they were.
func (c *Credentials) Reload() error {
	if c.path == "" {
		return nil
	}
	f, err := os.Open(c.path)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	keys, err := parseCredentials(f)
	if err != nil {
		return fmt.Errorf("credentials: %s: %w", c.path, err)
	}
	c.mu.Lock()
	c.keys = keys
	c.mu.Unlock()
	return nil
}

// Len is the number of keys in force.
func (c *Credentials) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

// secret returns the secret of an access key ID.
func (c *Credentials) secret(id string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.keys[id]
	return s, ok
}

// Verify tells whether secret is the secret of the access key id, in time
// that does not depend on how much of it is right: for the web page's login
// form, which takes the same keys as the API.
func (c *Credentials) Verify(id, secret string) bool {
	want, ok := c.secret(id)
	// Compare even for an unknown ID, so that timing does not tell
	// which IDs exist.
	eq := subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1
	return ok && eq && secret != ""
}

// Known tells whether the access key id is in force: a web session ends
// when its key is removed from the file.
func (c *Credentials) Known(id string) bool {
	_, ok := c.secret(id)
	return ok
}

// parseCredentials reads ID:SECRET lines. It never puts a secret in an
// error: only line numbers and IDs.
func parseCredentials(r io.Reader) (map[string]string, error) {
	keys := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, secret, ok := strings.Cut(line, ":")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		switch {
		case !ok || id == "" || secret == "":
			return nil, fmt.Errorf("line %d: want ACCESS_KEY_ID:SECRET_ACCESS_KEY", n)
		case strings.ContainsAny(id, " \t/,="):
			// The ID travels in the Authorization header's Credential=ID/…
			return nil, fmt.Errorf("line %d: access key ID %q has a space, slash, comma or equals sign", n, id)
		case keys[id] != "":
			return nil, fmt.Errorf("line %d: access key ID %s given twice", n, id)
		}
		keys[id] = secret
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no access key (one ACCESS_KEY_ID:SECRET_ACCESS_KEY per line)")
	}
	return keys, nil
}
