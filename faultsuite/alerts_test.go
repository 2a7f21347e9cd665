package faultsuite

import (
	"testing"
	"time"
)

// alertsScenario runs two workers with alerts on (the built-in pack, every
// notification delivered twice), kills one with SIGKILL at random moments,
// mid-batch and mid-delivery, against a webhook that refuses a share of its
// requests. Every alert must be stored exactly once, for exactly the events
// the rules match, and delivered at least once.
func alertsScenario(t *testing.T, p profile, seed uint64) result {
	h, url := newWebhook(t, 20*time.Millisecond)
	h.refuseEvery, h.refuseFirst = 7, 70
	w := newWorld(t, seed, worldOptions{maxReceive: p.kills + 3, env: h.env(url)})
	w.seed(p.objects, days, p.corpus, 2)
	workers := []*proc{w.startWorker(), w.startWorker()}
	var kills int64
	w.spread(p.kills, p.settle, func(i int) {
		workers[0].kill()
		kills++
		t.Logf("kill %d: %s", kills, w.state())
		workers[0] = w.startWorker()
	})
	res := finish(t, w, p, "alerts under kill -9", kills, workers...)
	c := checkAlerts(t, w, p.settle, h)
	t.Logf("alerts: %d expected, %d stored once each; %d delivered (%d delivered again after a kill), in %d requests of which %d refused by the flaky webhook",
		c.expected, c.stored, c.delivered, c.redelivered, c.requests, c.refused)
	return res
}
