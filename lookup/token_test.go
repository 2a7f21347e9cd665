package lookup_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/pgtrail/pgtrail/lookup"
)

// TestNextTokenBinding: a NextToken continues only the request that
// issued it, for the key that made it, for lookup.TokenLifetime; reused
// with another attribute, time range or category, by another key, or
// later, it gets InvalidNextTokenException, through the SDK's own client.
func TestNextTokenBinding(t *testing.T) {
	t.Parallel()
	b := setup(t, "plaso")
	const otherKeyID, otherSecret = "AKIAPGTRAILTEST00002", "pgtrail-test-secret/another-key-of-42-bytes"
	var skew atomic.Int64 // how far the server's clock is ahead
	ts := b.server(t, func(o *lookup.Options) {
		o.Credentials = lookup.StaticCredentials(map[string]string{testKeyID: testSecret, otherKeyID: otherSecret})
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	mine, theirs := client(ts, testKeyID, testSecret), client(ts, otherKeyID, otherSecret)
	ctx := context.Background()

	start, end := time.Date(2022, 2, 7, 0, 0, 0, 0, time.UTC), time.Date(2022, 2, 9, 0, 0, 0, 0, time.UTC)
	first := cloudtrail.LookupEventsInput{LookupAttributes: attr("Username", "fakeusername"), StartTime: &start, EndTime: &end, MaxResults: aws.Int32(1)}
	token := firstToken(t, mine, first)
	with := func(in cloudtrail.LookupEventsInput) *cloudtrail.LookupEventsInput {
		in.NextToken = aws.String(token)
		return &in
	}
	// The page after the first, as the token's own request gets it.
	want, err := mine.LookupEvents(ctx, with(first))
	if err != nil || len(want.Events) != 1 {
		t.Fatalf("the token's own request: %v, %d events", err, len(want.Events))
	}

	later := end.Add(time.Hour)
	earlier := start.Add(-time.Hour)
	for _, tc := range []struct {
		name string
		c    *cloudtrail.Client
		in   cloudtrail.LookupEventsInput
	}{
		{"another attribute value", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("Username", "root"), StartTime: &start, EndTime: &end}},
		{"another attribute", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("EventName", "fakeusername"), StartTime: &start, EndTime: &end}},
		{"no attribute", mine, cloudtrail.LookupEventsInput{StartTime: &start, EndTime: &end}},
		{"another start", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("Username", "fakeusername"), StartTime: &earlier, EndTime: &end}},
		{"another end", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("Username", "fakeusername"), StartTime: &start, EndTime: &later}},
		{"no time range", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("Username", "fakeusername")}},
		{"the insight category", mine, cloudtrail.LookupEventsInput{LookupAttributes: attr("EventName", "fakeusername"), StartTime: &start, EndTime: &end, EventCategory: types.EventCategoryInsight}},
		{"another key, same request", theirs, first},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.LookupEvents(ctx, with(tc.in))
			var bad *types.InvalidNextTokenException
			if !errors.As(err, &bad) {
				t.Errorf("got %v, want InvalidNextTokenException", err)
			}
		})
	}
	// The other key's own tokens work for it.
	if _, err := theirs.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: first.LookupAttributes,
		StartTime: &start, EndTime: &end, NextToken: aws.String(firstToken(t, theirs, first))}); err != nil {
		t.Errorf("the other key's own token: %v", err)
	}

	// Until it expires, the token gives the same page, page size aside.
	skew.Store(int64(lookup.TokenLifetime - 5*time.Second))
	again, err := mine.LookupEvents(ctx, with(first))
	if err != nil || len(again.Events) != 1 || aws.ToString(again.Events[0].EventId) != aws.ToString(want.Events[0].EventId) {
		t.Errorf("just before expiry: %v", err)
	}
	skew.Store(int64(lookup.TokenLifetime))
	_, err = mine.LookupEvents(ctx, with(first))
	var expired *types.InvalidNextTokenException
	if !errors.As(err, &expired) {
		t.Errorf("at expiry: got %v, want InvalidNextTokenException", err)
	}
}
