package lookup_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/pgtrail/pgtrail/lookup"
)

// collect runs the SDK's LookupEvents paginator to its end, pageSize events
// a page, and returns every event and the number of pages.
func collect(t *testing.T, c *cloudtrail.Client, in cloudtrail.LookupEventsInput, pageSize int32) ([]types.Event, int) {
	t.Helper()
	p := cloudtrail.NewLookupEventsPaginator(c, &in, func(o *cloudtrail.LookupEventsPaginatorOptions) { o.Limit = pageSize })
	var out []types.Event
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		if len(page.Events) > int(pageSize) {
			t.Fatalf("page %d: %d events, asked for %d", pages+1, len(page.Events), pageSize)
		}
		out = append(out, page.Events...)
		pages++
		if pages > 10000 {
			t.Fatal("the paginator does not end")
		}
	}
	return out, pages
}

func attr(key, value string) []types.LookupAttribute {
	return []types.LookupAttribute{{AttributeKey: types.LookupAttributeKey(key), AttributeValue: aws.String(value)}}
}

func eventIDs(events []types.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, aws.ToString(e.EventId))
	}
	return out
}

// record is the CloudTrailEvent of an event, parsed.
func record(t *testing.T, e types.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &m); err != nil {
		t.Fatalf("%s: CloudTrailEvent is not a JSON object: %v", aws.ToString(e.EventId), err)
	}
	return m
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// wantUsername is the Username rule of docs/lookup.md, written again from
// the record, independently of the SQL that the server runs.
func wantUsername(rec map[string]any) string {
	ui, _ := rec["userIdentity"].(map[string]any)
	switch str(ui["type"]) {
	case "Root":
		return "root"
	case "AssumedRole", "FederatedUser":
		if arn := str(ui["arn"]); strings.Contains(arn, "/") {
			if s := arn[strings.LastIndex(arn, "/")+1:]; s != "" {
				return s
			}
		}
		_, session, _ := strings.Cut(str(ui["principalId"]), ":")
		return session
	}
	return str(ui["userName"])
}

