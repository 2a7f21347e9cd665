package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/migrations"
	"github.com/pgtrail/pgtrail/sink"
)

// cmdStatus prints one screen for the on-call engineer: the queue and its
// dead-letter queue, the age of the oldest message, what was ingested in the
// last hour and day, the latest object, rejects and partitions. Each part is
// read on its own, so one that cannot be reached is named and the others are
// still shown; the command then exits with status 1. It only reads: the
// database session is read-only, and no message is received.
//
// With -healthz it only asks this host's /healthz and exits 0 when it
// answers: a health check for container images that have no shell or curl.
func cmdStatus(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	healthz := fs.Bool("healthz", false, "only ask /healthz on PGTRAIL_HTTP_ADDR of this host; exit 0 if it answers 200")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed to each part (queue, database, CloudWatch)")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "usage: pgtrail status [-timeout 10s] [-healthz]\n\nPrints the queue, the dead-letter queue and the database at a glance; exits 1 if a part could not be reached.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError(2)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	if *healthz {
		return probeHealthz(ctx, a, *timeout)
	}

	st := status{Now: time.Now().UTC()}
	if a.cfg.QueueURL != "" {
		st.Queue, st.DLQ, st.Oldest = readQueues(ctx, a.cfg.QueueURL, *timeout)
	}
	st.DB = readDatabase(ctx, a.cfg.DatabaseURL, *timeout)

	st.print(a.stdout, a.cfg)
	if unreachable := st.unreachable(); len(unreachable) > 0 {
		fmt.Fprintf(a.stdout, "\nincomplete: could not reach %s\n", strings.Join(unreachable, ", "))
		return exitError(1)
	}
	return nil
}

// probeHealthz asks /healthz on the port of PGTRAIL_HTTP_ADDR.
func probeHealthz(ctx context.Context, a *app, timeout time.Duration) error {
	if a.cfg.HTTPAddr == "" {
		fmt.Fprintln(a.stderr, "pgtrail: status -healthz: PGTRAIL_HTTP_ADDR is empty, so nothing serves /healthz")
		return exitError(2)
	}
	host, port, err := net.SplitHostPort(a.cfg.HTTPAddr)
	if err != nil {
		fmt.Fprintf(a.stderr, "pgtrail: status -healthz: PGTRAIL_HTTP_ADDR %q: %v\n", a.cfg.HTTPAddr, err)
		return exitError(2)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(a.stderr, "pgtrail: %s: %v\n", url, err)
		return exitError(1)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(a.stderr, "pgtrail: %s: %s\n", url, resp.Status)
		return exitError(1)
	}
	fmt.Fprintln(a.stdout, "ok")
	return nil
}

// status is everything the status command shows.
type status struct {
	Now    time.Time
	Queue  *queueStatus // nil when SQS_QUEUE_URL is unset
	DLQ    *queueStatus // nil when the queue has no redrive policy or could not be read
	Oldest oldestAge
	DB     dbStatus
}

// queueStatus is one queue's attributes.
type queueStatus struct {
	URL                        string
	Visible, InFlight, Delayed int64
	Visibility, Retention      time.Duration
	MaxReceiveCount            int    // from the redrive policy; 0 without one
	DLQARN                     string // from the redrive policy
	Err                        error
}

// oldestAge is CloudWatch's ApproximateAgeOfOldestMessage of the queue.
type oldestAge struct {
	Age time.Duration
	At  time.Time // the datapoint's time; zero when there is none
	Err error
}

// dbStatus is what the database says.
type dbStatus struct {
	URL            string // redacted
	Err            error
	Schema, Binary int // applied and embedded migration versions
	Hour, Day      ingestWindow
	Last           *lastObject
	Rejects        int64 // capped at maxRejectCount+1
	LastRejectAt   time.Time
	Partitions     partitions
	Alerts         *alertStatus // status_alerts.go
}

type ingestWindow struct {
	Objects, Events, Inserted, Duplicates, Rejected int64
}

