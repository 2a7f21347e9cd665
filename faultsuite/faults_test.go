package faultsuite

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/internal/faults"
)

// days is how many UTC days, and so partitions, the generated events span.
const days = 20

// scenario is one fault: it seeds its world, runs workers while injecting
// the fault, heals, and returns the figures after the common checks.
type scenario struct {
	name string
	run  func(t *testing.T, p profile, seed uint64) result
	// long keeps the scenario to the long profile: it takes a minute
	// (the relay's 30 s lease must run out after each fault), past the
	// short profile's budget of about 30 s a scenario.
	long bool
}

var scenarios = []scenario{
	{"kill -9", killScenario, false},
	{"pg_terminate_backend", terminateScenario, false},
	{"postgres restart", restartScenario, false},
	{"s3 errors", s3Scenario, false},
	{"sqs errors", sqsScenario, false},
	{"sigterm mid-object", sigtermScenario, false},
	{"simultaneous start", simultaneousScenario, false},
	{"duplicate delivery", duplicateScenario, false},
	{"database outage", outageScenario, false},
	{"alerts under kill -9", alertsScenario, false},
	{"alerts: both workers kill -9 mid-delivery", alertsKillBothScenario, true},
	{"alerts: postgres restart mid-delivery", alertsRestartScenario, true},
}

// TestFaults runs every scenario at once (they share nothing but the
// emulators and the database server) and logs the figures table.
func TestFaults(t *testing.T) {
	needsChildren(t)
	p := currentProfile()
	binary(t)
	var res results
	var names []string
	t.Run("scenarios", func(t *testing.T) {
		// t.Parallel would cap the scenarios at -parallel (GOMAXPROCS);
		// they mostly wait, so they run in goroutines of their own.
		var wg sync.WaitGroup
		for i, sc := range scenarios {
			names = append(names, sc.name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
					if sc.long && p.name != longProfile.name {
						t.Skip("long profile only (-long or PGTRAIL_FAULTS=long)")
					}
					res.add(sc.run(t, p, uint64(i+1)))
				})
			}()
		}
		wg.Wait()
	})
	t.Logf("fault suite, %s profile:\n%s", p.name, res.table(names))
}

// finish heals the proxy, waits for everything to be ingested, checks that
// the workers still serve with a canary and that they are all running, and
// verifies the world.
func finish(t *testing.T, w *world, p profile, fault string, injections int64, workers ...*proc) result {
	t.Helper()
	w.proxy.Set()
	if w.waitDone(p.settle) {
		w.canary(time.Minute)
	}
	for _, pr := range workers {
		if !pr.running() {
			t.Errorf("%s exited (%v); want it still serving", pr.name, pr.err)
		}
	}
	return w.verify(fault, injections)
}

// killScenario kills the worker with SIGKILL at random moments and starts
// it again each time.
func killScenario(t *testing.T, p profile, seed uint64) result {
	w := newWorld(t, seed, worldOptions{maxReceive: p.kills + 3})
	w.seed(p.objects, days, p.corpus, 1)
	pr := w.startWorker()
	var kills int64
	w.spread(p.kills, p.settle, func(int) {
		pr.kill()
		kills++
		t.Logf("kill %d: %s", kills, w.state())
		pr = w.startWorker()
	})
	return finish(t, w, p, "kill -9", kills, pr)
}

