package localaws

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/Admiral-Piett/goaws/app/models"
)

// pollInterval is how often a long-polling ReceiveMessage looks at its queue
// again; goaws polls at the same rate.
const pollInterval = 100 * time.Millisecond

// sharedActions are the goaws actions that only read the queue and topic
// maps (they may still change messages, under goaws' own locks). They run
// concurrently with each other. Every other action changes the maps or the
// attributes that the shared actions read without a lock, so it runs alone.
var sharedActions = map[string]bool{
	"SendMessage":               true,
	"SendMessageBatch":          true,
	"ReceiveMessage":            true,
	"DeleteMessage":             true,
	"DeleteMessageBatch":        true,
	"ChangeMessageVisibility":   true,
	"GetQueueAttributes":        true,
	"GetQueueUrl":               true,
	"ListQueues":                true,
	"PurgeQueue":                true,
	"Publish":                   true,
	"PublishBatch":              true,
	"ListTopics":                true,
	"ListSubscriptions":         true,
	"ListSubscriptionsByTopic":  true,
	"GetSubscriptionAttributes": true,
}

// guard serializes goaws requests that would race. goaws reads its queue
// and topic maps without holding their lock in most handlers, so a
// CreateQueue in one test and a SendMessage in another is a data race (and
// can crash the process with a concurrent map access). The guard runs
// actions that change those maps exclusively and all others shared.
//
// A long-polling ReceiveMessage must not hold the shared lock while it
// waits, or it would stall every CreateQueue for up to 20 seconds; the guard
// therefore does the waiting itself and asks goaws for one immediate
// receive at a time.
type guard struct {
	mu   sync.RWMutex
	next http.Handler
}

// newGuard wraps the goaws router.
func newGuard(next http.Handler) *guard {
	return &guard{next: next}
}

// ServeHTTP implements http.Handler.
func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, ok := goawsAction(r)
	if !ok {
		// goaws would panic on an X-Amz-Target without a dot.
		http.Error(w, "missing or malformed X-Amz-Target", http.StatusBadRequest)
		return
	}
	switch {
	case action == "ReceiveMessage" && isJSONProtocol(r):
		g.longPoll(w, r)
	case sharedActions[action]:
		g.mu.RLock()
		defer g.mu.RUnlock()
		g.next.ServeHTTP(w, r)
	default:
		g.mu.Lock()
		defer g.mu.Unlock()
		g.next.ServeHTTP(w, r)
	}
}

// longPoll serves a JSON ReceiveMessage by polling goaws without a wait
// until a message arrives, the wait time passes or the client goes away.
func (g *guard) longPoll(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	var input map[string]json.RawMessage
	if err := json.Unmarshal(body, &input); err != nil {
		// Let goaws report the malformed request in its own words.
		g.serveShared(w, r, body)
		return
	}
	wait, ok := intField(input, "WaitTimeSeconds")
	if !ok {
		wait = g.queueWaitTime(input)
	}
	// A negative wait makes goaws skip its own polling loop (it counts down
	// wait*10 iterations) and answer at once.
	input["WaitTimeSeconds"] = json.RawMessage("-1")
	once, err := json.Marshal(input)
	if err != nil {
		http.Error(w, "encode body", http.StatusInternalServerError)
		return
	}

	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		rec := httptest.NewRecorder()
		g.serveShared(rec, r, once)
		if rec.Code != http.StatusOK || hasMessages(rec.Body.Bytes()) || !time.Now().Before(deadline) {
			copyResponse(w, rec)
			return
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-r.Context().Done():
			t.Stop()
			copyResponse(w, rec)
			return
		case <-t.C:
		}
	}
}

// serveShared passes r with the given body to goaws under the shared lock.
func (g *guard) serveShared(w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.next.ServeHTTP(w, r2)
}

// queueWaitTime returns the ReceiveMessageWaitTimeSeconds attribute of the
// queue named in a ReceiveMessage input, which applies when the request
// does not set WaitTimeSeconds.
func (g *guard) queueWaitTime(input map[string]json.RawMessage) int {
	var queueURL string
	if err := json.Unmarshal(input["QueueUrl"], &queueURL); err != nil {
		return 0
	}
	name := queueURL[strings.LastIndex(queueURL, "/")+1:]
	g.mu.RLock()
	defer g.mu.RUnlock()
	models.SyncQueues.RLock()
	defer models.SyncQueues.RUnlock()
	if q, ok := models.SyncQueues.Queues[name]; ok {
		return q.ReceiveMessageWaitTimeSeconds
	}
	return 0
}

// goawsAction returns the action a goaws request asks for, from the
// X-Amz-Target header (JSON protocol) or the Action parameter (query
// protocol). It reports false for a JSON request without a usable target.
func goawsAction(r *http.Request) (string, bool) {
	if !isJSONProtocol(r) {
		return r.FormValue("Action"), true
	}
	_, action, ok := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	return action, ok && action != ""
}

// isJSONProtocol mirrors how goaws tells the AWS JSON protocol from the
// query protocol.
func isJSONProtocol(r *http.Request) bool {
	return r.Header.Get("Content-Type") == "application/x-amz-json-1.0"
}

// intField decodes input[key] as an integer, reporting whether it was set.
func intField(input map[string]json.RawMessage, key string) (int, bool) {
	raw, ok := input[key]
	if !ok {
		return 0, false
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false
	}
	return n, true
}

// hasMessages reports whether a JSON ReceiveMessage response holds at least
// one message.
func hasMessages(body []byte) bool {
	var out struct{ Messages []json.RawMessage }
	return json.Unmarshal(body, &out) == nil && len(out.Messages) > 0
}

// copyResponse writes a recorded response to w.
func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
