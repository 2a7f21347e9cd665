package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/alert"
)

// validateAlerts checks the alert settings. The webhook secret and the
// Slack URL (whose path is its secret) are never shown.
func (c *Config) validateAlerts() []error {
	var errs []error
	bad := func(name string, got any) {
		errs = append(errs, fmt.Errorf("config: %s: want %s, got %s", name, variables[name].want, shown(got)))
	}
	if c.AlertMaxAge < 0 {
		bad("PGTRAIL_ALERT_MAX_AGE", c.AlertMaxAge)
	}
	if c.AlertSNSTopicARN != "" && !topicARN.MatchString(c.AlertSNSTopicARN) {
		bad("PGTRAIL_ALERT_SNS_TOPIC_ARN", c.AlertSNSTopicARN)
	}
	if c.AlertWebhookURL != "" && !isHTTPURL(c.AlertWebhookURL) {
		bad("PGTRAIL_ALERT_WEBHOOK_URL", c.AlertWebhookURL)
	}
	switch {
	case c.AlertWebhookURL != "" && c.AlertWebhookSecret == "":
		errs = append(errs, fmt.Errorf("config: PGTRAIL_ALERT_WEBHOOK_SECRET: required with PGTRAIL_ALERT_WEBHOOK_URL (%s)",
			variables["PGTRAIL_ALERT_WEBHOOK_SECRET"].want))
	case c.AlertWebhookSecret != "":
		if _, err := alert.ParseSecret(c.AlertWebhookSecret); err != nil {
			errs = append(errs, fmt.Errorf("config: PGTRAIL_ALERT_WEBHOOK_SECRET: %v (value not shown)", err))
		}
	}
	if c.AlertSlackWebhookURL != "" && !isHTTPURL(c.AlertSlackWebhookURL) {
		errs = append(errs, fmt.Errorf("config: PGTRAIL_ALERT_SLACK_WEBHOOK_URL: want %s (value not shown)",
			variables["PGTRAIL_ALERT_SLACK_WEBHOOK_URL"].want))
	}
	if c.AlertThrottle < 0 || c.AlertThrottle > 100000 {
		bad("PGTRAIL_ALERT_THROTTLE", c.AlertThrottle)
	}
	if c.AlertThrottleWindow < time.Minute || c.AlertThrottleWindow > 24*time.Hour {
		bad("PGTRAIL_ALERT_THROTTLE_WINDOW", c.AlertThrottleWindow)
	}
	return errs
}

// topicARN is what PGTRAIL_ALERT_SNS_TOPIC_ARN accepts.
var topicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// alertsOff reports whether PGTRAIL_RULES turns alerts off.
func (c *Config) alertsOff() bool { return strings.EqualFold(strings.TrimSpace(c.Rules), "off") }

// parseConfig reads the environment like loadConfig without requiring
// what only the commands that use the database, a queue or destinations
// need: for the offline commands (rules).
func parseConfig(ctx context.Context, lookup envconfig.Lookuper) (*Config, error) {
	var c Config
	lookup = trimmed{lookup}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookup}); err != nil {
		return nil, parseError(err, lookup)
	}
	return &c, nil
}