// terminateScenario terminates the worker's database connections at
// random moments.
func terminateScenario(t *testing.T, p profile, seed uint64) result {
	w := newWorld(t, seed, worldOptions{maxReceive: p.terminations + 3})
	w.seed(p.objects, days, p.corpus, 1)
	pr := w.startWorker()
	var terminated int64
	w.spread(p.terminations, p.settle, func(int) {
		var n int64
		err := w.db.QueryRow(w.ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
			FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'pgtrail' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		terminated += n
		t.Logf("terminated %d connections: %s", n, w.state())
	})
	return finish(t, w, p, "pg_terminate_backend", terminated, pr)
}

// restartScenario restarts a private PostgreSQL under the worker, in turn
// cleanly (fast) and as a crash (immediate, with recovery at start).
func restartScenario(t *testing.T, p profile, seed uint64) result {
	c := newCluster(t, nil)
	w := newWorld(t, seed, worldOptions{dbURL: c.newDatabase("pgtrail_faults"), maxReceive: p.restarts + 3})
	w.seed(p.objects, days, p.corpus, 1)
	pr := w.startWorker()
	var restarts int64
	w.spread(p.restarts, p.settle, func(i int) {
		mode := []string{"fast", "immediate"}[i%2]
		if err := c.restart(mode, time.Second); err != nil {
			t.Fatal(err)
		}
		restarts++
		t.Logf("restart %d (%s): %s", restarts, mode, w.state())
	})
	return finish(t, w, p, "postgres restart", restarts, pr)
}

// s3Scenario fails a share of S3 requests in every way the proxy knows
// until every object is committed.
func s3Scenario(t *testing.T, p profile, seed uint64) result {
	// A stalled body is given up after 3 s (the default is 30 s).
	w := newWorld(t, seed, worldOptions{maxReceive: 10, env: map[string]string{"PGTRAIL_S3_STALL_TIMEOUT": "3s"}})
	w.seed(p.objects, days, p.corpus, 1)
	w.proxy.Set(
		faults.Rule{Service: faults.S3, Kind: faults.InternalError, Rate: 0.06},
		faults.Rule{Service: faults.S3, Kind: faults.Unavailable, Rate: 0.04},
		faults.Rule{Service: faults.S3, Kind: faults.SlowDown, Rate: 0.04},
		faults.Rule{Service: faults.S3, Kind: faults.Timeout, Rate: 0.02, Hold: 2 * time.Second},
		faults.Rule{Service: faults.S3, Kind: faults.Reset, Rate: 0.02},
		faults.Rule{Service: faults.S3, Kind: faults.ResetMidBody, Rate: 0.04},
		// Headers and half the body, then silence until pgtrail gives up.
		faults.Rule{Service: faults.S3, Kind: faults.Stall, Rate: 0.02},
	)
	pr := w.startWorker()
	if !w.waitCommitted(len(w.objects), p.settle) {
		t.Errorf("not every object committed under S3 faults within %s: %s", p.settle, w.state())
	}
	return finish(t, w, p, "s3 errors", w.proxy.Total(), pr)
}

// sqsScenario fails a share of receives, deletes and visibility changes,
// including answers lost after SQS acted on the request.
func sqsScenario(t *testing.T, p profile, seed uint64) result {
	// A receive is abandoned after the 2 s wait and a 10 s margin.
	w := newWorld(t, seed, worldOptions{maxReceive: 10, env: map[string]string{"PGTRAIL_WAIT_TIME": "2s"}})
	w.seed(p.objects, days, p.corpus, 1)
	receive := []string{"ReceiveMessage"}
	del := []string{"DeleteMessageBatch"}
	change := []string{"ChangeMessageVisibility"}
	w.proxy.Set(
		faults.Rule{Service: faults.SQS, Actions: receive, Kind: faults.InternalError, Rate: 0.10},
		faults.Rule{Service: faults.SQS, Actions: receive, Kind: faults.Reset, Rate: 0.05},
		// The messages are received, and so in flight, but the answer is lost.
		faults.Rule{Service: faults.SQS, Actions: receive, Kind: faults.ResetMidBody, Rate: 0.05},
		// Silence until pgtrail gives up on the receive.
		faults.Rule{Service: faults.SQS, Actions: receive, Kind: faults.Stall, Rate: 0.02},
		faults.Rule{Service: faults.SQS, Actions: del, Kind: faults.InternalError, Rate: 0.15},
		faults.Rule{Service: faults.SQS, Actions: del, Kind: faults.Unavailable, Rate: 0.05},
		// The messages are deleted, but the answer is lost.
		faults.Rule{Service: faults.SQS, Actions: del, Kind: faults.ResetMidBody, Rate: 0.05},
		faults.Rule{Service: faults.SQS, Actions: change, Kind: faults.Unavailable, Rate: 0.3},
	)
	pr := w.startWorker()
	if !w.waitCommitted(len(w.objects), p.settle) {
		t.Errorf("not every object committed under SQS faults within %s: %s", p.settle, w.state())
	}
	return finish(t, w, p, "sqs errors", w.proxy.Total(), pr)
}

// sigtermScenario stops a worker with SIGTERM while it reads a large
// object: it must exit 0 within its grace, commit nothing of the object and
// release the message at once. Then it stops workers with SIGTERM at random
// moments of a normal flow.
func sigtermScenario(t *testing.T, p profile, seed uint64) result {
	// A long visibility timeout tells a released message from an expired one.
	w := newWorld(t, seed, worldOptions{maxReceive: p.sigterms + 4, env: map[string]string{
		"PGTRAIL_SHUTDOWN_GRACE":     "1s",
		"PGTRAIL_VISIBILITY_TIMEOUT": "30s",
	}})
	big := bigObject(w.rng, "big", p.bigRecords)
	w.put(big)
	// Read the object in about 20 s.
	w.proxy.Set(faults.Rule{Name: "big", Service: faults.S3, PathContains: "/big/", Kind: faults.Throttle, Rate: 1,
		BytesPerSecond: max(len(big.body)/20, 1024)})
	w.send(cloudTrailBody(w.bucket, []string{big.key}, true))
	pr := w.startWorker()
	deadline := time.Now().Add(30 * time.Second)
	for w.proxy.Injected()["big"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker never fetched the large object")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // well into the object
	stopped := time.Now()
	if code := pr.stop(15 * time.Second); code != 0 {
		t.Errorf("SIGTERM during a large object: exit status %d, want 0", code)
	}
	if took := time.Since(stopped); took > 8*time.Second {
		t.Errorf("SIGTERM took %s with a 1s grace", took)
	}
	s := w.state()
	if s.ledger != 0 {
		t.Errorf("the interrupted object is in the ledger: %s", s)
	}
	if s.visible != 1 {
		t.Errorf("after SIGTERM: %s; want the message released (visible) at once", s)
	}
	if log, _ := os.ReadFile(pr.log); !strings.Contains(string(log), "releasing it") {
		t.Errorf("no release logged:\n%s", tail(pr.log, 20))
	}
	injections := int64(1)
	w.proxy.Set()

	w.seed(p.objects, days, p.corpus, 1)
	pr = w.startWorker()
	w.spread(p.sigterms, p.settle, func(int) {
		if code := pr.stop(15 * time.Second); code != 0 {
			t.Errorf("SIGTERM: exit status %d, want 0", code)
		}
		injections++
		t.Logf("sigterm %d: %s", injections-1, w.state())
		pr = w.startWorker()
	})
	return finish(t, w, p, "sigterm mid-object", injections, pr)
}

// simultaneousScenario starts workers at the same instant on a database
// that has no schema yet: they race to migrate and to create partitions.
func simultaneousScenario(t *testing.T, p profile, seed uint64) result {
	w := newWorld(t, seed, worldOptions{})
	w.seed(p.objects, 2*days, p.corpus, 1)
	n := 2
	if p.name == "long" {
		n = 4
	}
	var procs []*proc
	for range n {
		procs = append(procs, w.startWorker())
	}
	res := finish(t, w, p, "simultaneous start", int64(n), procs...)
	var versions, distinct int
	if err := w.db.QueryRow(w.ctx, `SELECT count(*), count(DISTINCT version) FROM pgtrail_schema_migrations`).Scan(&versions, &distinct); err != nil {
		t.Fatal(err)
	}
	if versions == 0 || versions != distinct {
		t.Errorf("%d migrations recorded, %d distinct", versions, distinct)
	}
	return res
}

// duplicateScenario sends every notification several times and runs three
// workers, so that the same objects are processed concurrently.
func duplicateScenario(t *testing.T, p profile, seed uint64) result {
	w := newWorld(t, seed, worldOptions{})
	notifications := w.seed(p.objects, days, p.corpus, p.copies)
	var procs []*proc
	for range 3 {
		procs = append(procs, w.startWorker())
	}
	return finish(t, w, p, "duplicate delivery", int64(notifications*(p.copies-1)), procs...)
}

// outageScenario takes the worker's database away, in the middle of the
// ingest, for several visibility timeouts (p.outage: 45 s against the
// workers' 6 s) with a redrive policy of three receives. A worker that
// cannot write must stop taking work and hold what it has until the
// database is back: an outage of any length costs delay, not dead-letter
// traffic. No poison message is planted, so the dead-letter queue must end
// empty.
func outageScenario(t *testing.T, p profile, seed uint64) result {
	c := newCluster(t, nil)
	w := newWorld(t, seed, worldOptions{dbURL: c.newDatabase("pgtrail_outage"), maxReceive: 3, noPoison: true})
	w.seed(p.objects, days, p.corpus, 1)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pr := w.startWorker("PGTRAIL_HTTP_ADDR=" + addr)
	w.waitCommitted(len(w.objects)/5, p.settle)
	t.Logf("stopping the database: %s", w.state())
	if err := c.stop("fast"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()

	// Once the worker has noticed, /readyz says why, and it receives
	// nothing more.
	time.Sleep(min(p.outage/3, 15*time.Second))
	code, body := readyz(addr)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unreachable") {
		t.Errorf("/readyz during the outage = %d %q; want 503 saying the database is unreachable", code, body)
	}
	received := metric(addr, "pgtrail_messages_received_total")
	time.Sleep(p.outage - time.Since(down))
	during := metric(addr, "pgtrail_messages_received_total") - received
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("database back after %s: %s; %v messages received in the outage's last %s",
		time.Since(down).Round(time.Second), w.state(), during, (p.outage - p.outage/3).Round(time.Second))
	return finish(t, w, p, "database outage", 1, pr)
}

// readyz returns the status and body of a worker's /readyz.
func readyz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String())
}

// metric returns the value of an unlabelled metric on a worker's /metrics,
// or -1 when it cannot be read.
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -1
	}
	return v
}
