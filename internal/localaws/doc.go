// Package localaws runs AWS emulators in-process for tests and local
// development: goaws (github.com/Admiral-Piett/goaws) for SQS and SNS and
// gofakes3 (github.com/johannesboyne/gofakes3, in-memory backend) for S3,
// all behind one loopback HTTP endpoint. Requests are told apart by the
// service in their SigV4 signature, so one AWS_ENDPOINT_URL serves all
// three services.
//
// A test takes the process-wide stack and names its resources uniquely,
// since tests run in parallel against the same goaws:
//
//	s, err := localaws.Shared(ctx)
//	queueURL, dlqURL, err := s.CreateQueue(ctx, localaws.UniqueName("trail"), 30, 3)
//	cfg := s.AWSConfig() // or s.SQS(), s.SNS(), s.S3()
//
// # One goaws per process
//
// goaws keeps its queues, topics and settings in package variables, so a
// process has exactly one: every Stack shares its queues and topics, while
// each Stack has an S3 of its own. goaws reads those variables without
// locks; the Stack serializes the goaws requests that change them (creating
// or deleting queues and topics, subscribing, setting attributes) against
// all others, which keeps concurrent tests free of data races. goaws' own
// logs (logrus) are discarded unless Options.Verbose is set. The goroutine
// that expires in-flight messages runs for the rest of the process; with
// goleak, call Shared before goleak.IgnoreCurrent in TestMain.
//
// # Differences from AWS
//
// SQS, as goaws v0.5.4 serves it:
//
//   - Queue URLs are http://<host:port>/000000000000/<name>, naming the
//     listener of the first Stack of the process. goaws finds a queue by the
//     last segment of its URL, so any Stack accepts any queue URL.
//   - ARNs have an empty region, such as arn:aws:sqs::000000000000:name,
//     because goaws would otherwise put the region in queue URL hosts.
//   - ApproximateReceiveCount is always 1, SentTimestamp is the time of the
//     receive, and every system attribute is returned whether asked for or
//     not.
//   - ApproximateNumberOfMessages counts in-flight messages too; QueueDepth
//     subtracts them.
//   - Visibility timeouts are checked every 250 ms. A message moves to the
//     dead-letter queue as soon as its visibility expires, or it is released
//     with ChangeMessageVisibility 0, for the maxReceiveCount-th time, not
//     at the next receive.
//   - Once a message's visibility has expired, its receipt handle is void:
//     DeleteMessage with it fails (HTTP 404, code
//     "AWS.SimpleQueueService.QueueExists", sic) where SQS would often
//     delete the message. DeleteMessageBatch fails such an entry, or any
//     unknown receipt handle, with Code "1", SenderFault true and
//     "Message not found", where SQS says ReceiptHandleIsInvalid.
//   - Errors are not the SDK's typed errors (errors.As with
//     *types.QueueDoesNotExist fails); match smithy.APIError's ErrorCode:
//     "AWS.SimpleQueueService.NonExistentQueue",
//     "AWS.SimpleQueueService.MessageNotInFlight" (ChangeMessageVisibility
//     with a void receipt handle),
//     "AWS.SimpleNotificationService.NonExistentTopic".
//   - CreateQueue of an existing name returns its URL and ignores the new
//     attributes instead of failing.
//   - Long polling is done by this package, not goaws (whose polling would
//     hold up other tests): it checks the queue every 100 ms. An explicit
//     WaitTimeSeconds of 0 does not wait, as in SQS.
//
// SNS:
//
//   - The notification envelope always has a "Subject" (empty when none was
//     published), its signature is made with a throw-away certificate, and
//     its SigningCertURL and UnsubscribeURL point at the first Stack.
//   - Only sqs and http(s) subscriptions deliver; an sqs subscription needs
//     no confirmation.
//
// S3 (gofakes3):
//
//   - Responses carry no x-amz-checksum headers, so the SDK does not
//     validate GetObject bodies; the default checksum settings work.
//   - Over plain HTTP the SDK needs a seekable PutObject body (an *os.File
//     or *bytes.Reader); an io.Reader fails in the SDK, under any checksum
//     setting.
//   - Use path-style addressing; virtual-hosted style works only for hosts
//     under localhost, such as bucket.localhost:4566.
package localaws
