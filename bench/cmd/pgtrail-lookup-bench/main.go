// Command pgtrail-lookup-bench measures LookupEvents over a loaded database:
// for each lookup attribute, a busy value and a rare one, it pages through
// the answer with the AWS SDK for Go v2's paginator against pgtrail's
// server (signing, JSON and the database, in process, on loopback), and
// reports the latency of its very first page (the reader's connections
// plan the statements of whole partitions then; they read the partitions'
// catalog entries before, when -warm warms them as pgtrail serve does),
// the p50, p99 and worst
// latency of a page, and the query plans of the lookup's first window and
// of one whole partition (EXPLAIN ANALYZE, as the reader role).
//
// Load the database first (docs/lookup.md, "Measuring"): generated events
// (docs/bench/generate.sql) in a database migrated by pgtrail migrate.
//
//	go run ./bench/cmd/pgtrail-lookup-bench -db postgres://…/pgtrail_lookup_bench -window 8760h -plans plans.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
)

// probe is one lookup to measure; its value is chosen from the data by
// pick, a query returning one text value.
type probe struct {
	label, key, pick string
}

// probes are the questions: each attribute with a busy value and a rare
// one, chosen from the last day as an analyst would meet them.
var probes = []probe{
	{"time range only", "", ""},
	{"EventId", sink.AttrEventID, `SELECT event_id FROM cloudtrail_events WHERE event_time >= now() - interval '200 days' ORDER BY event_time LIMIT 1`},
	{"EventName, busy", sink.AttrEventName, `SELECT event_name FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`},
	{"EventName, rare", sink.AttrEventName, `SELECT 'StopLogging'`},
	{"EventSource, busy", sink.AttrEventSource, `SELECT event_source FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`},
	{"EventSource, rare", sink.AttrEventSource, `SELECT 'cloudtrail.amazonaws.com'`},
	{"ReadOnly true", sink.AttrReadOnly, `SELECT 'true'`},
	{"ReadOnly false", sink.AttrReadOnly, `SELECT 'false'`},
	{"Username, busy (a session)", sink.AttrUsername, `SELECT substring(user_identity_arn FROM '/([^/]+)$') FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' AND user_identity_type = 'AssumedRole' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`},
	{"Username, rare (an IAM user)", sink.AttrUsername, `SELECT user_identity_user_name FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' AND user_identity_type = 'IAMUser' GROUP BY 1 ORDER BY count(*), 1 LIMIT 1`},
	{"AccessKeyId", sink.AttrAccessKeyID, `SELECT user_identity_access_key_id FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET 200 LIMIT 1`},
	{"ResourceType, busy", sink.AttrResourceType, `SELECT 'AWS::S3::Object'`},
	{"ResourceType, rare", sink.AttrResourceType, `SELECT 'AWS::S3::Bucket'`},
	{"ResourceName, busy (a bucket)", sink.AttrResourceName, `SELECT request_parameters->>'bucketName' FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' AND event_source = 's3.amazonaws.com' AND read_only = false GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`},
	{"ResourceName, rare (an object ARN)", sink.AttrResourceName, `SELECT resources->0->>'ARN' FROM cloudtrail_events WHERE event_time >= now() - interval '100 days' AND resources IS NOT NULL ORDER BY event_time LIMIT 1`},
}

