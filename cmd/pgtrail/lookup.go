package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

func init() { commands["lookup"] = cmdLookup }

// attrFlags collects repeated -attr KEY=VALUE flags.
type attrFlags []sink.LookupAttribute

func (f *attrFlags) String() string { return fmt.Sprint(*f) }

func (f *attrFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || v == "" {
		return fmt.Errorf("want KEY=VALUE, KEY one of %s", strings.Join(sink.LookupAttributes, ", "))
	}
	*f = append(*f, sink.LookupAttribute{Key: k, Value: v})
	return nil
}

// cmdLookup runs LookupEvents' query in process, as the reader role, over
// the whole stored history: the newest -limit events that match every
// -attr, as a table or, with -json, one record a line.
func cmdLookup(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var attrs attrFlags
	fs.Var(&attrs, "attr", "KEY=VALUE, repeatable, ANDed; KEY: "+strings.Join(sink.LookupAttributes, ", "))
	from := fs.String("from", "", "oldest event time: RFC 3339, YYYY-MM-DD (UTC), or a duration back from now (720h); default: all history")
	to := fs.String("to", "", "newest event time, same forms; default: now")
	limit := fs.Int("limit", 50, "events to show, newest first")
	insight := fs.Bool("insight", false, "look up CloudTrail Insights events instead of management events")
	asJSON := fs.Bool("json", false, "print the raw records, one JSON object a line")
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, "usage: pgtrail lookup [-attr KEY=VALUE]... [-from T] [-to T] [-limit N] [-insight] [-json]\n\nThe events CloudTrail's LookupEvents would return, over all of pgtrail's history.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	now := time.Now()
	start, err := parseWhen(*from, now, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
	if err == nil && *limit < 1 {
		err = fmt.Errorf("-limit must be at least 1, got %d", *limit)
	}
	end, err2 := parseWhen(*to, now, now)
	if err := errors.Join(err, err2); fs.NArg() > 0 || err != nil {
		if err != nil {
			fmt.Fprintln(a.stderr, "pgtrail: lookup:", err)
		}
		fs.Usage()
		return exitError(2)
	}

	reader, err := sink.OpenReader(ctx, sink.Config{URL: a.cfg.DatabaseURL, ReaderRole: a.cfg.ReaderRole, MaxConns: 2})
	if err != nil {
		return err
	}
	defer reader.Close()
	events, err := reader.LookupEvents(ctx, sink.LookupQuery{Attributes: attrs, Start: start, End: end, Insight: *insight, Limit: *limit})
	if errors.Is(err, sink.ErrLookupAttribute) {
		fmt.Fprintln(a.stderr, "pgtrail:", err)
		return exitError(2)
	}
	if err != nil {
		return err
	}

	if *asJSON {
		for _, e := range events {
			fmt.Fprintf(a.stdout, "%s\n", e.Record)
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TIME (UTC)\tEVENT NAME\tEVENT SOURCE\tUSERNAME\tREAD-ONLY\tACCESS KEY\tRESOURCES\tEVENT ID")
	for _, e := range events {
		var res []string
		for _, r := range e.Resources {
			res = append(res, strings.TrimPrefix(r.ResourceType, "AWS::")+" "+r.ResourceName)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.EventTime.UTC().Format(time.DateTime), e.EventName,
			e.EventSource, dash(e.Username), dash(e.ReadOnly), dash(e.AccessKeyID), dash(strings.Join(res, ", ")), e.EventID)
	}
	return tw.Flush()
}

// parseWhen reads a -from or -to value; "" is def.
func parseWhen(s string, now, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, YYYY-MM-DD or a duration", s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
