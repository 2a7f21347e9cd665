package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/worker"
)

// The rules command: for rule authors, with no database.
//
//	pgtrail rules test [-json] RULES PATH...
//	pgtrail rules list [RULES]
func init() {
	commands["rules"] = cmdRules
	offline["rules"] = true
}

const rulesUsage = `usage:
  pgtrail rules test [-json] RULES PATH...
        evaluate the rules RULES names on the CloudTrail files (.json, .json.gz) and
        folders PATH, with the decoder pgtrail stores events with, and print each match
  pgtrail rules list [RULES]
        the rules loaded and those refused, with why

RULES is a comma-separated list of rule files and folders, as PGTRAIL_RULES
takes it: the word builtin stands for the built-in pack (list defaults to
PGTRAIL_RULES, and that to builtin). A refused rule makes the status 1.
`

func cmdRules(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, rulesUsage)
		return exitError(2)
	}
	switch args[0] {
	case "test":
		return cmdRulesTest(ctx, a, args[1:])
	case "list":
		return cmdRulesList(a, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(a.stdout, rulesUsage)
		return nil
	}
	fmt.Fprintf(a.stderr, "pgtrail: rules: unknown subcommand %q\n\n%s", args[0], rulesUsage)
	return exitError(2)
}

// loadRules loads what PGTRAIL_RULES names for the write path, logging each
// rule refused; nil if alerts are off.
func loadRules(a *app) (*alert.Rules, error) {
	if a.cfg.alertsOff() {
		a.log.Info("alerts are off (PGTRAIL_RULES=off)")
		return nil, nil
	}
	set, err := sigma.Load(a.cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("config: PGTRAIL_RULES: %w", err)
	}
	for _, r := range set.Refused() {
		a.log.Error("alert rule refused: it will not raise alerts (pgtrail rules list shows why)",
			zap.String("file", r.File), zap.String("rule_id", r.ID), zap.String("title", r.Title), zap.String("reason", r.Reason))
	}
	a.log.Info("alert rules loaded", zap.Int("rules", len(set.Rules())), zap.Int("refused", len(set.Refused())),
		zap.Int("skipped", len(set.Skipped())))
	return alert.NewRules(set), nil
}

// ruleMatch is one line of rules test -json.
type ruleMatch struct {
	RuleID      string    `json:"rule_id"`
	Title       string    `json:"title"`
	Level       string    `json:"level,omitempty"`
	Author      string    `json:"author"`
	RuleFile    string    `json:"rule_file"`
	EventID     string    `json:"event_id"`
	EventTime   time.Time `json:"event_time"`
	EventSource string    `json:"event_source"`
	EventName   string    `json:"event_name"`
	Principal   string    `json:"principal_arn,omitempty"`
	AccountID   string    `json:"account_id,omitempty"`
	File        string    `json:"file"`
}

func cmdRulesTest(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per match")
	fs.Usage = func() { fmt.Fprint(a.stderr, rulesUsage) }
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return exitError(2)
	}
	set, err := sigma.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(a.stderr, "pgtrail:", err)
		return exitError(2)
	}
	printRefused(a.stderr, set)
	files, walkErr := worker.LogFiles(fs.Args()[1:])
	if walkErr != nil {
		fmt.Fprintln(a.stderr, "pgtrail:", walkErr)
	}
	lim := cloudtrail.Limits{MaxObjectBytes: a.cfg.MaxObjectBytes, MaxRecordBytes: a.cfg.MaxRecordBytes}
	enc := json.NewEncoder(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "EVENT TIME\tEVENT\tEVENT ID\tRULE\tLEVEL\tRULE ID\tAUTHOR\tFILE")
	}
	events, matches, failed := 0, 0, 0
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, m, err := testFile(f, lim, set, func(e *cloudtrail.Event, r *sigma.Rule) {
			if *asJSON {
				_ = enc.Encode(ruleMatch{RuleID: r.ID, Title: r.Title, Level: r.Level, Author: r.Author, RuleFile: r.File,
					EventID: e.EventID, EventTime: e.EventTime.UTC(), EventSource: e.EventSource, EventName: e.EventName,
					Principal: e.UserIdentityARN, AccountID: e.RecipientAccountID, File: f})
				return
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.EventTime.UTC().Format(time.RFC3339), e.EventName,
				e.EventID, r.Title, r.Level, r.ID, r.Author, f)
		})
		events += n
		matches += m
		if err != nil {
			failed++
			fmt.Fprintf(a.stderr, "pgtrail: %s: %v\n", f, err)
		}
	}
	if !*asJSON {
		_ = tw.Flush()
	}
	fmt.Fprintf(a.stderr, "%d rules (%d refused); %d files (%d failed), %d events, %d matches\n",
		len(set.Rules()), len(set.Refused()), len(files)-failed, failed, events, matches)
	if failed > 0 || walkErr != nil || len(set.Refused()) > 0 {
		return exitError(1)
	}
	return nil
}

