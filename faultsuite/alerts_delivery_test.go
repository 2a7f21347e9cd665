package faultsuite

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/sink"
)

// relayBatch and relayLease are the relay's defaults in pgtrail run
// (alert.Config.WithDefaults): at most relayBatch alerts are claimed at
// once, and a claim that is never finished (its worker killed) is claimed
// again when its lease ends.
const (
	relayBatch = 50
	relayLease = 30 * time.Second
)

// faultWait is how long a delivery scenario waits for a delivery in
// flight before its next fault: past a lease, an alert a fault left
// claimed is delivered again, so nothing in flight by then means every
// alert is delivered, and the scenario injects no more faults.
const faultWait = relayLease + 15*time.Second

// webhook is a Standard Webhooks receiver for the fault suite. It checks
// every signature, and that every delivery of one webhook-id is the same
// alert: the id in the body is the webhook-id, and it is the id derived
// from the rule and the event the body names (sink.AlertID), so that a
// receiver may drop a copy by its webhook-id alone. It answers after delay,
// so that a kill lands while requests are in flight, and refuses every
// refuseEvery-th of its first refuseFirst requests (none when 0).
type webhook struct {
	key                      []byte
	delay                    time.Duration
	refuseEvery, refuseFirst int

	mu       sync.Mutex
	byID     map[string]int
	first    map[string]string // webhook-id: what its first delivery said
	inFlight int
	requests int
	refused  int
	bad      []string
}