func main() {
	db := flag.String("db", "postgres://postgres@127.0.0.1:5432/pgtrail_lookup_bench?sslmode=disable", "the loaded database")
	window := flag.Duration("window", 365*24*time.Hour, "StartTime is this far back from now")
	runs := flag.Int("runs", 20, "first pages per probe (each also pages on, up to -pages)")
	pages := flag.Int("pages", 5, "pages per run at most")
	plans := flag.String("plans", "", "write each probe's EXPLAIN ANALYZE here")
	warm := flag.Int("warm", 4, "connections warmed before the first page, as pgtrail serve warms its pool (0: none, as pgtrail lookup)")
	summarize := flag.Bool("summarize", true, "summarize the closed days that have no lookup summary first, as pgtrail run does")
	flag.Parse()
	ctx := context.Background()
	if *summarize {
		if err := summarizeDays(ctx, *db); err != nil {
			fmt.Fprintln(os.Stderr, "pgtrail-lookup-bench: summarize:", err)
			os.Exit(1)
		}
	}
	if err := run(ctx, *db, *window, *runs, *pages, int32(*warm), *plans); err != nil {
		fmt.Fprintln(os.Stderr, "pgtrail-lookup-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, db string, window time.Duration, runs, maxPages int, warm int32, plansPath string) error {
	owner, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer owner.Close(ctx)
	var events, parts int64
	if err := owner.QueryRow(ctx, `SELECT (SELECT sum(reltuples)::bigint FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'cloudtrail_events'::regclass),
	        (SELECT count(*) FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass)`).Scan(&events, &parts); err != nil {
		return err
	}

	reader, err := sink.OpenReader(ctx, sink.Config{URL: db, MaxConns: 4, WarmConns: warm})
	if err != nil {
		return err
	}
	defer reader.Close()
	t0 := time.Now()
	if err := reader.Warm(ctx); err != nil {
		return err
	}
	warmed := time.Since(t0)
	const keyID, secret = "AKIALOOKUPBENCH00001", "lookup-bench-secret"
	srv, err := lookup.New(lookup.Options{Store: reader, Rate: rate.Inf, FullHistory: true, MultipleAttributes: true,
		Credentials: lookup.StaticCredentials(map[string]string{keyID: secret})})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := cloudtrail.New(cloudtrail.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL),
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), RetryMaxAttempts: 1})

	var planOut strings.Builder
	now := time.Now()
	start := now.Add(-window)
	fmt.Printf("%d events in %d partitions; window %s (%s to %s); %d runs of up to %d pages of 50 per probe; %d connections warmed in %.0f ms\n\n",
		events, parts, window, start.UTC().Format(time.DateTime), now.UTC().Format(time.DateTime), runs, maxPages, warm, ms(warmed))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "probe\tvalue\tpages\tfirst ms\tp50 ms\tp99 ms\tmax ms\tmax after the first ms\tnewest hour: plan + run ms\ta partition, generic: first plan + run ms\tthen plan + run ms\t")
	for _, p := range probes {
		var value string
		if p.pick != "" {
			if err := owner.QueryRow(ctx, p.pick).Scan(&value); err != nil {
				return fmt.Errorf("%s: pick a value: %w", p.label, err)
			}
		}
		in := cloudtrail.LookupEventsInput{StartTime: &start, EndTime: &now}
		q := sink.LookupQuery{Start: start, End: now, Limit: 51}
		if p.key != "" {
			in.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKey(p.key), AttributeValue: aws.String(value)}}
			q.Attributes = []sink.LookupAttribute{{Key: p.key, Value: value}}
		}
		var lat []time.Duration
		for range runs {
			pg := cloudtrail.NewLookupEventsPaginator(client, &in, func(o *cloudtrail.LookupEventsPaginatorOptions) { o.Limit = 50 })
			for n := 0; n < maxPages && pg.HasMorePages(); n++ {
				t0 := time.Now()
				if _, err := pg.NextPage(ctx); err != nil {
					return fmt.Errorf("%s: %w", p.label, err)
				}
				lat = append(lat, time.Since(t0))
			}
		}
		// The plans of the lookup's first window (the newest hour) and of
		// the statement of one whole partition, 92 days back, as the walk
		// runs it (generic, planned once per connection).
		day := q
		day.Start = now.Add(-time.Hour)
		plan, err := reader.ExplainLookup(ctx, day)
		if err != nil {
			return fmt.Errorf("%s: explain: %w", p.label, err)
		}
		first, then, err := reader.ExplainLookupPartition(ctx, q, now.Add(-92*24*time.Hour))
		if err != nil {
			return fmt.Errorf("%s: explain: %w", p.label, err)
		}
		fmt.Fprintf(&planOut, "== %s (%s): the newest hour\n%s\n\n== %s (%s): a whole partition 92 days back, generic, its first run\n%s\n\n== the same, run again\n%s\n\n",
			p.label, value, plan, p.label, value, first, then)
		firstPage, rest := lat[0], slices.Max(append([]time.Duration{0}, lat[1:]...))
		slices.Sort(lat)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%s\t\n", p.label, short(value), len(lat), ms(firstPage),
			ms(pct(lat, 50)), ms(pct(lat, 99)), ms(lat[len(lat)-1]), ms(rest), planTimes(plan), planTimes(first), planTimes(then))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if plansPath != "" {
		return os.WriteFile(plansPath, []byte(planOut.String()), 0o644)
	}
	return nil
}

// summarizeDays summarizes the days that need it and reports the time it
// took and what the summaries take.
func summarizeDays(ctx context.Context, db string) error {
	pg, err := sink.Open(ctx, sink.Config{URL: db}, zap.NewNop())
	if err != nil {
		return err
	}
	defer pg.Close()
	t0 := time.Now()
	n, err := pg.SummarizeLookupDays(ctx)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	var days, keys, size int64
	if err := pg.Pool().QueryRow(ctx, `SELECT count(*), coalesce(sum(keys), 0), coalesce(sum(pg_column_size(bits)), 0) FROM pgtrail_lookup_summaries`).Scan(&days, &keys, &size); err != nil {
		return err
	}
	if n > 0 {
		fmt.Printf("summarized %d days in %.1f s (%.0f ms a day); ", n, took.Seconds(), ms(took)/float64(n))
	}
	fmt.Printf("%d days summarized: %d values, %.1f MB of filters\n", days, keys, float64(size)/1e6)
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "…"
	}
	return s
}

// planTimes is "planning + execution" from an EXPLAIN ANALYZE.
func planTimes(plan string) string {
	var pl, ex string
	for _, l := range strings.Split(plan, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "Planning Time: "); ok {
			pl = strings.TrimSuffix(v, " ms")
		}
		if v, ok := strings.CutPrefix(l, "Execution Time: "); ok {
			ex = strings.TrimSuffix(v, " ms")
		}
	}
	return pl + " + " + ex
}