// testFile evaluates set on every event of one file, as the write path
// would, and calls match for each match.
func testFile(path string, lim cloudtrail.Limits, set *sigma.Set, match func(*cloudtrail.Event, *sigma.Rule)) (events, matches int, _ error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	dec, err := cloudtrail.NewDecoder(f, lim)
	if err != nil {
		return 0, 0, err
	}
	var row cloudtrail.Entry
	for {
		row = cloudtrail.Entry{}
		err := dec.NextEntry(&row, "", path)
		if errors.Is(err, io.EOF) {
			return events, matches, nil
		}
		if err != nil {
			return events, matches, err
		}
		if row.Reject != nil {
			continue
		}
		events++
		e := &row.Event
		for _, m := range set.MatchEvent(e) {
			matches++
			match(e, m.Rule)
		}
	}
}

func cmdRulesList(a *app, args []string) error {
	if len(args) > 1 {
		fmt.Fprint(a.stderr, rulesUsage)
		return exitError(2)
	}
	spec := a.cfg.Rules
	if len(args) == 1 {
		spec = args[0]
	}
	if strings.EqualFold(strings.TrimSpace(spec), "off") {
		fmt.Fprintln(a.stdout, "alerts are off (PGTRAIL_RULES=off): no rules are loaded")
		return nil
	}
	set, err := sigma.Load(spec)
	if err != nil {
		fmt.Fprintln(a.stderr, "pgtrail:", err)
		return exitError(2)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE ID\tLEVEL\tTITLE\tAUTHOR\tFILE\tEVALUATED ON")
	for _, r := range set.Rules() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Level, r.Title, r.Author, r.File, evaluatedOn(r))
	}
	_ = tw.Flush()
	fmt.Fprintf(a.stdout, "\n%d rules loaded, %d refused, %d skipped (not for CloudTrail)\n",
		len(set.Rules()), len(set.Refused()), len(set.Skipped()))
	printRefused(a.stdout, set)
	for _, r := range set.Skipped() {
		fmt.Fprintf(a.stdout, "skipped: %s\n", r.Error())
	}
	if len(set.Refused()) > 0 {
		return exitError(1)
	}
	return nil
}

// evaluatedOn says which events the rule is evaluated on: its cost.
func evaluatedOn(r *sigma.Rule) string {
	sources, names := r.Prefilter()
	list := func(what string, vs []string) string {
		if len(vs) > 3 {
			return fmt.Sprintf("%s %s and %d more", what, strings.Join(vs[:3], ", "), len(vs)-3)
		}
		return what + " " + strings.Join(vs, ", ")
	}
	switch {
	case names != nil:
		return list("eventName", names)
	case sources != nil:
		return list("eventSource", sources)
	}
	return "every event"
}

func printRefused(w io.Writer, set *sigma.Set) {
	for _, r := range set.Refused() {
		fmt.Fprintf(w, "refused: %s\n", r.Error())
	}
}
