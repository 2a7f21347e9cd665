package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/corpus"
)

// rulesMain runs pgtrail with args and no DATABASE_URL: rules needs none.
func rulesMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, envconfig.MapLookuper(env), &out, &errb)
	return code, out.String(), errb.String()
}

const stopLoggingLog = `{"Records":[
 {"eventVersion":"1.08","eventID":"e-stop","eventTime":"2024-05-01T10:00:00Z","eventSource":"cloudtrail.amazonaws.com",
  "eventName":"StopLogging","awsRegion":"eu-west-1","recipientAccountId":"111122223333",
  "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333"},
  "requestParameters":{"name":"main"}},
 {"eventVersion":"1.08","eventID":"e-list","eventTime":"2024-05-01T10:00:01Z","eventSource":"s3.amazonaws.com",
  "eventName":"ListBuckets","awsRegion":"eu-west-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob"}}
]}`

const myRule = `title: Trail stopped by mallory
id: 0b8f4a52-9d8e-4c3b-a1f0-2d6e7c5b4a39
author: Security Team
level: critical
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: StopLogging
    userIdentity.arn|endswith: /mallory
  condition: selection
`

func TestRulesTest(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "trail.json")
	ruleFile := filepath.Join(dir, "mine.yml")
	if err := os.WriteFile(logFile, []byte(stopLoggingLog), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ruleFile, []byte(myRule), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := rulesMain(t, nil, "rules", "test", "-json", "builtin,"+ruleFile, dir)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	byRule := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		byRule[m["title"].(string)] = m
	}
	mine := byRule["Trail stopped by mallory"]
	if mine == nil || mine["rule_id"] != "0b8f4a52-9d8e-4c3b-a1f0-2d6e7c5b4a39" || mine["event_id"] != "e-stop" ||
		mine["event_name"] != "StopLogging" || mine["event_time"] != "2024-05-01T10:00:00Z" || mine["author"] != "Security Team" {
		t.Errorf("my rule's match: %v", mine)
	}
	if m := byRule["CloudTrail Logging Stopped"]; m == nil || m["author"] != "pgtrail" {
		t.Errorf("the built-in rule's match: %v", m)
	}
	for _, m := range byRule {
		if m["event_id"] == "e-list" {
			t.Errorf("ListBuckets matched %v", m)
		}
	}
	if !strings.Contains(stderr, "2 events") {
		t.Errorf("summary %q", stderr)
	}

	// The table names the author too; only my rules, without builtin.
	code, out, _ = rulesMain(t, nil, "rules", "test", ruleFile, logFile)
	if code != 0 || !strings.Contains(out, "Security Team") || strings.Contains(out, "CloudTrail Logging Stopped") {
		t.Errorf("status %d, table:\n%s", code, out)
	}
}

func TestRulesRefusedAndList(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(myRule, "eventName: StopLogging", "eventName|sounds_like: StopLogging", 1)
	bad = strings.Replace(bad, "0b8f4a52", "1b8f4a52", 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.yml"), []byte(myRule), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := rulesMain(t, map[string]string{"PGTRAIL_RULES": dir}, "rules", "list")
	if code != 1 || !strings.Contains(out, "Trail stopped by mallory") || !strings.Contains(out, "refused: ") ||
		!strings.Contains(out, "bad.yml") || !strings.Contains(out, "sounds_like") || strings.Contains(out, "CloudTrail Logging Stopped") {
		t.Errorf("status %d, list:\n%s", code, out)
	}
	code, out, _ = rulesMain(t, nil, "rules", "list")
	if code != 0 || !strings.Contains(out, "CloudTrail Logging Stopped") || !strings.Contains(out, "0 refused") {
		t.Errorf("builtin list: status %d\n%s", code, out)
	}
	code, _, stderr := rulesMain(t, nil, "rules", "test", dir, filepath.Join(dir, "missing.json"))
	if code != 1 || !strings.Contains(stderr, "refused: ") {
		t.Errorf("test with a refused rule: status %d, %q", code, stderr)
	}
	if code, _, _ := rulesMain(t, nil, "rules", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: status %d", code)
	}
}

// TestRulesTestCorpus: the built-in pack on the stratus-red-team
// detonations finds the defense evasion they perform.
func TestRulesTestCorpus(t *testing.T) {
	dir := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	code, out, stderr := rulesMain(t, nil, "rules", "test", "-json", "builtin", dir)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	titles := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct{ Title string }
		_ = json.Unmarshal([]byte(line), &m)
		titles[m.Title]++
	}
	for _, want := range []string{"CloudTrail Logging Stopped", "CloudTrail Trail Deleted", "VPC Flow Logs Deleted",
		"Account Left the Organization", "CloudTrail Event Selectors Changed"} {
		if titles[want] != 1 {
			t.Errorf("%s: %d matches, want 1 (%v)", want, titles[want], titles)
		}
	}
}

func TestAlertConfig(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://x@h/db"}
	cfg, err := loadConfig(context.Background(), envconfig.MapLookuper(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AlertMaxAge.Hours() != 24 || cfg.AlertThrottle != 20 || cfg.AlertThrottleWindow.Minutes() != 15 || cfg.alertsOff() {
		t.Errorf("alert defaults %+v", cfg)
	}
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for name, env := range map[string]map[string]string{
		"PGTRAIL_ALERT_SNS_TOPIC_ARN":     {"PGTRAIL_ALERT_SNS_TOPIC_ARN": "my-topic"},
		"PGTRAIL_ALERT_WEBHOOK_URL":       {"PGTRAIL_ALERT_WEBHOOK_URL": "ftp://x", "PGTRAIL_ALERT_WEBHOOK_SECRET": secret},
		"PGTRAIL_ALERT_WEBHOOK_SECRET":    {"PGTRAIL_ALERT_WEBHOOK_URL": "https://hooks.example.com/x"},
		"PGTRAIL_ALERT_THROTTLE_WINDOW":   {"PGTRAIL_ALERT_THROTTLE_WINDOW": "1s"},
		"PGTRAIL_ALERT_THROTTLE":          {"PGTRAIL_ALERT_THROTTLE": "-1"},
		"PGTRAIL_ALERT_MAX_AGE":           {"PGTRAIL_ALERT_MAX_AGE": "-1h"},
		"PGTRAIL_ALERT_SLACK_WEBHOOK_URL": {"PGTRAIL_ALERT_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/secretpart"},
	} {
		for k, v := range base {
			env[k] = v
		}
		_, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", env, err, name)
		}
		if err != nil && strings.Contains(err.Error(), "secretpart") {
			t.Errorf("the Slack URL is shown: %v", err)
		}
	}
	env := map[string]string{"PGTRAIL_ALERT_WEBHOOK_URL": "https://hooks.example.com/x", "PGTRAIL_ALERT_WEBHOOK_SECRET": "whsec_bm90IGxvbmcgZW5vdWdo"}
	for k, v := range base {
		env[k] = v
	}
	if _, err := loadConfig(context.Background(), envconfig.MapLookuper(env)); err == nil || strings.Contains(err.Error(), "bm90IGxvbmcgZW5vdWdo") {
		t.Errorf("a short secret: %v", err)
	}
}
