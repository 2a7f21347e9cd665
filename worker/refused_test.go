package worker_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// refusedRecords are records that PostgreSQL would refuse, each with what
// its reject's reason must say, and the record index it has in the object
// that refusedObject builds.
var refusedRecords = []struct {
	name, record, why string
	index             int
}{
	// A random 10 KB eventID: no B-tree can index it (54000).
	{"long eventID", `{"eventID":"` + randomHex(5<<10) + `","eventTime":"2024-03-01T12:00:00Z","eventName":"GetObject"}`, "eventID", 1},
	// A number beyond numeric's range, which jsonb stores as numeric (22003).
	{"numeric overflow", `{"eventID":"overflow","eventTime":"2024-03-01T12:00:00Z","requestParameters":{"n":1e999999}}`, "22003", 3},
}

// refusedObject is a CloudTrail file of good records around the refused
// ones: prefix-0, the long eventID, prefix-2, the overflow, prefix-4, and
// prefix-5, whose requestParameters has a key with \u0000, which pgtrail
// repairs.
func refusedObject(prefix string) []byte {
	good := func(i int) string {
		return fmt.Sprintf(`{"eventID":"%s-%d","eventTime":"2024-03-01T12:0%d:00Z","eventName":"GetObject"}`, prefix, i, i)
	}
	recs := []string{good(0), refusedRecords[0].record, good(2), refusedRecords[1].record, good(4),
		`{"eventID":"` + prefix + `-5","eventTime":"2024-03-01T12:05:00Z","requestParameters":{"a\u0000b":"x"}}`}
	return []byte(`{"Records":[` + strings.Join(recs, ",") + `]}`)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestRefusedRecordsAreRejected runs the worker over objects that hold
// records PostgreSQL refuses, beside good ones in the same objects and in
// the same batch. The refused records must be in cloudtrail_rejects with
// the reason, every other record stored, the messages deleted at once (no
// retry, nothing in the dead-letter queue), and a redelivery must store
// nothing twice, even once the ledger is gone.
func TestRefusedRecordsAreRejected(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 2)
	const prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/"
	mixed, plain, alone := prefix+"mixed.json.gz", prefix+"plain.json.gz", prefix+"alone.json"
	e.put(mixed, gz(refusedObject("mixed")))
	e.put(plain, trailFile("plain", 4))
	e.put(alone, refusedObject("alone"))
	// Two objects in one message share a batch; the third comes alone.
	msgs := []string{cloudTrailBody(e.bucket, mixed, plain), cloudTrailBody(e.bucket, alone)}
	for _, m := range msgs {
		e.send(m)
	}
	logs := e.startObserved(e.config())
	t.Cleanup(func() { dumpOnFailure(t, logs) })

	check := func(when string) {
		t.Helper()
		e.waitFor(when+": the three objects in the ledger and the queue drained", 45*time.Second, func() bool {
			return e.count(`SELECT count(*) FROM cloudtrail_objects`) == 3 && e.depth(e.queueURL) == 0
		})
		if n := e.depth(e.dlqURL); n != 0 {
			t.Errorf("%s: %d messages in the dead-letter queue, want 0", when, n)
		}
		for _, key := range []string{mixed, alone} {
			for _, r := range refusedRecords {
				var reason string
				err := e.pg.Pool().QueryRow(e.ctx, `SELECT reason FROM cloudtrail_rejects WHERE s3_key = $1 AND record_index = $2`, key, r.index).Scan(&reason)
				if err != nil {
					t.Errorf("%s: %s in %s: no reject (%v)", when, r.name, key, err)
				} else if !strings.Contains(reason, r.why) {
					t.Errorf("%s: %s in %s: reason %q does not say %q", when, r.name, key, reason, r.why)
				}
			}
			if n := e.count(`SELECT count(*) FROM cloudtrail_rejects WHERE s3_key = $1`, key); n != 2 {
				t.Errorf("%s: %d rejects from %s, want 2", when, n, key)
			}
			if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE s3_key = $1`, key); n != 4 {
				t.Errorf("%s: %d events from %s, want its 4 good ones", when, n, key)
			}
			if n := e.count(`SELECT count(*) FROM cloudtrail_objects WHERE s3_key = $1 AND events = 4 AND rejected = 2`, key); n != 1 {
				t.Errorf("%s: the ledger row of %s does not count 4 events and 2 rejects", when, key)
			}
		}
		if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE s3_key = $1`, plain); n != 4 {
			t.Errorf("%s: %d events from the object that shared the batch, want 4", when, n)
		}
		if n := e.count(`SELECT count(*) FROM cloudtrail_events`); n != 12 {
			t.Errorf("%s: %d events in all, want 12", when, n)
		}
	}
	check("first delivery")
	retried := logs.Filter(func(le observer.LoggedEntry) bool { return le.Level >= zapcore.WarnLevel })
	for _, le := range retried.All() {
		t.Errorf("logged at %s: %s %v", le.Level, le.Message, le.ContextMap())
	}

	// A redelivery finds the ledger; without it, the rows are all there.
	for _, m := range msgs {
		e.send(m)
	}
	check("redelivery")
	if _, err := e.pg.Pool().Exec(e.ctx, `DELETE FROM cloudtrail_objects`); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		e.send(m)
	}
	check("redelivery without the ledger")
	if n := e.count(`SELECT count(*) FROM cloudtrail_objects WHERE inserted = 0`); n != 3 {
		t.Errorf("%d objects written again without inserting anything, want 3", n)
	}
}

// TestObjectNameNotText sends a notification that names, beside a good
// object, one whose key holds a NUL, which no PostgreSQL text column can
// hold: not an event of it can be stored under its name. It must be refused
// at once, by name and with why, not retried; the good object is stored,
// and the message left for the dead-letter queue.
func TestObjectNameNotText(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 1)
	const prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/"
	good, bad := prefix+"good.json.gz", prefix+"nul\x00.json.gz"
	e.put(good, trailFile("good", 3))
	e.put(bad, trailFile("bad", 3))
	e.send(cloudTrailBody(e.bucket, good, bad))
	logs := e.startObserved(e.config())

	e.waitFor("the message in the dead-letter queue", 45*time.Second, func() bool {
		return e.depth(e.dlqURL) == 1 && e.depth(e.queueURL) == 0
	})
	if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE s3_key = $1`, good); n != 3 {
		t.Errorf("%d events from the good object, want 3", n)
	}
	refused := logs.FilterMessage("object refused").Filter(func(le observer.LoggedEntry) bool {
		return le.ContextMap()["key"] == bad && strings.Contains(fmt.Sprint(le.ContextMap()["error"]), "NUL")
	})
	if refused.Len() != 1 {
		t.Errorf("%d error logs refusing %q for its NUL, want 1", refused.Len(), bad)
	}
	if n := logs.FilterMessage("object failed; retrying").Len(); n != 0 {
		t.Errorf("the object was retried %d times; want none", n)
	}
	dumpOnFailure(t, logs)
}

// dumpOnFailure logs what the worker logged at warning level or above, if
// the test failed.
func dumpOnFailure(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	if !t.Failed() {
		return
	}
	for _, le := range logs.All() {
		if le.Level >= zapcore.WarnLevel {
			t.Logf("%s %s: %v", le.Level, le.Message, le.ContextMap()["error"])
		}
	}
}
