package faultsuite

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var longFlag = flag.Bool("long", false, "run the long fault profile (also PGTRAIL_FAULTS=long)")

// profile sizes the fault suite. The short one runs in every go test; the
// long one is for a release or a change to the message path.
type profile struct {
	name string
	// objects is the number of generated objects per scenario; corpus adds
	// the real CloudTrail corpus (../shared/corpus/s3) to each.
	objects int
	corpus  bool
	// kills, terminations, restarts and sigterms are the injections of the
	// scenarios that do them one at a time.
	kills, terminations, restarts, sigterms int
	// alertKills is how many times the alert delivery scenario kills both
	// workers mid-delivery.
	alertKills int
	// copies is how many times the duplicate-delivery scenario sends each
	// notification.
	copies int
	// bigRecords is the size, in records, of the object that a SIGTERM
	// interrupts.
	bigRecords int
	// outage is how long the outage scenario keeps the database away.
	outage time.Duration
	// settle bounds how long a scenario may take to ingest everything after
	// its faults.
	settle time.Duration
}

var (
	shortProfile = profile{
		name: "short", objects: 200, corpus: true,
		kills: 3, terminations: 4, restarts: 2, sigterms: 1, copies: 4, alertKills: 2,
		bigRecords: 4000, outage: 45 * time.Second, settle: 2 * time.Minute,
	}
	longProfile = profile{
		name: "long", objects: 3000, corpus: true,
		kills: 10, terminations: 15, restarts: 5, sigterms: 5, copies: 10, alertKills: 5,
		bigRecords: 20000, outage: 3 * time.Minute, settle: 10 * time.Minute,
	}
)

func currentProfile() profile {
	if *longFlag || os.Getenv("PGTRAIL_FAULTS") == "long" {
		return longProfile
	}
	return shortProfile
}

// needsChildren skips a test under -short: the suite builds the binary and
// runs it as child processes.
func needsChildren(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds pgtrail and runs it as child processes")
	}
}

var built struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// binary builds cmd/pgtrail once per test process and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "pgtrail-faultsuite-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "pgtrail")
		cmd := exec.Command("go", "build", "-o", built.path, "github.com/pgtrail/pgtrail/cmd/pgtrail")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