func newWebhook(t *testing.T, delay time.Duration) (*webhook, string) {
	h := &webhook{key: []byte("the fault suite's webhook key..."), delay: delay,
		byID: map[string]int{}, first: map[string]string{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// env is the workers' alert settings for the receiver at url: every alert
// of the built-in pack sent, whatever its age, none throttled.
func (h *webhook) env(url string) map[string]string {
	return map[string]string{
		"PGTRAIL_ALERT_WEBHOOK_URL":    url,
		"PGTRAIL_ALERT_WEBHOOK_SECRET": "whsec_dGhlIGZhdWx0IHN1aXRlJ3Mgd2ViaG9vayBrZXkuLi4=",
		"PGTRAIL_ALERT_MAX_AGE":        "0s", // the corpus is from 2024
		"PGTRAIL_ALERT_THROTTLE":       "0",
	}
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h.mu.Lock()
	h.inFlight++
	h.mu.Unlock()
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	h.requests++
	if err := alert.Verify(h.key, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.bad = append(h.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if h.refuseEvery > 0 && h.requests <= h.refuseFirst && h.requests%h.refuseEvery == 0 {
		h.refused++
		http.Error(w, "flaky", http.StatusServiceUnavailable)
		return
	}
	id := req.Header.Get("webhook-id")
	var b struct {
		Data alert.Payload `json:"data"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Data.ID != id {
		h.bad = append(h.bad, fmt.Sprintf("webhook-id %s, body %.200s: %v", id, body, err))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if e := b.Data.Event; e != nil {
		if want := sink.AlertID(b.Data.Rule.ID, e.ID, e.Time); want != id {
			h.bad = append(h.bad, fmt.Sprintf("webhook-id %s for rule %s and event %s at %s, whose alert id is %s",
				id, b.Data.Rule.ID, e.ID, e.Time, want))
		}
		said := b.Data.Rule.ID + " " + e.ID + " " + e.Time.String()
		if prev, ok := h.first[id]; ok && prev != said {
			h.bad = append(h.bad, fmt.Sprintf("webhook-id %s was %s, then %s", id, prev, said))
		}
		h.first[id] = said
	}
	h.byID[id]++
}

// waitInFlight waits until a request is being answered, and reports
// whether one was within timeout.
func (h *webhook) waitInFlight(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := h.inFlight
		h.mu.Unlock()
		if n > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// waitMidDelivery waits until more alerts are delivered (so that faults
// are spread over the deliveries; the corpus raises about a hundred) and
// then until one is in flight; it reports whether one was, within timeout
// for each wait.
func (h *webhook) waitMidDelivery(more int, timeout time.Duration) bool {
	for target := h.delivered() + more; h.delivered() < target; {
		if !h.waitInFlight(timeout) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h.waitInFlight(timeout)
}

// delivered returns how many webhook-ids were delivered so far.
func (h *webhook) delivered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byID)
}

// alertCounts are the figures of an alert scenario.
type alertCounts struct {
	expected, stored, delivered, redelivered, requests, refused int
}

// checkAlerts waits (up to settle) until every stored alert is settled and
// checks the alerts against an oracle, the built-in pack run on every
// stored event (which verify found stored exactly once): every alert
// stored once, none missing, none unexpected, every one delivered to the
// webhook at least once, every request well signed and each webhook-id
// always the same alert.
func checkAlerts(t *testing.T, w *world, settle time.Duration, h *webhook) alertCounts {
	t.Helper()
	set := sigma.Builtin()
	want := map[string]bool{}
	rows, err := w.db.Query(w.ctx, `SELECT event_id, event_time, coalesce(event_source, ''), coalesce(event_name, ''), record::text FROM cloudtrail_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, source, name, record string
		var at time.Time
		if err := rows.Scan(&id, &at, &source, &name, &record); err != nil {
			t.Fatal(err)
		}
		for _, m := range set.Match(source, name, []byte(record)) {
			want[sink.AlertID(m.Rule.ID, id, at)] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(settle)
	var waiting int
	for {
		if err := w.db.QueryRow(w.ctx, `SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	stored := map[string]bool{}
	rows, err = w.db.Query(w.ctx, `SELECT id::text FROM cloudtrail_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, unexpected := 0, 0
	for id := range want {
		if !stored[id] {
			missing++
		}
	}
	for id := range stored {
		if !want[id] {
			unexpected++
		}
	}
	c := alertCounts{expected: len(want), stored: len(stored)}
	h.mu.Lock()
	undelivered := 0
	for id := range stored {
		switch n := h.byID[id]; {
		case n == 0:
			undelivered++
		default:
			c.delivered++
			c.redelivered += n - 1
		}
	}
	c.requests, c.refused = h.requests, h.refused
	bad := append([]string(nil), h.bad...)
	h.mu.Unlock()
	if len(want) == 0 || missing > 0 || unexpected > 0 || waiting > 0 || undelivered > 0 || len(bad) > 0 {
		t.Errorf("alerts: %d expected, %d stored (%d missing, %d unexpected), %d still waiting, %d never delivered, %d bad requests %q",
			len(want), len(stored), missing, unexpected, waiting, undelivered, len(bad), bad)
	}
	return c
}

// alertsKillBothScenario runs two workers with a webhook destination and
// kills both with SIGKILL at once, each time while the webhook is
// answering a delivery, then starts them again. The alerts a killed relay
// had claimed are claimed again when their lease ends and delivered again
// with the same webhook-id: every alert is delivered at least once, none is
// lost, and the copies are bounded by what the killed relays held, a batch
// each.
func alertsKillBothScenario(t *testing.T, p profile, seed uint64) result {
	h, url := newWebhook(t, 30*time.Millisecond)
	w := newWorld(t, seed, worldOptions{maxReceive: p.kills + 3, env: h.env(url)})
	w.seed(p.objects/4, days, p.corpus, 1)
	workers := []*proc{w.startWorker(), w.startWorker()}
	var kills int64
	for i := range p.alertKills {
		if !h.waitMidDelivery(10, faultWait) {
			t.Logf("kill %d: no delivery in flight within %s: every alert delivered", i+1, faultWait)
			break
		}
		for _, pr := range workers {
			pr.kill()
		}
		kills++
		t.Logf("kill %d of both workers mid-delivery: %d alerts delivered, %s", kills, h.delivered(), w.state())
		workers = []*proc{w.startWorker(), w.startWorker()}
	}
	return finishDeliveries(t, w, p, h, "alerts: both workers kill -9 mid-delivery", "kills of both workers", kills, workers...)
}

// alertsRestartScenario restarts a private PostgreSQL under two workers
// with a webhook destination, while deliveries are in flight, in turn
// cleanly and as a crash: a relay whose claim or whose record of a delivery
// fails leaves the alerts to be claimed again, and every alert is
// delivered at least once.
func alertsRestartScenario(t *testing.T, p profile, seed uint64) result {
	c := newCluster(t, nil)
	h, url := newWebhook(t, 30*time.Millisecond)
	w := newWorld(t, seed, worldOptions{dbURL: c.newDatabase("pgtrail_alerts"), maxReceive: p.restarts + 3, env: h.env(url)})
	w.seed(p.objects/4, days, p.corpus, 1)
	workers := []*proc{w.startWorker(), w.startWorker()}
	var restarts int64
	for i := range p.restarts {
		if !h.waitMidDelivery(10, faultWait) {
			t.Logf("restart %d: no delivery in flight within %s: every alert delivered", i+1, faultWait)
			break
		}
		mode := []string{"fast", "immediate"}[i%2]
		if err := c.restart(mode, time.Second); err != nil {
			t.Fatal(err)
		}
		restarts++
		t.Logf("restart %d (%s) mid-delivery: %d alerts delivered, %s", restarts, mode, h.delivered(), w.state())
	}
	return finishDeliveries(t, w, p, h, "alerts: postgres restart mid-delivery", "restarts", restarts, workers...)
}

// finishDeliveries finishes a delivery scenario of two workers: the common
// checks, then those of the alerts, and the bound on deliveries made again
// after n faults: a batch per relay and fault.
func finishDeliveries(t *testing.T, w *world, p profile, h *webhook, fault, faults string, n int64, workers ...*proc) result {
	t.Helper()
	if n == 0 {
		t.Errorf("%s: no fault landed while a delivery was in flight", fault)
	}
	res := finish(t, w, p, fault, n, workers...)
	c := checkAlerts(t, w, p.settle, h)
	if limit := int(n) * len(workers) * relayBatch; c.redelivered > limit {
		t.Errorf("alerts: %d deliveries again after %d %s; at most %d (a batch of %d per relay)",
			c.redelivered, n, faults, limit, relayBatch)
	}
	t.Logf("alerts: %d expected, %d stored once each; %d delivered, %d delivered again (same webhook-id) after %d %s, in %d requests",
		c.expected, c.stored, c.delivered, c.redelivered, n, faults, c.requests)
	return res
}