// TestCompatibility drives the server with the AWS SDK for Go v2's own
// CloudTrail client and paginator, over the whole corpus.
func TestCompatibility(t *testing.T) {
	b := setup(t)
	ts := b.server(t)
	c := client(ts, testKeyID, testSecret)
	ctx := context.Background()

	// Every management event, newest first, 50 a page: the reference the
	// filtered lookups below are checked against.
	all, pages := collect(t, c, cloudtrail.LookupEventsInput{}, 50)
	var stored, dataEvents int
	if err := b.owner.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type IS DISTINCT FROM 'AwsCloudTrailInsight' AND management_event IS NOT FALSE),
	        count(*) FILTER (WHERE management_event = false) FROM cloudtrail_events`).Scan(&stored, &dataEvents); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d management events in %d pages; %d data events left out", len(all), pages, dataEvents)
	if len(all) != stored || len(all) < 300 || dataEvents == 0 {
		t.Fatalf("got %d events, the database holds %d management events (%d data events)", len(all), stored, dataEvents)
	}

	t.Run("order and fields", func(t *testing.T) {
		seen := map[string]bool{}
		for i, e := range all {
			id := aws.ToString(e.EventId)
			if seen[id+aws.ToTime(e.EventTime).String()] {
				t.Errorf("%s twice", id)
			}
			seen[id+aws.ToTime(e.EventTime).String()] = true
			if i > 0 {
				prev := all[i-1]
				if c := cmp.Or(aws.ToTime(prev.EventTime).Compare(aws.ToTime(e.EventTime)), strings.Compare(aws.ToString(prev.EventId), id)); c <= 0 {
					t.Errorf("%s after %s: not newest first", id, aws.ToString(prev.EventId))
				}
			}
			rec := record(t, e)
			ui, _ := rec["userIdentity"].(map[string]any)
			if rid := str(rec["eventID"]); rid != "" && rid != id {
				t.Errorf("%s: EventId, record says %s", id, rid)
			}
			if at, err := time.Parse(time.RFC3339, str(rec["eventTime"])); err == nil && !at.Equal(aws.ToTime(e.EventTime)) {
				t.Errorf("%s: EventTime %s, record says %s", id, aws.ToTime(e.EventTime), at)
			}
			if got, want := aws.ToString(e.EventName), str(rec["eventName"]); want != "" && got != want {
				t.Errorf("%s: EventName %q, record says %q", id, got, want)
			}
			if got, want := aws.ToString(e.EventSource), str(rec["eventSource"]); want != "" && got != want {
				t.Errorf("%s: EventSource %q, record says %q", id, got, want)
			}
			if got, want := aws.ToString(e.AccessKeyId), str(ui["accessKeyId"]); got != want {
				t.Errorf("%s: AccessKeyId %q, record says %q", id, got, want)
			}
			if got, want := aws.ToString(e.ReadOnly), strings.ToLower(str(rec["readOnly"])); want != "" && got != want {
				t.Errorf("%s: ReadOnly %q, record says %q", id, got, want)
			}
			if got, want := aws.ToString(e.Username), wantUsername(rec); got != want {
				t.Errorf("%s: Username %q, want %q (userIdentity %v)", id, got, want, ui)
			}
			if e.Resources == nil {
				t.Errorf("%s: Resources absent, CloudTrail sends [] at least", id)
			}
		}
	})

	// Each attribute, for its most common value, one in the middle and the
	// rarest, 7 events a page: the answer is exactly the events of the
	// full listing that have that value, in the same order.
	fields := map[string]func(types.Event) []string{
		"EventId":     func(e types.Event) []string { return []string{aws.ToString(e.EventId)} },
		"EventName":   func(e types.Event) []string { return []string{aws.ToString(e.EventName)} },
		"EventSource": func(e types.Event) []string { return []string{aws.ToString(e.EventSource)} },
		"ReadOnly":    func(e types.Event) []string { return []string{aws.ToString(e.ReadOnly)} },
		"Username":    func(e types.Event) []string { return []string{aws.ToString(e.Username)} },
		"AccessKeyId": func(e types.Event) []string { return []string{aws.ToString(e.AccessKeyId)} },
		"ResourceType": func(e types.Event) (out []string) {
			for _, r := range e.Resources {
				out = append(out, aws.ToString(r.ResourceType))
			}
			return out
		},
		"ResourceName": func(e types.Event) (out []string) {
			for _, r := range e.Resources {
				out = append(out, aws.ToString(r.ResourceName))
			}
			return out
		},
	}
	for _, key := range []string{"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"} {
		field := fields[key]
		counts := map[string]int{}
		for _, e := range all {
			for _, v := range field(e) {
				if v != "" {
					counts[v]++
				}
			}
		}
		values := sortedByCount(counts)
		if len(values) == 0 {
			t.Errorf("%s: the corpus has no value to look up", key)
			continue
		}
		for _, v := range []string{values[0], values[len(values)/2], values[len(values)-1]} {
			t.Run(key+"="+v, func(t *testing.T) {
				var want []string
				for _, e := range all {
					if slices.Contains(field(e), v) {
						want = append(want, aws.ToString(e.EventId))
					}
				}
				got, pages := collect(t, c, cloudtrail.LookupEventsInput{LookupAttributes: attr(key, v)}, 7)
				if !slices.Equal(eventIDs(got), want) {
					t.Errorf("got %d events %v\nwant %d %v", len(got), eventIDs(got), len(want), want)
				}
				if len(want) > 7 && pages < 2 {
					t.Errorf("%d events in %d page", len(want), pages)
				}
			})
		}
	}

	t.Run("time range", func(t *testing.T) {
		// An inclusive window over the middle of the listing.
		lo, hi := aws.ToTime(all[len(all)*2/3].EventTime), aws.ToTime(all[len(all)/3].EventTime)
		var want []string
		for _, e := range all {
			if at := aws.ToTime(e.EventTime); !at.Before(lo) && !at.After(hi) {
				want = append(want, aws.ToString(e.EventId))
			}
		}
		got, _ := collect(t, c, cloudtrail.LookupEventsInput{StartTime: &lo, EndTime: &hi}, 11)
		if !slices.Equal(eventIDs(got), want) || len(want) < 10 {
			t.Errorf("got %d events, want %d", len(got), len(want))
		}
	})

	t.Run("two attributes ANDed", func(t *testing.T) {
		e := all[0]
		in := cloudtrail.LookupEventsInput{LookupAttributes: append(attr("EventName", aws.ToString(e.EventName)),
			attr("ReadOnly", aws.ToString(e.ReadOnly))...)}
		var want []string
		for _, x := range all {
			if aws.ToString(x.EventName) == aws.ToString(e.EventName) && aws.ToString(x.ReadOnly) == aws.ToString(e.ReadOnly) {
				want = append(want, aws.ToString(x.EventId))
			}
		}
		got, _ := collect(t, c, in, 50)
		if !slices.Equal(eventIDs(got), want) {
			t.Errorf("got %v, want %v", eventIDs(got), want)
		}
	})

	t.Run("insight", func(t *testing.T) {
		got, _ := collect(t, c, cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight}, 50)
		var want int
		if err := b.owner.Pool().QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events WHERE event_type = 'AwsCloudTrailInsight'`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if len(got) != want || want == 0 {
			t.Fatalf("got %d insight events, want %d", len(got), want)
		}
		for _, e := range got {
			if str(record(t, e)["eventType"]) != "AwsCloudTrailInsight" || aws.ToString(e.EventName) == "" {
				t.Errorf("%s: not an insight, or without its name", aws.ToString(e.EventId))
			}
			if slices.Contains(eventIDs(all), aws.ToString(e.EventId)) {
				t.Errorf("%s: an insight among the management events", aws.ToString(e.EventId))
			}
		}
		// Insights look-ups take EventName.
		byName, _ := collect(t, c, cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight,
			LookupAttributes: attr("EventName", aws.ToString(got[0].EventName))}, 50)
		if len(byName) == 0 {
			t.Error("no insight by its EventName")
		}
	})

	t.Run("errors", func(t *testing.T) {
		token := firstToken(t, c, cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "true"), MaxResults: aws.Int32(2)})
		tampered := []byte(token)
		tampered[len(tampered)/2] ^= 1
		start, end := time.Unix(1600000000, 0), time.Unix(1500000000, 0)
		cases := []struct {
			name string
			in   cloudtrail.LookupEventsInput
			want any
		}{
			{"unknown attribute", cloudtrail.LookupEventsInput{LookupAttributes: attr("Region", "us-east-1")}, new(*types.InvalidLookupAttributesException)},
			{"ReadOnly neither true nor false", cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "yes")}, new(*types.InvalidLookupAttributesException)},
			{"value over 2000 characters", cloudtrail.LookupEventsInput{LookupAttributes: attr("EventName", strings.Repeat("x", 2001))}, new(*types.InvalidLookupAttributesException)},
			{"insight by Username", cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight, LookupAttributes: attr("Username", "root")}, new(*types.InvalidLookupAttributesException)},
			{"start after end", cloudtrail.LookupEventsInput{StartTime: &start, EndTime: &end}, new(*types.InvalidTimeRangeException)},
			{"MaxResults 0", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, new(*types.InvalidMaxResultsException)},
			{"MaxResults 51", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, new(*types.InvalidMaxResultsException)},
			{"EventCategory management", cloudtrail.LookupEventsInput{EventCategory: "management"}, new(*types.InvalidEventCategoryException)},
			{"made-up NextToken", cloudtrail.LookupEventsInput{NextToken: aws.String("bm90IGEgdG9rZW4")}, new(*types.InvalidNextTokenException)},
			{"tampered NextToken", cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "true"), NextToken: aws.String(string(tampered))}, new(*types.InvalidNextTokenException)},
			{"NextToken of another query", cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "false"), NextToken: aws.String(token)}, new(*types.InvalidNextTokenException)},
			{"NextToken with another time range", cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "true"), StartTime: &end, NextToken: aws.String(token)}, new(*types.InvalidNextTokenException)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.LookupEvents(ctx, &tc.in)
				if err == nil || !errors.As(err, tc.want) {
					t.Errorf("got %v, want %T", err, tc.want)
				}
			})
		}
		// The token itself works with its own query, and its page size may
		// change.
		if _, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr("ReadOnly", "true"), NextToken: aws.String(token)}); err != nil {
			t.Errorf("the token's own query: %v", err)
		}
	})

	t.Run("several attributes refused unless enabled", func(t *testing.T) {
		strict := client(b.server(t, func(o *lookup.Options) { o.MultipleAttributes = false }), testKeyID, testSecret)
		_, err := strict.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: append(attr("ReadOnly", "true"), attr("EventName", "x")...)})
		var want *types.InvalidLookupAttributesException
		if !errors.As(err, &want) {
			t.Errorf("got %v, want InvalidLookupAttributesException", err)
		}
	})

	t.Run("signatures", func(t *testing.T) {
		cases := []struct {
			name, id, secret, code string
		}{
			{"wrong secret", testKeyID, "not-the-secret", "InvalidSignatureException"},
			{"unknown key", "AKIANOTAKEY000000000", testSecret, "UnrecognizedClientException"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := client(ts, tc.id, tc.secret).LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
				expectCode(t, err, tc.code)
			})
		}
		t.Run("unsigned", func(t *testing.T) {
			anon := cloudtrail.New(cloudtrail.Options{Region: testRegion, BaseEndpoint: aws.String(ts.URL),
				Credentials: aws.AnonymousCredentials{}})
			_, err := anon.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
			expectCode(t, err, "MissingAuthenticationTokenException")
		})
		const short = "CloudTrail_20131101.LookupEvents"
		raw := []struct {
			name   string
			req    func() *http.Request
			status int
			code   string
		}{
			{"correct, by hand", func() *http.Request {
				return rawRequest(t, ts, short, `{"MaxResults":1}`, time.Now(), testKeyID, testSecret)
			}, 200, ""},
			{"stale: signed 6 minutes ago", func() *http.Request {
				return rawRequest(t, ts, short, `{}`, time.Now().Add(-6*time.Minute), testKeyID, testSecret)
			}, 403, "InvalidSignatureException"},
			{"from the future", func() *http.Request {
				return rawRequest(t, ts, short, `{}`, time.Now().Add(6*time.Minute), testKeyID, testSecret)
			}, 403, "InvalidSignatureException"},
			{"body changed after signing", func() *http.Request {
				r := rawRequest(t, ts, short, `{"MaxResults":1}`, time.Now(), testKeyID, testSecret)
				r.Body = http.NoBody
				r.ContentLength = 0
				return r
			}, 403, "InvalidSignatureException"},
			{"target changed after signing", func() *http.Request {
				r := rawRequest(t, ts, short, `{}`, time.Now(), testKeyID, testSecret)
				r.Header.Set("X-Amz-Target", "CloudTrail_20131101.DeleteTrail")
				return r
			}, 403, "InvalidSignatureException"},
			{"garbled Authorization", func() *http.Request {
				r := rawRequest(t, ts, short, `{}`, time.Now(), testKeyID, testSecret)
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
				return r
			}, 400, "IncompleteSignatureException"},
			{"session token", func() *http.Request {
				r := rawRequest(t, ts, short, `{}`, time.Time{}, "", "")
				r.Header.Set("X-Amz-Security-Token", "token")
				signAt(t, r, `{}`, time.Now())
				return r
			}, 403, "UnrecognizedClientException"},
		}
		for _, tc := range raw {
			t.Run(tc.name, func(t *testing.T) {
				status, code, _ := do(t, tc.req())
				if status != tc.status || code != tc.code {
					t.Errorf("got %d %q, want %d %q", status, code, tc.status, tc.code)
				}
			})
		}
	})

	t.Run("long X-Amz-Target", func(t *testing.T) {
		e := all[len(all)/2]
		body := fmt.Sprintf(`{"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":%q}]}`, aws.ToString(e.EventId))
		status, code, out := do(t, rawRequest(t, ts, "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", body, time.Now(), testKeyID, testSecret))
		if status != 200 || !strings.Contains(out, aws.ToString(e.EventId)) {
			t.Errorf("got %d %q: %s", status, code, out)
		}
		status, code, _ = do(t, rawRequest(t, ts, "CloudTrail_20131101.DescribeTrails", `{}`, time.Now(), testKeyID, testSecret))
		if status != 400 || code != "UnsupportedOperationException" {
			t.Errorf("another operation: got %d %q", status, code)
		}
		status, code, _ = do(t, rawRequest(t, ts, "DynamoDB_20120810.Scan", `{}`, time.Now(), testKeyID, testSecret))
		if status != 400 || code != "UnknownOperationException" {
			t.Errorf("another service: got %d %q", status, code)
		}
		status, code, _ = do(t, rawRequest(t, ts, "CloudTrail_20131101.LookupEvents", `{"LookupAttributes":[{"AttributeKey":"EventName"}]}`, time.Now(), testKeyID, testSecret))
		if status != 400 || code != "InvalidLookupAttributesException" {
			t.Errorf("attribute without a value: got %d %q", status, code)
		}
		status, code, _ = do(t, rawRequest(t, ts, "CloudTrail_20131101.LookupEvents", `{"StartTime":"yesterday"}`, time.Now(), testKeyID, testSecret))
		if status != 400 || (code != "SerializationException" && code != "InvalidTimeRangeException") {
			t.Errorf("StartTime not a number: got %d %q", status, code)
		}
	})

	t.Run("throttled per key", func(t *testing.T) {
		slow := client(b.server(t, func(o *lookup.Options) { o.Rate, o.Burst = rate.Limit(0.01), 1 }), testKeyID, testSecret)
		if _, err := slow.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		_, err := slow.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
		expectCode(t, err, "ThrottlingException")
	})

	t.Run("AWS's 90-day window unless full history", func(t *testing.T) {
		newest := aws.ToTime(all[0].EventTime)
		now := newest.Add(89 * 24 * time.Hour)
		aws90 := client(b.server(t, func(o *lookup.Options) {
			o.FullHistory = false
			o.Now = func() time.Time { return now }
		}), testKeyID, testSecret)
		var want []string
		for _, e := range all {
			if !aws.ToTime(e.EventTime).Before(now.Add(-lookup.AWSWindow)) {
				want = append(want, aws.ToString(e.EventId))
			}
		}
		old := time.Unix(0, 0)
		got, _ := collect(t, aws90, cloudtrail.LookupEventsInput{StartTime: &old}, 50)
		if !slices.Equal(eventIDs(got), want) || len(want) == 0 || len(want) == len(all) {
			t.Errorf("got %d events, want the %d of the last 90 days (of %d)", len(got), len(want), len(all))
		}
	})

	t.Run("AWS CLI", func(t *testing.T) {
		awsCLI(t, ts.URL, all)
	})
}

