package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// Destination delivers messages somewhere. Send returns nil only once the
// destination has taken the message; the relay tries again on any error.
type Destination interface {
	// Name names the destination in deliveries and metrics: sns, webhook,
	// slack.
	Name() string
	Send(ctx context.Context, m *Message) error
}

// Publisher is what SNS needs of the SNS client.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes to a topic: the message is the payload's JSON, the subject
// the one-line title, and the message attributes rule_id, level, type and
// alert_id let subscribers filter. A FIFO topic (.fifo) also gets the id as
// its deduplication id, and the rule as its group.
type SNS struct {
	Client   Publisher
	TopicARN string
}

func (*SNS) Name() string { return "sns" }

func (d *SNS) Send(ctx context.Context, m *Message) error {
	attr := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(d.TopicARN),
		Message:  aws.String(string(m.JSON())),
		Subject:  aws.String(snsSubject(m.Subject())),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"rule_id": attr(m.RuleID()), "type": attr(m.Payload().Type), "alert_id": attr(m.ID),
		},
	}
	if lv := m.Level(); lv != "" {
		in.MessageAttributes["level"] = attr(lv)
	}
	if strings.HasSuffix(d.TopicARN, ".fifo") {
		in.MessageDeduplicationId = aws.String(m.ID)
		in.MessageGroupId = aws.String(m.RuleID())
	}
	if _, err := d.Client.Publish(ctx, in); err != nil {
		return fmt.Errorf("sns: publish: %w", err)
	}
	return nil
}

// snsSubject fits s to what SNS takes as a subject: printable ASCII, at
// most 100 characters.
func snsSubject(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	if len(b) > 100 {
		b = append(b[:97], "..."...)
	}
	return string(b)
}

// Webhook posts the message as JSON, signed as Standard Webhooks does: the
// headers webhook-id (the alert's id), webhook-timestamp (Unix seconds) and
// webhook-signature ("v1," and the base64 HMAC-SHA256, keyed with the
// secret, of id.timestamp.body). The body is {"type", "timestamp", "data"}
// with the payload as data. Any 2xx answer is a delivery.
//
// The signature is a few lines of the standard library: the specification
// is short, and its Go library would add a dependency for them.
type Webhook struct {
	Client *http.Client
	URL    string
	// Key is the HMAC key: the secret, less its whsec_ prefix, decoded
	// from base64 (ParseSecret).
	Key []byte
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (*Webhook) Name() string { return "webhook" }

// ParseSecret reads a Standard Webhooks secret: whsec_ and the key in
// base64. The key must be at least 24 bytes and at most 64, as the
// specification asks.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New("want whsec_ followed by the key in base64")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("want whsec_ followed by the key in base64: %w", err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("want a key of 24 to 64 bytes, got %d", len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header's value for a message.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook's headers and body against key as a receiver
// would, within tolerance of now: one of the signatures must match.
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is %s away", ts, d)
	}
	want := Sign(key, id, t, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// webhookBody is the body of a webhook: Standard Webhooks' shape.
type webhookBody struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Payload   `json:"data"`
}

func (d *Webhook) Send(ctx context.Context, m *Message) error {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	t := now()
	p := m.Payload()
	body, err := json.Marshal(webhookBody{Type: p.Type, Timestamp: t.UTC().Truncate(time.Second), Data: p})
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", m.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(t.Unix(), 10))
	h.Set("webhook-signature", Sign(d.Key, m.ID, t.Unix(), body))
	return post(ctx, d.Client, "webhook", d.URL, h, body)
}

// Slack posts the message as a Slack-compatible incoming webhook's body,
// {"text": …}, which Slack, Mattermost and others take. An incoming webhook
// has no idempotency key: a message whose delivery was not recorded (a
// crash just after it) is posted again.
type Slack struct {
	Client *http.Client
	URL    string
}

func (*Slack) Name() string { return "slack" }

func (d *Slack) Send(ctx context.Context, m *Message) error {
	body, err := json.Marshal(map[string]string{"text": slackText(m)})
	if err != nil {
		return fmt.Errorf("slack: encode: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return post(ctx, d.Client, "slack", d.URL, h, body)
}

// slackText is the message in Slack's mrkdwn: the subject in bold, then the
// rest. &, < and > are escaped, as Slack asks.
func slackText(m *Message) string {
	subject, rest, _ := strings.Cut(m.Text(), "\n")
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	return "*" + esc.Replace(subject) + "*\n" + esc.Replace(rest) + "\n(alert " + m.ID + ")"
}

// post sends body and takes any 2xx as delivered.
func post(ctx context.Context, c *http.Client, what, target string, h http.Header, body []byte) error {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, redactURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// redactURL leaves the URL out of an HTTP client's error: a Slack webhook's
// URL is its secret.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
