package faultsuite

import (
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

// alertReceiver is a webhook that checks every signature, answers slowly
// (so that a kill lands mid-delivery) and refuses one request in seven of
// its first seventy.
type alertReceiver struct {
	key []byte

	mu       sync.Mutex
	byID     map[string]int
	requests int
	refused  int
	bad      int
}

func (r *alertReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if err := alert.Verify(r.key, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.requests <= 70 && r.requests%7 == 0 {
		r.refused++
		http.Error(w, "flaky", http.StatusServiceUnavailable)
		return
	}
	r.byID[req.Header.Get("webhook-id")]++
}

// alertsScenario runs two workers with alerts on (the built-in pack, every
// notification delivered twice), kills one with SIGKILL at random moments,
// mid-batch and mid-delivery, against a webhook that refuses a share of its
// requests. Every alert must be stored exactly once, for exactly the events
// the rules match, and delivered at least once.
func alertsScenario(t *testing.T, p profile, seed uint64) result {
	recv := &alertReceiver{key: []byte("the fault suite's webhook key..."), byID: map[string]int{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	w := newWorld(t, seed, worldOptions{maxReceive: p.kills + 3, env: map[string]string{
		"PGTRAIL_ALERT_WEBHOOK_URL":    srv.URL,
		"PGTRAIL_ALERT_WEBHOOK_SECRET": "whsec_dGhlIGZhdWx0IHN1aXRlJ3Mgd2ViaG9vayBrZXkuLi4=",
		"PGTRAIL_ALERT_MAX_AGE":        "0s", // the corpus is from 2024
		"PGTRAIL_ALERT_THROTTLE":       "0",
	}})
	w.seed(p.objects, days, p.corpus, 2)
	workers := []*proc{w.startWorker(), w.startWorker()}
	var kills int64
	w.spread(p.kills, p.settle, func(i int) {
		workers[0].kill()
		kills++
		t.Logf("kill %d: %s", kills, w.state())
		workers[0] = w.startWorker()
	})
	res := finish(t, w, p, "alerts: kill -9, duplicates", kills, workers...)

	// The oracle: the built-in pack on every stored event, which verify
	// found stored exactly once.
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
	deadline := time.Now().Add(p.settle)
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
	recv.mu.Lock()
	delivered, redelivered, undelivered := 0, 0, 0
	for id := range stored {
		switch n := recv.byID[id]; {
		case n == 0:
			undelivered++
		case n > 1:
			redelivered += n - 1
			delivered++
		default:
			delivered++
		}
	}
	requests, refused, bad := recv.requests, recv.refused, recv.bad
	recv.mu.Unlock()
	if len(want) == 0 || missing > 0 || unexpected > 0 || waiting > 0 || undelivered > 0 || bad > 0 {
		t.Errorf("alerts: %d expected, %d stored (%d missing, %d unexpected), %d still waiting, %d never delivered, %d badly signed requests",
			len(want), len(stored), missing, unexpected, waiting, undelivered, bad)
	}
	t.Logf("alerts: %d expected, %d stored once each; %d delivered (%d delivered again after a kill), in %d requests of which %d refused by the flaky webhook",
		len(want), len(stored), delivered, redelivered, requests, refused)
	return res
}