// awsCLI runs `aws cloudtrail lookup-events --endpoint-url` against the
// server, as a user would, if the AWS CLI is installed: botocore signs with
// its own SigV4 code and sends the long X-Amz-Target.
func awsCLI(t *testing.T, url string, all []types.Event) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH: botocore's signature and long X-Amz-Target untested here")
	}
	name := aws.ToString(all[0].EventName)
	var want []string
	for _, e := range all {
		if aws.ToString(e.EventName) == name {
			want = append(want, aws.ToString(e.EventId))
		}
	}
	cmd := exec.Command(bin, "cloudtrail", "lookup-events", "--endpoint-url", url, "--region", testRegion,
		"--lookup-attributes", "AttributeKey=EventName,AttributeValue="+name, "--page-size", "3", "--output", "json")
	cmd.Env = cliEnv(testSecret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws cloudtrail lookup-events: %v\n%s", err, out)
	}
	var res struct {
		Events []struct{ EventId string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got []string
	for _, e := range res.Events {
		got = append(got, e.EventId)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the AWS CLI got %v, want %v", got, want)
	}

	bad := exec.Command(bin, "cloudtrail", "lookup-events", "--endpoint-url", url, "--region", testRegion, "--max-items", "1")
	bad.Env = append(cliEnv("wrong"), "AWS_MAX_ATTEMPTS=1")
	out, err = bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "InvalidSignatureException") {
		t.Errorf("the AWS CLI with a wrong secret: %v\n%s", err, out)
	}
}

// cliEnv is the environment of an AWS CLI run that signs with the test key
// and the given secret, and reads no configuration of the machine's.
func cliEnv(secret string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ACCESS_KEY_ID="+testKeyID, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
}

func sortedByCount(counts map[string]int) []string {
	var values []string
	for v := range counts {
		values = append(values, v)
	}
	slices.SortFunc(values, func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	return values
}

func firstToken(t *testing.T, c *cloudtrail.Client, in cloudtrail.LookupEventsInput) string {
	t.Helper()
	out, err := c.LookupEvents(context.Background(), &in)
	if err != nil {
		t.Fatal(err)
	}
	if out.NextToken == nil {
		t.Fatal("no NextToken")
	}
	return *out.NextToken
}

func expectCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("got %v, want %s", err, code)
	}
}

// do sends r and returns the status, the error code and the body.
func do(t *testing.T, r *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Type != resp.Header.Get("X-Amzn-ErrorType") {
		t.Errorf("__type %q, X-Amzn-ErrorType %q", e.Type, resp.Header.Get("X-Amzn-ErrorType"))
	}
	return resp.StatusCode, e.Type, string(body)
}