type lastObject struct {
	Bucket, Key                           string
	ProcessedAt                           time.Time
	Events, Inserted, Duplicates, Rejects int64
}

type partitions struct {
	Count            int64
	Oldest, Newest   string // partition names
	Bytes, RowsGuess int64
}

// maxRejectCount bounds the rows of cloudtrail_rejects that status counts.
const maxRejectCount = 100000

// readQueues reads the queue, its dead-letter queue and, from CloudWatch,
// the age of its oldest message.
func readQueues(ctx context.Context, queueURL string, timeout time.Duration) (q, dlq *queueStatus, oldest oldestAge) {
	q = &queueStatus{URL: queueURL}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		q.Err = fmt.Errorf("aws config: %w", err)
		return q, nil, oldestAge{Err: q.Err}
	}
	client := sqs.NewFromConfig(awsCfg)

	done := make(chan struct{})
	go func() {
		defer close(done)
		oldest = readOldestAge(ctx, cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 }),
			queueName(queueURL), timeout)
	}()
	defer func() { <-done }()

	readQueue(ctx, client, q, timeout)
	if q.Err != nil || q.DLQARN == "" {
		return q, nil, oldest
	}
	dlq = &queueStatus{}
	name, account, err := parseQueueARN(q.DLQARN)
	if err != nil {
		dlq.Err = err
		return q, dlq, oldest
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := &sqs.GetQueueUrlInput{QueueName: aws.String(name)}
	if account != "" {
		in.QueueOwnerAWSAccountId = aws.String(account)
	}
	out, err := client.GetQueueUrl(tctx, in)
	if err != nil {
		dlq.URL = q.DLQARN
		dlq.Err = fmt.Errorf("sqs: get url of %s: %w", q.DLQARN, err)
		return q, dlq, oldest
	}
	dlq.URL = aws.ToString(out.QueueUrl)
	readQueue(ctx, client, dlq, timeout)
	return q, dlq, oldest
}

// readQueue fills q from GetQueueAttributes.
func readQueue(ctx context.Context, client *sqs.Client, q *queueStatus, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			types.QueueAttributeNameVisibilityTimeout,
			types.QueueAttributeNameMessageRetentionPeriod,
			types.QueueAttributeNameRedrivePolicy,
		},
	})
	if err != nil {
		q.Err = fmt.Errorf("sqs: get attributes of %s: %w", q.URL, err)
		return
	}
	attr := func(name types.QueueAttributeName) int64 {
		n, _ := strconv.ParseInt(out.Attributes[string(name)], 10, 64)
		return n
	}
	q.Visible = attr(types.QueueAttributeNameApproximateNumberOfMessages)
	q.InFlight = attr(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
	q.Delayed = attr(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	q.Visibility = time.Duration(attr(types.QueueAttributeNameVisibilityTimeout)) * time.Second
	q.Retention = time.Duration(attr(types.QueueAttributeNameMessageRetentionPeriod)) * time.Second
	if raw := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]; raw != "" {
		// maxReceiveCount is a number in AWS's answers and a string in
		// some emulators'.
		var rp struct {
			DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(raw), &rp); err != nil {
			q.Err = fmt.Errorf("sqs: redrive policy of %s: %w", q.URL, err)
			return
		}
		q.DLQARN = rp.DeadLetterTargetArn
		q.MaxReceiveCount, _ = strconv.Atoi(strings.Trim(string(rp.MaxReceiveCount), `"`))
	}
}

// parseQueueARN returns the queue name and account of arn:aws:sqs:REGION:ACCOUNT:NAME.
func parseQueueARN(arn string) (name, account string, err error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5] == "" {
		return "", "", fmt.Errorf("sqs: dead-letter target %q is not a queue ARN", arn)
	}
	return parts[5], parts[4], nil
}

// queueName is the last path segment of a queue URL.
func queueName(queueURL string) string {
	return queueURL[strings.LastIndex(queueURL, "/")+1:]
}

