package worker_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/digestkeys"
	"github.com/pgtrail/pgtrail/internal/digesttest"
	"github.com/pgtrail/pgtrail/worker"
)

// integrity is a world for the digest tests: a bucket, a database, and a
// processor that checks digests with the test key, read from a key folder
// as PGTRAIL_DIGEST_KEYS names one.
type integrity struct {
	*env
	proc *worker.Processor
	reg  *prometheus.Registry
}

// integrityGrace is the verifier's grace period in these tests: a log file
// no digest lists is found by the first digest that ends this long after
// it.
const integrityGrace = 30 * time.Minute

func setupIntegrity(t *testing.T) *integrity {
	t.Helper()
	e := setupE2E(t, 30, 3)
	keys, err := digestkeys.LoadDir(digesttest.TestKey().KeyDir(t, true))
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	proc := worker.NewProcessor(e.config(), e.aws.S3(), e.pg, e.pg, m, log)
	proc.SetDigestVerifier(worker.NewDigestVerifier(e.aws.S3(), e.pg, keys, integrityGrace, m, log))
	return &integrity{env: e, proc: proc, reg: reg}
}

// upload puts a log file or digest, with its metadata.
func (w *integrity) upload(o digesttest.Object) {
	w.t.Helper()
	_, err := w.aws.S3().PutObject(w.ctx, &s3.PutObjectInput{
		Bucket: aws.String(o.Bucket), Key: aws.String(o.Key), Body: bytes.NewReader(o.Body), Metadata: o.Metadata,
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// commit runs one object through the processor, as a notification would.
func (w *integrity) commit(o digesttest.Object) {
	w.t.Helper()
	if _, err := w.proc.CommitObject(w.ctx, worker.ObjectRef{Bucket: o.Bucket, Key: o.Key}); err != nil {
		w.t.Fatalf("commit %s: %v", o.Key, err)
	}
}

// deliver uploads and commits objects in order.
func (w *integrity) deliver(objs ...digesttest.Object) {
	w.t.Helper()
	for _, o := range objs {
		w.upload(o)
		w.commit(o)
	}
}

// digest returns the stored verdict on a digest: "valid", or "invalid: "
// and the reason, and whether a gap precedes it.
func (w *integrity) digest(key string) (verdict string, gap bool) {
	w.t.Helper()
	err := w.pg.Pool().QueryRow(w.ctx, `SELECT verdict || coalesce(': ' || reason, ''), gap_before
        FROM cloudtrail_digests WHERE s3_bucket = $1 AND s3_key = $2`, w.bucket, key).Scan(&verdict, &gap)
	if err != nil {
		return "none: " + err.Error(), false
	}
	return verdict, gap
}

// file returns the verdict on a log file, or "none".
func (w *integrity) file(key string) string {
	w.t.Helper()
	var v string
	if err := w.pg.Pool().QueryRow(w.ctx, `SELECT verdict FROM cloudtrail_digest_files
        WHERE s3_bucket = $1 AND s3_key = $2`, w.bucket, key).Scan(&v); err != nil {
		return "none"
	}
	return v
}

// alerts counts the integrity alerts raised on an object.
func (w *integrity) alerts(key string) int {
	return w.count(`SELECT count(*) FROM cloudtrail_alerts WHERE rule_id = 'pgtrail-integrity' AND event_id = $1`,
		"s3://"+w.bucket+"/"+key)
}

// tamper gzips body again with one byte of its uncompressed content
// changed at the first occurrence of old.
func tamper(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	raw := digesttest.Gunzip(t, body)
	i := bytes.Index(raw, []byte(old))
	if i < 0 || len(old) != len(new) {
		t.Fatalf("tamper: %q not in the log file", old)
	}
	raw = append(append(append([]byte{}, raw[:i]...), new...), raw[i+len(old):]...)
	return digesttest.Gzip(raw)
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func hour(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

// want is what a scenario expects of one object: a digest's verdict (and
// gap), or a log file's, and whether it raised an alert.
type want struct {
	key     string
	verdict string
	gap     bool
	alert   bool
}

// TestIntegrity runs each scenario of docs/integrity.md through the
// processor, against the S3 emulator and PostgreSQL, with digests signed by
// the test key, and checks the verdicts stored.
func TestIntegrity(t *testing.T) {
	w := setupIntegrity(t)
	trail := func(account, region string) *digesttest.Trail {
		return &digesttest.Trail{Bucket: w.bucket, AccountID: account, Region: region, Name: "main", HomeRegion: "us-east-1"}
	}
	for _, sc := range []struct {
		name string
		run  func(t *testing.T) []want
	}{
		{"valid chain over hours, accounts and regions", func(t *testing.T) []want {
			var out []want
			for _, account := range []string{"100000000001", "100000000002"} {
				for _, region := range []string{"us-east-1", "eu-west-1"} {
					tr := trail(account, region)
					for h := range 3 {
						a, b := tr.LogFile(hour(h).Add(10*time.Minute)), tr.LogFile(hour(h).Add(40*time.Minute))
						d := tr.Digest(hour(h+1), a, b)
						w.deliver(a, b, d)
						out = append(out, want{key: d.Key, verdict: "valid", gap: h == 0},
							want{key: a.Key, verdict: "verified"}, want{key: b.Key, verdict: "verified"})
					}
				}
			}
			return out
		}},
		{"organization trail", func(t *testing.T) []want {
			tr := trail("100000000003", "us-east-1")
			tr.OrgID, tr.Prefix = "o-a1b2c3d4e5", "org/logs"
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d1 := tr.Digest(hour(1), a)
			d2 := tr.Digest(hour(2))
			w.deliver(a, d1, d2)
			return []want{{key: d1.Key, verdict: "valid", gap: true}, {key: d2.Key, verdict: "valid"}, {key: a.Key, verdict: "verified"}}
		}},
		{"first digest, null previous signature", func(t *testing.T) []want {
			tr := trail("100000000004", "us-east-1")
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d := tr.Digest(hour(1), a)
			w.deliver(a, d)
			return []want{{key: d.Key, verdict: "valid", gap: true}, {key: a.Key, verdict: "verified"}}
		}},
		{"gap in the chain", func(t *testing.T) []want {
			tr := trail("100000000005", "us-east-1")
			d1 := tr.Digest(hour(1))
			tr.Break()
			d2 := tr.Digest(hour(5))
			d3 := tr.Digest(hour(6))
			w.deliver(d1, d2, d3)
			return []want{{key: d1.Key, verdict: "valid", gap: true}, {key: d2.Key, verdict: "valid", gap: true}, {key: d3.Key, verdict: "valid"}}
		}},
		{"tampered log file", func(t *testing.T) []want {
			tr := trail("100000000006", "us-east-1")
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d := tr.Digest(hour(1), a)
			a.Body = tamper(t, a.Body, `"192.0.2.1"`, `"192.0.2.9"`)
			w.deliver(a, d)
			// Delivered again, the digest raises no second alert.
			w.commit(d)
			if n := w.alerts(a.Key); n != 1 {
				t.Errorf("alerts after redelivery: %d, want 1", n)
			}
			// Analysts see it, with both hashes.
			if n := w.count(`SELECT count(*) FROM ct_integrity_files WHERE s3_key = $1 AND verdict = 'hash_mismatch'
                AND expected_sha256 <> ingested_sha256`, a.Key); n != 1 {
				t.Errorf("ct_integrity_files rows for the tampered file: %d, want 1", n)
			}
			return []want{{key: d.Key, verdict: "valid", gap: true}, {key: a.Key, verdict: "hash_mismatch", alert: true}}
		}},
		{"log file deleted before it was ingested", func(t *testing.T) []want {
			tr := trail("100000000007", "us-east-1")
			a, b := tr.LogFile(hour(0).Add(5*time.Minute)), tr.LogFile(hour(0).Add(6*time.Minute))
			d := tr.Digest(hour(1), a, b)
			w.deliver(a, d) // b never arrives
			return []want{{key: d.Key, verdict: "valid", gap: true}, {key: a.Key, verdict: "verified"}, {key: b.Key, verdict: "listed_not_ingested"}}
		}},
		{"log file added that no digest lists", func(t *testing.T) []want {
			tr := trail("100000000008", "us-east-1")
			a := tr.LogFile(hour(0).Add(10 * time.Minute))
			extra := tr.LogFile(hour(0).Add(20 * time.Minute))
			b := tr.LogFile(hour(1).Add(10 * time.Minute))
			d1 := tr.Digest(hour(1), a)
			d2 := tr.Digest(hour(2), b)
			w.deliver(a, extra, b, d1, d2)
			return []want{{key: extra.Key, verdict: "not_listed", alert: true}, {key: a.Key, verdict: "verified"}, {key: b.Key, verdict: "verified"}}
		}},
		{"digest with a bad signature", func(t *testing.T) []want {
			tr := trail("100000000009", "us-east-1")
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d := tr.Digest(hour(1), a)
			sig := []byte(d.Metadata["signature"])
			if sig[10] == '0' {
				sig[10] = '1'
			} else {
				sig[10] = '0'
			}
			d.Metadata["signature"] = string(sig)
			w.deliver(a, d)
			return []want{{key: d.Key, verdict: "invalid: signature verification failed", gap: false, alert: true}, {key: a.Key, verdict: "none"}}
		}},
		{"digest signed by an unknown key", func(t *testing.T) []want {
			tr := trail("100000000010", "us-east-1")
			tr.Key = digesttest.OtherKey()
			d := tr.Digest(hour(1))
			w.deliver(d)
			return []want{{key: d.Key, verdict: "invalid: public key not found in region us-east-1 for fingerprint " + digesttest.OtherKey().Fingerprint, alert: true}}
		}},
		{"digest moved to another key", func(t *testing.T) []want {
			tr := trail("100000000011", "us-east-1")
			d := tr.Digest(hour(1))
			moved := trail("100000000011", "us-east-1").Digest(hour(3)) // only its key is used
			d.Key = moved.Key
			w.deliver(d)
			return []want{{key: d.Key, verdict: "invalid: has been moved from its original location", alert: true}}
		}},
		{"previous digest missing", func(t *testing.T) []want {
			tr := trail("100000000012", "us-east-1")
			d1 := tr.Digest(hour(1))
			d2 := tr.Digest(hour(2))
			w.deliver(d2) // d1 was never delivered
			w.commit(d2)  // and again: the missing digest stays its own verdict
			return []want{{key: d1.Key, verdict: "invalid: not found", alert: true}, {key: d2.Key, verdict: "valid"}}
		}},
		{"previous digest fetched when not yet checked", func(t *testing.T) []want {
			tr := trail("100000000013", "us-east-1")
			d1 := tr.Digest(hour(1))
			d2 := tr.Digest(hour(2))
			w.upload(d1)
			w.deliver(d2)
			return []want{{key: d1.Key, verdict: "valid", gap: true}, {key: d2.Key, verdict: "valid"}}
		}},
		{"backfill digest chain", func(t *testing.T) []want {
			tr := trail("100000000014", "us-east-1")
			tr.Backfill = true
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d1 := tr.Digest(hour(1), a)
			d2 := tr.Digest(hour(2))
			w.deliver(a, d1, d2)
			if n := w.count(`SELECT count(*) FROM cloudtrail_digests WHERE chain = 'backfill' AND s3_key = ANY($1)`, []string{d1.Key, d2.Key}); n != 2 {
				t.Errorf("backfill digests stored: %d, want 2", n)
			}
			return []want{{key: d1.Key, verdict: "valid", gap: true}, {key: d2.Key, verdict: "valid"}, {key: a.Key, verdict: "verified"}}
		}},
		{"trailing bytes after the gzip stream", func(t *testing.T) []want {
			tr := trail("100000000015", "us-east-1")
			a := tr.LogFile(hour(0).Add(5 * time.Minute))
			d := tr.Digest(hour(1), a)
			a.Body = append(a.Body, digesttest.Gzip([]byte(`{"Records":[]}`))...)
			w.deliver(a, d)
			if n := w.count(`SELECT count(*) FROM cloudtrail_objects WHERE s3_key = $1 AND trailing_data`, a.Key); n != 1 {
				t.Errorf("ledger trailing_data rows: %d, want 1", n)
			}
			return []want{{key: a.Key, verdict: "trailing_data", alert: true}}
		}},
		{"log files arriving after their digest", func(t *testing.T) []want {
			tr := trail("100000000016", "us-east-1")
			a, b := tr.LogFile(hour(0).Add(5*time.Minute)), tr.LogFile(hour(0).Add(6*time.Minute))
			d := tr.Digest(hour(1), a, b)
			b.Body = tamper(t, b.Body, `"192.0.2.2"`, `"192.0.2.7"`)
			w.deliver(d)
			if v := w.file(a.Key); v != "listed_not_ingested" {
				t.Errorf("before it arrives: %s, want listed_not_ingested", v)
			}
			w.deliver(a, b)
			return []want{{key: a.Key, verdict: "verified"}, {key: b.Key, verdict: "hash_mismatch", alert: true}}
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			for _, c := range sc.run(t) {
				var got string
				var gap bool
				if bytes.Contains([]byte(c.key), []byte("/CloudTrail-Digest/")) {
					got, gap = w.digest(c.key)
				} else {
					got = w.file(c.key)
				}
				if got != c.verdict || gap != c.gap {
					t.Errorf("%s: %s (gap %v), want %s (gap %v)", c.key, got, gap, c.verdict, c.gap)
				}
				if n := w.alerts(c.key); (n > 0) != c.alert {
					t.Errorf("%s: %d integrity alerts, want alert %v", c.key, n, c.alert)
				}
			}
		})
	}
	// The metrics count the verdicts of the digests checked: four invalid
	// (signature, key, moved, missing), and their log files (the tampered
	// one twice: its digest was delivered twice). A log file checked on
	// arrival is counted by its alert, not here.
	for _, c := range []struct {
		name, verdict string
		want          float64
	}{
		{"pgtrail_integrity_digests_total", "invalid", 4},
		{"pgtrail_integrity_log_files_total", "hash_mismatch", 2},
		{"pgtrail_integrity_log_files_total", "not_listed", 1},
		{"pgtrail_integrity_log_files_total", "trailing_data", 1},
	} {
		if got := w.counter(c.name, c.verdict); got != c.want {
			t.Errorf("%s{verdict=%q} = %v, want %v", c.name, c.verdict, got, c.want)
		}
	}
}

// counter returns the value of the counter name{verdict}.
func (w *integrity) counter(name, verdict string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "verdict" && l.GetValue() == verdict {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestIntegrityThroughQueue: a log file and its digest announced on the
// queue as CloudTrail announces them are ingested and checked by a running
// worker, and their messages deleted.
func TestIntegrityThroughQueue(t *testing.T) {
	w := setupIntegrity(t)
	cfg := w.config()
	m := worker.NewMetrics(prometheus.NewRegistry())
	wk := worker.New(cfg, w.aws.SQS(), w.proc, m, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker.Run: %v", err)
		}
	}()

	tr := &digesttest.Trail{Bucket: w.bucket, AccountID: "100000000099", Region: "eu-west-1", Name: "main", HomeRegion: "eu-west-1"}
	a := tr.LogFile(hour(0).Add(5 * time.Minute))
	d := tr.Digest(hour(1), a)
	w.upload(a)
	w.upload(d)
	w.publish(cloudTrailBody(w.bucket, a.Key))
	w.waitFor("the log file", 20*time.Second, func() bool {
		return w.count(`SELECT count(*) FROM cloudtrail_objects WHERE s3_key = $1`, a.Key) == 1
	})
	w.publish(cloudTrailBody(w.bucket, d.Key))
	w.waitFor("the digest's verdict", 20*time.Second, func() bool {
		return w.file(a.Key) == "verified"
	})
	if v, gap := w.digest(d.Key); v != "valid" || !gap {
		t.Errorf("digest: %s (gap %v), want valid after a gap", v, gap)
	}
	w.waitFor("the queue to empty", 20*time.Second, func() bool { return w.depth(w.queueURL) == 0 })
}
