package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/sink"
)

// TestSignStandardWebhooks checks the signature against the example of
// the Standard Webhooks reference libraries' tests.
func TestSignStandardWebhooks(t *testing.T) {
	key, err := alert.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := alert.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	for _, bad := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_c2hvcnQ="} {
		if _, err := alert.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}

func testAlert() *alert.Message {
	a := &sink.Alert{
		ID: "7f0c9d9e-0000-5000-8000-000000000001", RuleID: "3e5a4a8c-1111-4222-8333-444455556666",
		Title: "CloudTrail logging stopped", Level: "high", Tags: []string{"attack.defense-evasion"}, Author: "pgtrail",
		RuleFile: "builtin/cloudtrail_logging_stopped.yml", EventID: "ev-1",
		EventTime: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), EventSource: "cloudtrail.amazonaws.com",
		EventName: "StopLogging", AWSRegion: "eu-west-1", AccountID: "111122223333",
		PrincipalARN: "arn:aws:iam::111122223333:user/<mallory>", SourceIP: "198.51.100.7", Created: time.Now(),
	}
	return &alert.Message{ID: a.ID, Alert: a}
}

func TestWebhookSignedAndVerified(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	var got struct {
		Type string        `json:"type"`
		Data alert.Payload `json:"data"`
	}
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr = alert.Verify(key, r.Header, body, time.Now(), 5*time.Minute)
		_ = json.Unmarshal(body, &got)
		if r.Header.Get("webhook-id") != "7f0c9d9e-0000-5000-8000-000000000001" {
			verr = io.ErrUnexpectedEOF
		}
	}))
	defer srv.Close()
	d := &alert.Webhook{Client: srv.Client(), URL: srv.URL, Key: key}
	if err := d.Send(context.Background(), testAlert()); err != nil {
		t.Fatal(err)
	}
	if verr != nil {
		t.Fatalf("receiver: %v", verr)
	}
	if got.Type != alert.TypeAlert || got.Data.Rule.Author != "pgtrail" || got.Data.Event.Name != "StopLogging" {
		t.Errorf("body %+v", got)
	}

	// A tampered body or another key does not verify.
	h := http.Header{}
	ts := time.Now().Unix()
	h.Set("webhook-id", "x")
	h.Set("webhook-timestamp", strings.TrimSpace(jsonNumber(ts)))
	h.Set("webhook-signature", alert.Sign(key, "x", ts, []byte("{}")))
	if err := alert.Verify(key, h, []byte("{} "), time.Now(), time.Minute); err == nil {
		t.Error("a tampered body verified")
	}
	if err := alert.Verify([]byte("another key, long enough for it"), h, []byte("{}"), time.Now(), time.Minute); err == nil {
		t.Error("another key verified")
	}
	if err := alert.Verify(key, h, []byte("{}"), time.Now().Add(time.Hour), time.Minute); err == nil {
		t.Error("an old timestamp verified")
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestWebhookFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	d := &alert.Webhook{Client: srv.Client(), URL: srv.URL, Key: []byte("k")}
	err := d.Send(context.Background(), testAlert())
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "down for maintenance") {
		t.Errorf("error %v", err)
	}
	// A connection refused names no URL: a Slack webhook's URL is its secret.
	srv.Close()
	s := &alert.Slack{URL: srv.URL + "/services/T000/B000/secret-part"}
	if err := s.Send(context.Background(), testAlert()); err == nil || strings.Contains(err.Error(), "secret-part") {
		t.Errorf("slack error %v", err)
	}
}

func TestSlackBody(t *testing.T) {
	var body map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}))
	defer srv.Close()
	if err := (&alert.Slack{URL: srv.URL}).Send(context.Background(), testAlert()); err != nil {
		t.Fatal(err)
	}
	text := body["text"]
	for _, want := range []string{"*[HIGH] CloudTrail logging stopped*", "StopLogging", "user/&lt;mallory&gt;", "by pgtrail",
		"7f0c9d9e-0000-5000-8000-000000000001"} {
		if !strings.Contains(text, want) {
			t.Errorf("slack text %q lacks %q", text, want)
		}
	}
}

type publisher struct{ in []*sns.PublishInput }

func (p *publisher) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	p.in = append(p.in, in)
	return &sns.PublishOutput{MessageId: aws.String("m")}, nil
}

func TestSNSAttributes(t *testing.T) {
	p := &publisher{}
	for _, arn := range []string{"arn:aws:sns:eu-west-1:111122223333:alerts", "arn:aws:sns:eu-west-1:111122223333:alerts.fifo"} {
		if err := (&alert.SNS{Client: p, TopicARN: arn}).Send(context.Background(), testAlert()); err != nil {
			t.Fatal(err)
		}
	}
	in := p.in[0]
	if aws.ToString(in.MessageAttributes["rule_id"].StringValue) != "3e5a4a8c-1111-4222-8333-444455556666" ||
		aws.ToString(in.MessageAttributes["level"].StringValue) != "high" ||
		aws.ToString(in.Subject) != "[HIGH] CloudTrail logging stopped" || in.MessageDeduplicationId != nil {
		t.Errorf("publish %+v", in)
	}
	var payload alert.Payload
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &payload); err != nil || payload.ID != testAlert().ID {
		t.Errorf("message %s: %v", aws.ToString(in.Message), err)
	}
	if fifo := p.in[1]; aws.ToString(fifo.MessageDeduplicationId) != testAlert().ID || fifo.MessageGroupId == nil {
		t.Errorf("fifo publish %+v", fifo)
	}
}