// readOldestAge asks CloudWatch for the latest ApproximateAgeOfOldestMessage
// of the queue over the last 15 minutes. SQS itself does not expose it, and
// receiving a message to look at it would count towards its moves to the
// dead-letter queue.
func readOldestAge(ctx context.Context, cw *cloudwatch.Client, queue string, timeout time.Duration) oldestAge {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	end := time.Now().Truncate(time.Minute).Add(time.Minute)
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(end.Add(-15 * time.Minute)),
		EndTime:   aws.Time(end),
		ScanBy:    cwtypes.ScanByTimestampDescending,
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("age"),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{
					Namespace:  aws.String("AWS/SQS"),
					MetricName: aws.String("ApproximateAgeOfOldestMessage"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(queue)}},
				},
				Period: aws.Int32(60),
				Stat:   aws.String("Maximum"),
			},
		}},
	})
	if err != nil {
		return oldestAge{Err: fmt.Errorf("cloudwatch: %w", err)}
	}
	for _, r := range out.MetricDataResults {
		if len(r.Values) > 0 && len(r.Timestamps) > 0 {
			return oldestAge{Age: time.Duration(r.Values[0] * float64(time.Second)), At: r.Timestamps[0]}
		}
	}
	return oldestAge{}
}

// readDatabase reads the ledger, the rejects and the partitions over one
// read-only connection. Every query uses an index or the catalog: the events
// table itself is never scanned.
func readDatabase(ctx context.Context, dsn string, timeout time.Duration) (st dbStatus) {
	st.URL = sink.Redact(dsn)
	if all, err := migrations.All(); err == nil && len(all) > 0 {
		st.Binary = all[len(all)-1].Version
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		st.Err = scrubPassword(fmt.Errorf("postgres: parse DATABASE_URL: %w", err), dsn)
		return st
	}
	cc.ConnectTimeout = timeout
	cc.RuntimeParams["application_name"] = "pgtrail status"
	cc.RuntimeParams["default_transaction_read_only"] = "on"
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)

	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		st.Err = scrubPassword(fmt.Errorf("postgres: connect: %w", err), dsn)
		return st
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := st.query(ctx, conn); err != nil {
		st.Err = scrubPassword(err, dsn)
	}
	return st
}

// query runs the status queries on conn.
func (st *dbStatus) query(ctx context.Context, conn *pgx.Conn) error {
	var migrated bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pgtrail_schema_migrations') IS NOT NULL`).Scan(&migrated); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if !migrated {
		return nil // Schema stays 0: print says so.
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pgtrail_schema_migrations`).Scan(&st.Schema); err != nil {
		return fmt.Errorf("postgres: schema version: %w", err)
	}
	if st.Schema == 0 {
		return nil
	}

	// The processed_at index bounds this to the last day's objects.
	err := conn.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE processed_at > now() - interval '1 hour'),
       coalesce(sum(events)     FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(inserted)   FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(duplicates) FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(rejected)   FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       count(*), coalesce(sum(events), 0), coalesce(sum(inserted), 0),
       coalesce(sum(duplicates), 0), coalesce(sum(rejected), 0)
FROM cloudtrail_objects
WHERE processed_at > now() - interval '1 day'`).Scan(
		&st.Hour.Objects, &st.Hour.Events, &st.Hour.Inserted, &st.Hour.Duplicates, &st.Hour.Rejected,
		&st.Day.Objects, &st.Day.Events, &st.Day.Inserted, &st.Day.Duplicates, &st.Day.Rejected)
	if err != nil {
		return fmt.Errorf("postgres: ingested: %w", err)
	}

	var last lastObject
	err = conn.QueryRow(ctx, `
SELECT s3_bucket, s3_key, processed_at, events, inserted, duplicates, rejected
FROM cloudtrail_objects ORDER BY processed_at DESC LIMIT 1`).Scan(
		&last.Bucket, &last.Key, &last.ProcessedAt, &last.Events, &last.Inserted, &last.Duplicates, &last.Rejects)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("postgres: last object: %w", err)
	default:
		st.Last = &last
	}

	// Rejects are rare by design; the count stops early if they are not.
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM cloudtrail_rejects LIMIT $1) r`, maxRejectCount+1).Scan(&st.Rejects)
	if err != nil {
		return fmt.Errorf("postgres: rejects: %w", err)
	}
	if st.Rejects > 0 {
		err = conn.QueryRow(ctx, `SELECT rejected_at FROM cloudtrail_rejects ORDER BY id DESC LIMIT 1`).Scan(&st.LastRejectAt)
		if err != nil {
			return fmt.Errorf("postgres: latest reject: %w", err)
		}
	}

	err = conn.QueryRow(ctx, `
