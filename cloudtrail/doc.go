// Package cloudtrail holds CloudTrail's formats: what AWS writes to S3 and
// how to read it, with no I/O of its own. It imports only the standard
// library and a compression package, never the AWS SDK, pgx, zap or
// Prometheus, so that every other package may import it.
//
// It holds the log file format: Event, the row of cloudtrail_events that
// Columns describes; Entry, one item of an object's record stream (an
// Event, or a Reject); the Decoder, which gunzips an object and yields its
// records; Normalize, which turns a record into an Event; and the S3 key
// layout (KindOfKey, ParseKey, LogFolder.DayPrefixes).
//
// It holds the digest format, CloudTrail's proof that log files were
// not altered, removed or added after delivery: the digest's S3 key
// (ParseDigestKey), its body (ParseDigest), its signature (VerifyDigest),
// the chain that links each digest to the one before it (CheckDigestLink),
// and the hash of a log file's uncompressed bytes that a digest lists
// (DigestLogReader, CheckDigestLogFile). The rules follow AWS's
// documentation of the digest file and aws-cli's validate-logs command
// (awscli/customizations/cloudtrail/validation.py); doc comments name the
// validate-logs message that each verdict corresponds to.
package cloudtrail
