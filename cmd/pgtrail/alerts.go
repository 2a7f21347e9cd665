package main

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/sink"
)

// alertDestinations are the destinations the configuration names, in the
// order they are tried; none when no destination is set.
func (c *Config) alertDestinations(awsCfg aws.Config) []alert.Destination {
	var out []alert.Destination
	client := &http.Client{Timeout: 30 * time.Second}
	if c.AlertSNSTopicARN != "" {
		out = append(out, &alert.SNS{Client: sns.NewFromConfig(awsCfg), TopicARN: c.AlertSNSTopicARN})
	}
	if c.AlertWebhookURL != "" {
		key, _ := alert.ParseSecret(c.AlertWebhookSecret) // checked by Validate
		out = append(out, &alert.Webhook{Client: client, URL: c.AlertWebhookURL, Key: key})
	}
	if c.AlertSlackWebhookURL != "" {
		out = append(out, &alert.Slack{Client: client, URL: c.AlertSlackWebhookURL})
	}
	return out
}

// alertRelay returns the relay of run, or nil when no destination is set:
// alerts are then stored and wait, for the analyst's views or for a relay
// started later (PGTRAIL_ALERT_MAX_AGE keeps that from paging on old ones).
func (c *Config) alertRelay(dests []alert.Destination, pg *sink.Postgres, reg prometheus.Registerer, a *app) *alert.Relay {
	if len(dests) == 0 || c.alertsOff() {
		return nil
	}
	return alert.NewRelay(alert.Config{
		MaxAge: c.AlertMaxAge, Throttle: c.AlertThrottle, Window: c.AlertThrottleWindow,
	}, pg, dests, reg, a.log)
}

// hasAlertDestination reports whether a destination is set.
func (c *Config) hasAlertDestination() bool {
	return c.AlertSNSTopicARN != "" || c.AlertWebhookURL != "" || c.AlertSlackWebhookURL != ""
}
