package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

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
	if err := parseFlags(fs, args); err != nil {
		return err
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
	st.DB, st.DBErr = sink.ReadStatus(ctx, a.cfg.DatabaseURL, *timeout)

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
	DB     sink.Status
	DBErr  error // the database could not be read (DB holds what was)
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
	if st.DBErr != nil {
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
	case st.DBErr != nil:
		row("", "COULD NOT READ: %v", st.DBErr)
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
		row("  last hour", "%s", window(db.Hour))
		row("  last day", "%s", window(db.Day))
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
		case db.Rejects > sink.StatusRejectLimit:
			row("  rejects", "more than %d, the latest at %s (see cloudtrail_rejects)", sink.StatusRejectLimit, db.LastRejectAt.UTC().Format(time.RFC3339))
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
		if warn := db.Locks.Warning(); warn != "" {
			row("  locks", "WARNING: %s", warn)
		}
		row("  retention", "%s", st.retention(cfg.RetentionDays))
		st.printAlerts(row, cfg)
		st.printIntegrity(row, cfg)
		if l := db.Lookup; l != nil && l.Closed > 0 {
			waiting := ""
			if l.Summarized < l.Closed {
				waiting = fmt.Sprintf(" (%d waiting: pgtrail run summarizes them every %s)", l.Closed-l.Summarized, short(lookupSummaries))
			}
			row("  lookup days", "%d of %d closed days summarized%s", l.Summarized, l.Closed, waiting)
		}
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

// window summarizes an ingest window.
func window(w sink.IngestWindow) string {
	if w.Objects == 0 {
		return "no object processed"
	}
	return fmt.Sprintf("%d events from %d objects: %d new, %d duplicates, %d rejected",
		w.Events, w.Objects, w.Inserted, w.Duplicates, w.Rejected)
}
