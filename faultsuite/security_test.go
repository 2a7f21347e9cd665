package faultsuite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// runPgtrail runs one pgtrail command to its end with env on top of a bare
// environment, and returns its exit status and everything it printed.
func runPgtrail(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("pgtrail %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// withPort returns the URL u with its port replaced.
func withPort(u string, port int) string {
	p, _ := url.Parse(u)
	p.Host = fmt.Sprintf("127.0.0.1:%d", port)
	return p.String()
}

// withQuery returns the URL u with the query parameters of q added.
func withQuery(u, q string) string {
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

// TestPasswordNeverLogged runs pgtrail with a database password, through a
// full run and every failure path that logs a connection error or a
// connection string, at debug level, and checks that no form of the
// password appears in anything it printed or served.
func TestPasswordNeverLogged(t *testing.T) {
	needsChildren(t)
	ctx := t.Context()
	var b [12]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[6:])
	// Every character that URLs and keyword/value strings treat specially.
	password := "Tr41l!p@ss:w/rd#%?&=+ '\\-" + tag
	role := "pgtrail_secret_" + hex.EncodeToString(b[:6])

	admin, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	lit, err := admin.PgConn().EscapeString(password)
	if err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{role}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE ROLE "+ident+" LOGIN CREATEROLE PASSWORD '"+lit+"'"); err != nil {
		t.Fatal(err)
	}
	// Registered before the database, so it runs after the database is gone.
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.ServerURL())
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	db := pgtest.New(t)
	dbName := strings.TrimPrefix(mustParse(t, db).Path, "/")
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" OWNER TO "+ident); err != nil {
		t.Fatal(err)
	}
	u := mustParse(t, db)
	u.User = url.UserPassword(role, password)
	secretURL := u.String()

	// A full run, with metrics and health served.
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	w := newWorld(t, 42, worldOptions{dbURL: secretURL, env: map[string]string{
		"PGTRAIL_LOG_LEVEL": "debug", "PGTRAIL_HTTP_ADDR": httpAddr,
	}})
	w.seed(20, 2, false, 1)
	pr := w.startWorker()
	if !w.waitDone(time.Minute) {
		t.FailNow()
	}
	var printed []string // everything pgtrail printed or served
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		printed = append(printed, httpGet(t, "http://"+httpAddr+path))
	}
	if code := pr.stop(15 * time.Second); code != 0 {
		t.Errorf("run: exit status %d after SIGTERM", code)
	}
	if res := w.verify("password run", 0); res.lost != 0 {
		t.Errorf("the run lost %d events", res.lost)
	}

	closed := freePort(t)
	kv := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s password='%s'",
		closed, role, dbName, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password))
	failures := []struct {
		name string
		dsn  string
		args []string
		env  map[string]string
	}{
		{"run, database down", withPort(secretURL, closed), []string{"run"}, nil},
		{"migrate, database down", withPort(secretURL, closed), []string{"migrate"}, nil},
		{"status, database down", withPort(secretURL, closed), []string{"status"}, nil},
		{"ingest, database down", withPort(secretURL, closed), []string{"ingest", t.TempDir()}, nil},
		{"keyword/value, database down", kv, []string{"migrate"}, nil},
		{"password in the query", withQuery(withPort(fmt.Sprintf("postgres://%s@127.0.0.1/%s", role, dbName), closed),
			"password="+url.QueryEscape(password)), []string{"migrate"}, nil},
		{"invalid port", strings.Replace(withPort(secretURL, closed), fmt.Sprint(closed), "99999", 1), []string{"migrate"}, nil},
		{"invalid sslmode", withQuery(withPort(secretURL, closed), "sslmode=bogus"), []string{"migrate"}, nil},
		{"password not percent-encoded", fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s", role, password, closed, dbName), []string{"migrate"}, nil},
		{"invalid setting", secretURL, []string{"run"}, map[string]string{"PGTRAIL_POLLERS": "0"}},
	}
	for _, f := range failures {
		env := map[string]string{}
		for k, v := range w.env {
			env[k] = v
		}
		env["DATABASE_URL"] = f.dsn
		env["PGTRAIL_HTTP_ADDR"] = ""
		for k, v := range f.env {
			env[k] = v
		}
		code, out := runPgtrail(t, env, f.args...)
		if code == 0 {
			t.Errorf("%s: pgtrail %v succeeded; want a failure\n%s", f.name, f.args, out)
		}
		if strings.TrimSpace(out) == "" {
			t.Errorf("%s: pgtrail %v failed without a word", f.name, f.args)
		}
		t.Logf("%s: exit %d: %s", f.name, code, lastLine(out))
		printed = append(printed, out)
	}

	// The daemon with its database unreachable: /readyz says why, without
	// naming the database's user, name or host.
	httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pr = w.startWorker("DATABASE_URL="+withPort(secretURL, closed), "PGTRAIL_MIGRATE=false", "PGTRAIL_HTTP_ADDR="+httpAddr)
	deadline := time.Now().Add(30 * time.Second)
	for httpGetCode(t, "http://"+httpAddr+"/healthz") != http.StatusOK {
		if time.Now().After(deadline) || !pr.running() {
			t.Fatalf("the daemon without a database did not serve /healthz:\n%s", tail(pr.log, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready := httpGet(t, "http://"+httpAddr+"/readyz")
	if !strings.Contains(ready, "database unreachable") {
		t.Errorf("/readyz with the database down says %q; want database unreachable", ready)
	}
	for _, detail := range []string{role, dbName, "127.0.0.1"} {
		if strings.Contains(ready, detail) {
			t.Errorf("/readyz with the database down names %q: %q", detail, ready)
		}
	}
	printed = append(printed, ready)
	pr.stop(15 * time.Second)

	for _, p := range w.procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			t.Fatal(err)
		}
		printed = append(printed, string(b))
	}
	needles := map[string]bool{password: true, tag: true, "Tr41l": true, url.QueryEscape(password): true,
		url.PathEscape(password): true, strings.TrimPrefix(url.UserPassword("", password).String(), ":"): true}
	for _, text := range printed {
		for needle := range needles {
			if i := strings.Index(text, needle); i >= 0 {
				t.Errorf("the password (%q) appears in pgtrail's output: …%s…", needle, text[max(0, i-80):min(len(text), i+len(needle)+40)])
			}
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func httpGetCode(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestPostgresTLS checks that sslmode in DATABASE_URL is honoured: TLS is
// asked for when required, a CA file that is missing or bogus fails with a
// clear error, a server certificate from another CA is refused under
// verify-full, and the right CA gives a TLS connection.
func TestPostgresTLS(t *testing.T) {
	needsChildren(t)
	plain := pgtest.New(t)
	dir := t.TempDir()
	bogus := filepath.Join(dir, "bogus.pem")
	if err := os.WriteFile(bogus, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	migrate := func(dsn string) (int, string) {
		return runPgtrail(t, map[string]string{"DATABASE_URL": dsn}, "migrate")
	}
	// A private server without TLS (the shared one may have it on).
	noTLS := strings.Split(newCluster(t, nil).newDatabase("pgtrail_plain"), "?")[0]
	base := strings.Split(plain, "?")[0]
	for _, c := range []struct {
		name, dsn, want string
	}{
		{"require against a server without TLS", noTLS + "?sslmode=require", "refused TLS"},
		{"verify-full with a missing CA file", base + "?sslmode=verify-full&sslrootcert=" + url.QueryEscape(filepath.Join(dir, "missing.pem")), "missing.pem"},
		{"verify-full with a bogus CA file", base + "?sslmode=verify-full&sslrootcert=" + url.QueryEscape(bogus), "CA"},
	} {
		code, out := migrate(c.dsn)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, output %q; want a failure that mentions %q", c.name, code, out, c.want)
		} else {
			t.Logf("%s: %s", c.name, lastLine(out))
		}
	}

	// A private server with TLS, its certificate signed by a CA of ours.
	caPEM, certPEM, keyPEM := makeCerts(t)
	otherCA, _, _ := makeCerts(t)
	cluster := newCluster(t, func(c *cluster) []string {
		for name, data := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM} {
			path := filepath.Join(c.dir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			c.chown(path)
		}
		return []string{"ssl = on",
			"ssl_cert_file = '" + filepath.Join(c.dir, "server.crt") + "'",
			"ssl_key_file = '" + filepath.Join(c.dir, "server.key") + "'"}
	})
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other-ca.pem")
	_ = os.WriteFile(caFile, caPEM, 0o600)
	_ = os.WriteFile(otherFile, otherCA, 0o600)
	db := strings.Split(cluster.newDatabase("pgtrail_tls"), "?")[0]

	if code, out := migrate(db + "?sslmode=verify-full&sslrootcert=" + url.QueryEscape(otherFile)); code == 0 || !strings.Contains(out, "certificate") {
		t.Errorf("verify-full with another CA: exit %d, %q; want a certificate error", code, out)
	} else {
		t.Logf("verify-full with another CA: %s", lastLine(out))
	}
	tlsURL := db + "?sslmode=verify-full&sslrootcert=" + url.QueryEscape(caFile)
	if code, out := migrate(tlsURL); code != 0 {
		t.Fatalf("verify-full with the right CA: exit %d\n%s", code, out)
	}

	// The daemon's own connections are encrypted.
	w := newWorld(t, 43, worldOptions{dbURL: tlsURL})
	w.seed(10, 1, false, 1)
	pr := w.startWorker()
	if !w.waitDone(time.Minute) {
		t.FailNow()
	}
	var plainConns, tlsConns int
	if err := w.db.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'pgtrail'`).Scan(&plainConns, &tlsConns); err != nil {
		t.Fatal(err)
	}
	if plainConns != 0 || tlsConns == 0 {
		t.Errorf("pgtrail holds %d connections without TLS and %d with; want all with TLS", plainConns, tlsConns)
	}
	if code := pr.stop(15 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
}

// makeCerts returns a new CA's certificate, and a server certificate for
// 127.0.0.1 and localhost that it signed, with its key, all in PEM.
func makeCerts(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgtrail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