SELECT count(*), coalesce(min(c.relname), ''), coalesce(max(c.relname), ''),
       coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,
       coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'cloudtrail_events'::regclass`).Scan(
		&st.Partitions.Count, &st.Partitions.Oldest, &st.Partitions.Newest, &st.Partitions.Bytes, &st.Partitions.RowsGuess)
	if err != nil {
		return fmt.Errorf("postgres: partitions: %w", err)
	}
	return st.queryAlerts(ctx, conn)
}

// scrubPassword removes the DSN's password from err's text.
func scrubPassword(err error, dsn string) error {
	cc, perr := pgx.ParseConfig(dsn)
	if perr != nil || cc.Password == "" || !strings.Contains(err.Error(), cc.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), cc.Password, "xxxxx"))
}

// unreachable names the parts that could not be read.
func (st *status) unreachable() []string {
	var out []string
	if st.Queue != nil && st.Queue.Err != nil {
		out = append(out, "the queue")
	}
	if st.DLQ != nil && st.DLQ.Err != nil {
		out = append(out, "the dead-letter queue")
	}
	if st.DB.Err != nil {
		out = append(out, "the database")
	}
	return out
}

// print writes the screen.
func (st *status) print(w io.Writer, cfg *Config) {
	fmt.Fprintf(w, "pgtrail status at %s (pgtrail %s)\n\n", st.Now.Format(time.RFC3339), version)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-14s "+format+"\n", append([]any{label}, args...)...)
	}

	switch q := st.Queue; {
	case q == nil:
		row("queue", "not checked: SQS_QUEUE_URL is not set")
	case q.Err != nil:
		row("queue", "%s", q.URL)
		row("", "COULD NOT READ: %v", q.Err)
	default:
		row("queue", "%s", q.URL)
		row("  messages", "%d waiting, %d in flight, %d delayed", q.Visible, q.InFlight, q.Delayed)
		switch o := st.Oldest; {
		case o.Err != nil:
			row("  oldest", "unknown (%v)", shortErr(o.Err))
		case o.At.IsZero():
			row("  oldest", "unknown (no CloudWatch datapoint in the last 15 minutes)")
		default:
			row("  oldest", "%s old (CloudWatch, at %s)", o.Age.Round(time.Second), o.At.UTC().Format("15:04 MST"))
		}
		row("  settings", "visibility timeout %s (pgtrail sets %s), retention %s", short(q.Visibility), short(cfg.VisibilityTimeout), short(q.Retention))
	}
	if q := st.Queue; q != nil && q.Err == nil {
		switch d := st.DLQ; {
		case d == nil:
			row("dead letters", "NONE: the queue has no redrive policy, so a poison message is retried until it expires")
		case d.Err != nil:
			row("dead letters", "%s", d.URL)
			row("", "COULD NOT READ: %v", d.Err)
		default:
			row("dead letters", "%s", d.URL)
			row("  messages", "%d waiting, %d in flight (moved there after %d receives)", d.Visible, d.InFlight, q.MaxReceiveCount)
		}
	}
	fmt.Fprintln(w)

	db := st.DB
	row("database", "%s", db.URL)
	switch {
	case db.Err != nil:
		row("", "COULD NOT READ: %v", db.Err)
	case db.Schema == 0:
		row("  schema", "not migrated: run pgtrail migrate (or pgtrail run with PGTRAIL_MIGRATE=true)")
	default:
		note := ""
		switch {
		case db.Schema < db.Binary:
			note = fmt.Sprintf(" (this binary has %d: migrations pending)", db.Binary)
		case db.Schema > db.Binary:
			note = fmt.Sprintf(" (this binary knows only %d: it is older than the schema)", db.Binary)
		}
		row("  schema", "version %d%s", db.Schema, note)
		row("  last hour", "%s", db.Hour)
		row("  last day", "%s", db.Day)
		if l := db.Last; l != nil {
			row("  last object", "s3://%s/%s", l.Bucket, l.Key)
			row("", "at %s (%s ago): %d events, %d new, %d duplicates, %d rejected",
				l.ProcessedAt.UTC().Format(time.RFC3339), st.Now.Sub(l.ProcessedAt).Round(time.Second), l.Events, l.Inserted, l.Duplicates, l.Rejects)
		} else {
			row("  last object", "none yet")
		}
		switch {
		case db.Rejects == 0:
			row("  rejects", "none")
		case db.Rejects > maxRejectCount:
			row("  rejects", "more than %d, the latest at %s (see cloudtrail_rejects)", maxRejectCount, db.LastRejectAt.UTC().Format(time.RFC3339))
		default:
			row("  rejects", "%d, the latest at %s (see cloudtrail_rejects)", db.Rejects, db.LastRejectAt.UTC().Format(time.RFC3339))
		}
		if p := db.Partitions; p.Count == 0 {
			row("  partitions", "none yet")
		} else {
			rows := ""
			if p.RowsGuess > 0 {
				rows = fmt.Sprintf(", about %d rows", p.RowsGuess)
			}
			row("  partitions", "%d daily, %s to %s, %s%s", p.Count, partitionDay(p.Oldest), partitionDay(p.Newest), bytesIEC(p.Bytes), rows)
		}
		row("  retention", "%s", st.retention(cfg.RetentionDays))
		st.printAlerts(row, cfg)
	}
}

// retention describes PGTRAIL_RETENTION_DAYS as this environment sets it,
// and warns when partitions older than it are still there.
func (st *status) retention(days int) string {
	if days == 0 {
		return "PGTRAIL_RETENTION_DAYS=0 here: every partition is kept"
	}
	cutoff := sink.RetentionCutoff(st.Now, days)
	s := fmt.Sprintf("PGTRAIL_RETENTION_DAYS=%d here: partitions before %s go", days, cutoff.Format(time.DateOnly))
	// Retention runs hourly: a partition a day past the cutoff is overdue.
	if oldest, err := time.Parse(time.DateOnly, partitionDay(st.DB.Partitions.Oldest)); err == nil && oldest.Before(cutoff.AddDate(0, 0, -1)) {
		s += fmt.Sprintf("; OVERDUE: %s is still there (is retention failing? see pgtrail retention -dry-run)", oldest.Format(time.DateOnly))
	}
	return s
}

// String summarizes an ingest window.
func (w ingestWindow) String() string {
	if w.Objects == 0 {
		return "no object processed"
	}
	return fmt.Sprintf("%d events from %d objects: %d new, %d duplicates, %d rejected",
		w.Events, w.Objects, w.Inserted, w.Duplicates, w.Rejected)
}

// partitionDay turns cloudtrail_events_YYYYMMDD into YYYY-MM-DD, and leaves
// other names as they are.
func partitionDay(name string) string {
	if t, err := time.Parse("20060102", strings.TrimPrefix(name, "cloudtrail_events_")); err == nil {
		return t.Format(time.DateOnly)
	}
	return name
}

// short prints a duration in its largest whole unit: 4d, 1h, 5m, 30s.
func short(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d && d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.name)
		}
	}
	return d.String()
}

// bytesIEC prints n in B, KiB, MiB, GiB or TiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// shortErr is the service's error code and message when AWS answered with
// one, else the start of the error's first line.
func shortErr(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
