package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// lookupDB is a migrated database holding the given records, and a Reader
// on it.
func lookupDB(t *testing.T, records ...string) *sink.Reader {
	t.Helper()
	url := pgtest.New(t)
	addRecords(t, url, records...)
	return openReader(t, url)
}

// addRecords migrates the database at url and stores records in it, by
// plain SQL, each column taken from the record as the worker would take
// it, so that these tests need nothing but sink.
func addRecords(t *testing.T, url string, records ...string) {
	t.Helper()
	ctx := context.Background()
	pg, err := sink.Open(ctx, sink.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rec := range records {
		if _, err := pg.Pool().Exec(ctx, `
WITH r AS (SELECT $1::jsonb AS j)
SELECT pgtrail_ensure_partition(((j->>'eventTime')::timestamptz AT TIME ZONE 'UTC')::date) FROM r`, rec); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.Pool().Exec(ctx, `
WITH r AS (SELECT $1::jsonb AS j)
INSERT INTO cloudtrail_events (event_id, event_time, event_source, event_name, event_type, read_only, management_event,
    user_identity_type, user_identity_arn, user_identity_principal_id, user_identity_access_key_id, user_identity_user_name,
    request_parameters, response_elements, resources, record, s3_bucket, s3_key)
SELECT j->>'eventID', (j->>'eventTime')::timestamptz, j->>'eventSource', j->>'eventName', j->>'eventType',
    (j->>'readOnly')::boolean, (j->>'managementEvent')::boolean,
    j#>>'{userIdentity,type}', j#>>'{userIdentity,arn}', j#>>'{userIdentity,principalId}',
    j#>>'{userIdentity,accessKeyId}', j#>>'{userIdentity,userName}',
    j->'requestParameters', j->'responseElements', j->'resources', j, 'test', 'test'
FROM r`, rec); err != nil {
			t.Fatal(err)
		}
	}
}

// openReader is a Reader on the database at url.
func openReader(t *testing.T, url string) *sink.Reader {
	t.Helper()
	ctx := context.Background()
	r, err := sink.OpenReader(ctx, sink.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// rec is a CloudTrail record for the tests; extra fields are merged in.
func rec(id string, at time.Time, name string, extra map[string]any) string {
	m := map[string]any{
		"eventVersion": "1.08", "eventID": id, "eventTime": at.UTC().Format(time.RFC3339),
		"eventSource": "ec2.amazonaws.com", "eventName": name, "eventType": "AwsApiCall",
		"readOnly": false, "managementEvent": true,
		"userIdentity": map[string]any{"type": "IAMUser", "userName": "alice",
			"arn": "arn:aws:iam::111122223333:user/alice", "accessKeyId": "AKIAALICE"},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func ids(events []sink.LookupEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.EventID)
	}
	return out
}

func TestLookupAttributes(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	assumed := map[string]any{"type": "AssumedRole", "principalId": "AROAX:bob-session",
		"arn": "arn:aws:sts::111122223333:assumed-role/admin/bob-session", "accessKeyId": "ASIABOB",
		"sessionContext": map[string]any{"sessionIssuer": map[string]any{"userName": "admin"}}}
	r := lookupDB(t,
		rec("e1", t0, "RunInstances", map[string]any{
			"requestParameters": map[string]any{"instancesSet": map[string]any{"items": []any{map[string]any{"imageId": "ami-1"}}}},
			"responseElements":  map[string]any{"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": "i-1"}}}}}),
		rec("e2", t0.Add(time.Hour), "DescribeInstances", map[string]any{"readOnly": true,
			"requestParameters": map[string]any{"instanceId": "i-1"}}),
		rec("e3", t0.Add(2*time.Hour), "CreateUser", map[string]any{"eventSource": "iam.amazonaws.com",
			"userIdentity": assumed, "requestParameters": map[string]any{"userName": "carol", "groupName": "devs"}}),
		rec("e4", t0.Add(3*time.Hour), "ConsoleLogin", map[string]any{"eventSource": "signin.amazonaws.com",
			"userIdentity": map[string]any{"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}),
		rec("e5", t0.Add(4*time.Hour), "GetObject", map[string]any{"eventSource": "s3.amazonaws.com",
			"managementEvent": false, "readOnly": true}),
		rec("e6", t0.Add(5*time.Hour), "AssumeRole", map[string]any{"eventSource": "sts.amazonaws.com", "readOnly": true,
			"userIdentity": map[string]any{"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
			"resources":    []any{map[string]any{"ARN": "arn:aws:iam::111122223333:role/web", "type": "AWS::IAM::Role"}}}),
		rec("e7", t0.Add(6*time.Hour), "CloudTrailInsightEvent", map[string]any{"eventType": "AwsCloudTrailInsight",
			"eventSource": "cloudtrail.amazonaws.com"}),
	)
	ctx := context.Background()
	all := sink.LookupQuery{Start: t0.Add(-time.Hour), End: t0.Add(24 * time.Hour), Limit: 50}
	cases := []struct {
		name    string
		attrs   []sink.LookupAttribute
		insight bool
		want    []string
	}{
		{"no attribute: management events, newest first", nil, false, []string{"e6", "e4", "e3", "e2", "e1"}},
		{"insights", nil, true, []string{"e7"}},
		{"EventId", []sink.LookupAttribute{{"EventId", "e3"}}, false, []string{"e3"}},
		{"EventName", []sink.LookupAttribute{{"EventName", "RunInstances"}}, false, []string{"e1"}},
		{"EventSource", []sink.LookupAttribute{{"EventSource", "iam.amazonaws.com"}}, false, []string{"e3"}},
		{"ReadOnly true", []sink.LookupAttribute{{"ReadOnly", "true"}}, false, []string{"e6", "e2"}},
		{"ReadOnly false", []sink.LookupAttribute{{"ReadOnly", "false"}}, false, []string{"e4", "e3", "e1"}},
		{"AccessKeyId", []sink.LookupAttribute{{"AccessKeyId", "ASIABOB"}}, false, []string{"e3"}},
		{"Username of an IAM user", []sink.LookupAttribute{{"Username", "alice"}}, false, []string{"e2", "e1"}},
		{"Username of an assumed role is its session", []sink.LookupAttribute{{"Username", "bob-session"}}, false, []string{"e3"}},
		{"Username of an assumed role is not its role", []sink.LookupAttribute{{"Username", "admin"}}, false, nil},
		{"Username of the root user", []sink.LookupAttribute{{"Username", "root"}}, false, []string{"e4"}},
		{"ResourceName from the response", []sink.LookupAttribute{{"ResourceName", "i-1"}}, false, []string{"e1"}},
		{"ResourceName from the request", []sink.LookupAttribute{{"ResourceName", "ami-1"}}, false, []string{"e1"}},
		{"ResourceName of the record's resources", []sink.LookupAttribute{{"ResourceName", "arn:aws:iam::111122223333:role/web"}}, false, []string{"e6"}},
		{"ResourceType, source-specific", []sink.LookupAttribute{{"ResourceType", "AWS::IAM::Group"}}, false, []string{"e3"}},
		{"ResourceType EC2 instance", []sink.LookupAttribute{{"ResourceType", "AWS::EC2::Instance"}}, false, []string{"e1"}},
		{"two attributes ANDed", []sink.LookupAttribute{{"Username", "alice"}, {"ReadOnly", "true"}}, false, []string{"e2"}},
		{"insight by EventSource", []sink.LookupAttribute{{"EventSource", "cloudtrail.amazonaws.com"}}, true, []string{"e7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := all
			q.Attributes, q.Insight = c.attrs, c.insight
			got, err := r.LookupEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), c.want) {
				t.Errorf("got %v, want %v", ids(got), c.want)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		q := all
		q.Attributes = []sink.LookupAttribute{{"EventId", "e3"}}
		got, err := r.LookupEvents(ctx, q)
		if err != nil || len(got) != 1 {
			t.Fatalf("%v %v", got, err)
		}
		e := got[0]
		want := []sink.LookupResource{{"AWS::IAM::Group", "devs"}, {"AWS::IAM::User", "carol"}}
		if e.EventName != "CreateUser" || e.EventSource != "iam.amazonaws.com" || e.ReadOnly != "false" ||
			e.AccessKeyID != "ASIABOB" || e.Username != "bob-session" || !e.EventTime.Equal(t0.Add(2*time.Hour)) ||
			!slices.Equal(e.Resources, want) {
			t.Errorf("got %+v", e)
		}
		if strings.Contains(string(e.Record), ": ") || !json.Valid(e.Record) {
			t.Errorf("record not compact JSON: %s", e.Record)
		}
	})

	t.Run("bad attribute", func(t *testing.T) {
		for _, a := range []sink.LookupAttribute{{"Nope", "x"}, {"ReadOnly", "yes"}, {"ReadOnly", "1"}} {
			q := all
			q.Attributes = []sink.LookupAttribute{a}
			if _, err := r.LookupEvents(ctx, q); !errors.Is(err, sink.ErrLookupAttribute) {
				t.Errorf("%v: got %v, want ErrLookupAttribute", a, err)
			}
		}
	})
}

// TestLookupKeyset pages through events that share timestamps, and stores
// new events between pages: no event is skipped or repeated.
func TestLookupKeyset(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 23, 59, 58, 0, time.UTC)
	var recs []string
	var want []string
	for i := range 25 {
		// Five events per second, across midnight (two partitions).
		id := fmt.Sprintf("k%02d", i)
		recs = append(recs, rec(id, t0.Add(time.Duration(i/5)*time.Second), "PutObject", nil))
	}
	r := lookupDB(t, recs...)
	for i := 24; i >= 0; i-- {
		want = append(want, fmt.Sprintf("k%02d", i))
	}
	ctx := context.Background()
	q := sink.LookupQuery{Start: t0, End: t0.Add(time.Hour), Limit: 7}
	var got []string
	for page := 0; ; page++ {
		events, err := r.LookupEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(events)...)
		if len(events) < q.Limit {
			break
		}
		last := events[len(events)-1]
		q.After = &sink.LookupCursor{Time: last.EventTime, ID: last.EventID}
		if page > 10 {
			t.Fatal("no end")
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// TestLookupReaderIsReadOnly: the reader's sessions run as the reader role
// and cannot write, whatever the login role may.
func TestLookupReaderIsReadOnly(t *testing.T) {
	r := lookupDB(t)
	_, err := r.LookupEvents(context.Background(), sink.LookupQuery{Limit: 1, End: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.LookupWriteProbe(r); err == nil {
		t.Fatal("a write as the reader succeeded")
	}
}

// TestLookupWindows: a lookup reads its range in windows of growing span,
// newest first; a page that spans several windows, and paging across them,
// neither skip nor repeat an event, whatever the range's start.
func TestLookupWindows(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	var recs, want []string
	for i, back := range []time.Duration{0, time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 20 * 24 * time.Hour,
		60 * 24 * time.Hour, 200 * 24 * time.Hour, 400 * 24 * time.Hour, 1000 * 24 * time.Hour} {
		id := fmt.Sprintf("w%d", i)
		recs = append(recs, rec(id, now.Add(-back), "PutObject", nil))
		want = append(want, id)
	}
	r := lookupDB(t, recs...)
	ctx := context.Background()
	for _, start := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(-1000 * 24 * time.Hour)} {
		for _, limit := range []int{1, 2, 4, 50} {
			q := sink.LookupQuery{Start: start, End: now, Limit: limit}
			var got []string
			for n := 0; n < 20; n++ {
				page, err := r.LookupEvents(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(page)...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				q.After = &sink.LookupCursor{Time: last.EventTime, ID: last.EventID}
			}
			if !slices.Equal(got, want) {
				t.Errorf("start %s, limit %d: got %v, want %v", start.Format(time.DateOnly), limit, got, want)
			}
		}
	}
	// A range that ends before the oldest partition holds nothing.
	got, err := r.LookupEvents(ctx, sink.LookupQuery{Start: now.Add(-5000 * 24 * time.Hour), End: now.Add(-2000 * 24 * time.Hour), Limit: 5})
	if err != nil || len(got) != 0 {
		t.Errorf("before the oldest partition: %v %v", ids(got), err)
	}
}

// TestLookupSeesNewPartitions: the Reader keeps the oldest partition's
// bound between lookups, and a partition made since, older than any it
// knew (a backfill's), is read by the next lookup.
func TestLookupSeesNewPartitions(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	url := pgtest.New(t)
	addRecords(t, url, rec("new", now, "PutObject", nil))
	r := openReader(t, url)
	ctx := context.Background()
	q := sink.LookupQuery{Start: now.Add(-100 * 24 * time.Hour), End: now, Limit: 10}
	got, err := r.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"new"}) {
		t.Fatalf("first lookup: %v %v", ids(got), err)
	}
	addRecords(t, url, rec("old", now.Add(-40*24*time.Hour), "PutObject", nil))
	got, err = r.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"new", "old"}) {
		t.Errorf("after a partition 40 days older was made: %v %v, want [new old]", ids(got), err)
	}
}
