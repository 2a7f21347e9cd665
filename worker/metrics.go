package worker

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgtrail/pgtrail/sink"
)

// Metrics are the worker's Prometheus collectors, all named pgtrail_*. A nil
// *Metrics records nothing.
type Metrics struct {
	messagesReceived     prometheus.Counter
	messagesDeleted      prometheus.Counter
	messagesFailed       *prometheus.CounterVec
	receiveErrors        prometheus.Counter
	messagesInFlight     prometheus.Gauge
	oldestMessageAge     prometheus.Gauge
	messageAge           prometheus.Histogram
	objects              *prometheus.CounterVec
	objectsInFlight      prometheus.Gauge
	bytes                prometheus.Counter
	events               *prometheus.CounterVec
	stage                *prometheus.HistogramVec
	visibilityExtensions prometheus.Counter
	pollersPaused        prometheus.Gauge
	digests              *prometheus.CounterVec
	digestFiles          *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.001, 2.5, 14) // 1 ms to about 2.5 min
	m := &Metrics{
		messagesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_messages_received_total", Help: "SQS messages received."}),
		messagesDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_messages_deleted_total", Help: "SQS messages deleted after their events were committed (or because they name no object)."}),
		messagesFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_messages_failed_total", Help: "SQS messages left on the queue, by reason: unrecognized, permanent (left for the dead-letter queue), transient (left for redelivery), shutdown."}, []string{"reason"}),
		receiveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_receive_errors_total", Help: "Failed ReceiveMessage calls."}),
		messagesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgtrail_messages_in_flight", Help: "Messages being processed."}),
		oldestMessageAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgtrail_oldest_message_age_seconds", Help: "Age, at receive, of the oldest message of the latest receive (from SentTimestamp): how far behind the worker runs."}),
		messageAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pgtrail_message_age_seconds", Help: "Age of messages at receive (from SentTimestamp).", Buckets: prometheus.ExponentialBuckets(1, 3, 10)}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_objects_processed_total", Help: "Objects by outcome: ok, failed, digest (checked, or skipped when integrity checks are off), already_processed (skipped)."}, []string{"outcome"}),
		objectsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgtrail_objects_in_flight", Help: "Objects being fetched, decoded and written."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_bytes_fetched_total", Help: "Bytes read from S3 (compressed)."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_events_total", Help: "Records by outcome: inserted, duplicate, rejected."}, []string{"outcome"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pgtrail_stage_duration_seconds", Help: "Time per object spent in each stage: fetch (until the body starts), decode (decompress, parse, normalize), write (database).", Buckets: buckets}, []string{"stage"}),
		visibilityExtensions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_visibility_extensions_total", Help: "Visibility timeout extensions of messages being processed."}),
		pollersPaused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgtrail_pollers_paused", Help: "1 while the database is unreachable: the pollers receive nothing and the messages in hand are held until it answers."}),
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_integrity_digests_total", Help: "CloudTrail digest files checked, by verdict: valid, invalid; gap counts those that start a chain after a gap."}, []string{"verdict"}),
		digestFiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_integrity_log_files_total", Help: "Log files checked against a digest, by verdict: verified, hash_mismatch, trailing_data, not_hashed, listed_not_ingested, not_listed."}, []string{"verdict"}),
	}
	reg.MustRegister(m.messagesReceived, m.messagesDeleted, m.messagesFailed, m.receiveErrors,
		m.messagesInFlight, m.oldestMessageAge, m.messageAge, m.objects, m.objectsInFlight, m.bytes,
		m.events, m.stage, m.visibilityExtensions, m.pollersPaused, m.digests, m.digestFiles)
	for _, v := range []string{"valid", "invalid", "gap"} {
		m.digests.WithLabelValues(v)
	}
	for _, r := range []string{"unrecognized", "permanent", "transient", "shutdown"} {
		m.messagesFailed.WithLabelValues(r)
	}
	for _, o := range []string{"inserted", "duplicate", "rejected"} {
		m.events.WithLabelValues(o)
	}
	return m
}

func (m *Metrics) received(msgs []types.Message) {
	if m == nil {
		return
	}
	// An empty receive means nothing waits: the lag is zero, not the age
	// of the last message seen.
	m.messagesReceived.Add(float64(len(msgs)))
	oldest := 0.0
	for _, msg := range msgs {
		ms, err := strconv.ParseInt(msg.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
		if err != nil {
			continue
		}
		age := time.Since(time.UnixMilli(ms)).Seconds()
		m.messageAge.Observe(age)
		oldest = max(oldest, age)
	}
	m.oldestMessageAge.Set(oldest)
}

func (m *Metrics) receiveFailed() {
	if m != nil {
		m.receiveErrors.Inc()
	}
}

func (m *Metrics) messageStarted() {
	if m != nil {
		m.messagesInFlight.Inc()
	}
}

func (m *Metrics) messageDone() {
	if m != nil {
		m.messagesInFlight.Dec()
	}
}

func (m *Metrics) failed(reason string) {
	if m != nil {
		m.messagesFailed.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) deleted() {
	if m != nil {
		m.messagesDeleted.Inc()
	}
}

func (m *Metrics) visibilityExtended() {
	if m != nil {
		m.visibilityExtensions.Inc()
	}
}

func (m *Metrics) paused(p bool) {
	if m == nil {
		return
	}
	if p {
		m.pollersPaused.Set(1)
	} else {
		m.pollersPaused.Set(0)
	}
}

func (m *Metrics) objectStarted() {
	if m != nil {
		m.objectsInFlight.Inc()
	}
}

func (m *Metrics) objectDone(outcome string, res sink.WriteResult) {
	if m == nil {
		return
	}
	m.objects.WithLabelValues(outcome).Inc()
	m.events.WithLabelValues("inserted").Add(float64(res.Inserted))
	m.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	m.events.WithLabelValues("rejected").Add(float64(res.Rejected))
}

func (m *Metrics) objectFinished() {
	if m != nil {
		m.objectsInFlight.Dec()
	}
}

func (m *Metrics) fetched(d time.Duration) {
	if m != nil {
		m.stage.WithLabelValues("fetch").Observe(d.Seconds())
	}
}

func (m *Metrics) bytesFetched(n int64) {
	if m != nil {
		m.bytes.Add(float64(n))
	}
}

func (m *Metrics) stages(decode, write time.Duration) {
	if m != nil {
		m.stage.WithLabelValues("decode").Observe(decode.Seconds())
		m.stage.WithLabelValues("write").Observe(write.Seconds())
	}
}

// digestChecked counts a digest's verdict and its log files' verdicts.
func (m *Metrics) digestChecked(rec sink.DigestRecord, files sink.DigestFiles) {
	if m == nil {
		return
	}
	verdict := "valid"
	if !rec.Valid {
		verdict = "invalid"
	}
	m.digests.WithLabelValues(verdict).Inc()
	if rec.GapBefore {
		m.digests.WithLabelValues("gap").Inc()
	}
	for v, n := range files {
		m.digestFiles.WithLabelValues(v).Add(float64(n))
	}
}
