package faultsuite

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is a private PostgreSQL server that a test may stop and restart:
// the shared server on 5432 serves other packages' tests at the same time
// and must never be restarted. It runs from a temporary directory on a
// free loopback port, with trust authentication, and is removed when the
// test ends.
type cluster struct {
	t    testing.TB
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // parent of data/ and the server log
	port int
	// owner is the OS user the server runs as when the test runs as root,
	// which initdb refuses.
	owner *user.User
	// URL is the postgres database of the cluster.
	URL string
}

// pgBinDir finds the server binaries: PG_BIN, pg_config --bindir, or the
// newest /usr/lib/postgresql/*/bin.
func pgBinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb) found; set PG_BIN")
}

// newCluster creates and starts a private cluster. setup, if not nil, may
// write files into c.dir (see c.chown) and returns lines for
// postgresql.conf.
func newCluster(t testing.TB, setup func(c *cluster) []string) *cluster {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		t.Skip(err)
	}
	c := &cluster{t: t, bin: bin, port: freePort(t)}
	c.dir, err = os.MkdirTemp("", "pgtrail-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(c.dir) })
	if os.Geteuid() == 0 {
		if c.owner, err = user.Lookup("postgres"); err != nil {
			t.Skip("running as root and no postgres user to run a private cluster as")
		}
		c.chown(c.dir)
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", c.port),
		"unix_socket_directories = ''",
		"fsync = off",
		"max_connections = 200",
		"logging_collector = off",
	}
	if setup != nil {
		conf = append(conf, setup(c)...)
	}
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.stop("immediate") })
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// chown gives a file in c.dir to the server's OS user.
func (c *cluster) chown(path string) {
	c.t.Helper()
	if c.owner == nil {
		return
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		c.t.Fatal(err)
	}
}

// run runs one of the server binaries as the cluster's owner.
func (c *cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// start starts the server and waits until it accepts connections.
func (c *cluster) start() error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return nil
}

// stop stops the server: mode "fast" disconnects clients and shuts down
// cleanly, "immediate" kills it as a crash would (recovery at next start).
func (c *cluster) stop(mode string) error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// restart stops the server in mode, keeps it down for down, and starts it.
func (c *cluster) restart(mode string, down time.Duration) error {
	if err := c.stop(mode); err != nil {
		return err
	}
	time.Sleep(down)
	return c.start()
}

// newDatabase creates an empty database in the cluster and returns its URL.
func (c *cluster) newDatabase(name string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		c.t.Fatal(err)
	}
	u, _ := url.Parse(c.URL)
	u.Path = "/" + name
	return u.String()
}

// freePort returns a loopback TCP port that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
