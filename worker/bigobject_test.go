package worker_test

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/worker"
)

// bigObject gzips a CloudTrail file of at least size bytes, decompressed.
func bigObject(size int) (gz []byte, records int) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	pad := strings.Repeat("x", 900)
	written := 0
	w := func(s string) { n, _ := zw.Write([]byte(s)); written += n }
	w(`{"Records":[`)
	for written < size {
		if records > 0 {
			w(",")
		}
		w(fmt.Sprintf(`{"eventVersion":"1.08","eventID":"big-%d","eventTime":"2024-05-%02dT%02d:%02d:00Z",`+
			`"eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.%d",`+
			`"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/r/s%d"},`+
			`"requestParameters":{"bucketName":"b","key":"k/%d","pad":"%s"}}`,
			records, 1+records%28, records%24, records%60, records%250, records%97, records, pad))
		records++
	}
	w(`]}`)
	_ = zw.Close()
	return buf.Bytes(), records
}

// heapSampler records the peak of live heap objects' bytes while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[1].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// TestBigObjectMemoryIsBounded streams a 200 MB (decompressed) object from
// S3 to Postgres and checks that the heap does not grow with it.
func TestBigObjectMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB object: skipped with -short")
	}
	e := setupE2E(t, 30, 3)
	gz, records := bigObject(200 << 20)
	e.put("AWSLogs/1/CloudTrail/us-east-1/2024/05/01/big.json.gz", gz)
	t.Logf("object: %d records, %.1f MB gzip'd, 200 MB decompressed", records, float64(len(gz))/(1<<20))
	gz = nil

	cfg := e.config()
	proc := worker.NewProcessor(cfg, e.aws.S3(), e.pg, e.pg, worker.NewMetrics(prometheus.NewRegistry()), zap.NewNop())
	runtime.GC()
	base := sampleHeap()
	time.Sleep(20 * time.Millisecond)
	baseline := base.Stop()

	h := sampleHeap()
	start := time.Now()
	err := proc.CommitMessage(e.ctx, "m-big", []worker.ObjectRef{{Bucket: e.bucket, Key: "AWSLogs/1/CloudTrail/us-east-1/2024/05/01/big.json.gz"}})
	peak := h.Stop()
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(peak) - int64(baseline)
	t.Logf("heap: baseline %.1f MB, peak %.1f MB, growth %.1f MB; %s for %d events",
		float64(baseline)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20), time.Since(start).Round(time.Millisecond), records)
	if n := e.count(`SELECT count(*) FROM cloudtrail_events`); n != records {
		t.Errorf("%d events stored, want %d", n, records)
	}
	// The object's bytes live in the in-process S3; the worker's own heap
	// must stay within a few tens of MB whatever the object's size.
	if growth > 48<<20 {
		t.Errorf("heap grew by %.1f MB while streaming a 200 MB object, want under 48 MB", float64(growth)/(1<<20))
	}
}
