// Package alert raises and delivers pgtrail's alerts.
//
// Rules adapts a compiled Sigma rule set (package sigma) to the sink's
// Matcher: the sink evaluates it on each event it newly inserts and stores
// an alert per match in the same transaction (cloudtrail_alerts).
//
// Relay delivers the stored alerts. It claims those that wait, with FOR
// UPDATE SKIP LOCKED, so that every worker of a fleet may run one; it sends
// each to every Destination (an SNS topic, a webhook signed as Standard
// Webhooks does, a Slack-compatible incoming webhook) and records the
// outcome. Delivery is at least once: an alert is settled only once every
// destination took it, a failed destination is tried again with capped,
// jittered exponential backoff for as long as it takes, and a relay that
// dies mid-delivery leaves its alerts to another once their lease runs out.
// Every message carries the alert's id, the same for every attempt, for the
// receiver to drop a second copy.
//
// A rule that fires on thousands of events (an incident, a noisy rule) is
// throttled: per rule and window, the first alerts are sent one by one and
// the rest are told in one summary when the window closes. Alerts for
// events older than the maximum age (a backfill) are stored, not sent.
package alert
