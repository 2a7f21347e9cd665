package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

func (c *Config) worker() worker.Config {
	return worker.Config{
		QueueURL:          c.QueueURL,
		Pollers:           c.Pollers,
		MaxInFlight:       c.MaxInFlight,
		WaitTime:          c.WaitTime,
		ObjectConcurrency: c.ObjectConcurrency,
		VisibilityTimeout: c.VisibilityTimeout,
		MaxVisibility:     c.MaxVisibility,
		ShutdownGrace:     c.shutdownGrace(),
		StallTimeout:      c.S3StallTimeout,
		Limits:            cloudtrail.Limits{MaxObjectBytes: c.MaxObjectBytes, MaxRecordBytes: c.MaxRecordBytes},
		Allow:             worker.AllowList{Buckets: c.AllowedBuckets, Prefixes: c.AllowedPrefixes},
	}
}

// shutdownGrace is PGTRAIL_SHUTDOWN_GRACE for the worker: 0s means no
// grace, which the worker, whose zero value means its default, takes as a
// negative value.
func (c *Config) shutdownGrace() time.Duration {
	if c.ShutdownGrace == 0 {
		return -1
	}
	return c.ShutdownGrace
}

// httpClient is the AWS SDK's HTTP client with room to keep a connection
// for every request that may be in progress at once: the SDK keeps 10 idle
// connections per host, and a connection closed for want of room is a new
// TCP and TLS handshake for the next request. S3 sees up to
// PGTRAIL_OBJECT_CONCURRENCY GetObjects; SQS the long polls, the deletes
// and a heartbeat per message in flight.
func (c *Config) httpClient() *awshttp.BuildableClient {
	wc := c.worker().WithDefaults()
	perHost := max(wc.ObjectConcurrency, wc.Pollers+wc.MaxInFlight) + 4
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, perHost)
		t.MaxIdleConns = max(t.MaxIdleConns, 2*perHost)
	})
}

// cmdRun is the daemon: it consumes the queue until SIGTERM or SIGINT.
func cmdRun(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	drain := fs.Bool("drain", false, "exit once the queue is empty and nothing is in flight (backfills, demos)")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "usage: pgtrail run [-drain]\n\nThe daemon: consumes the queue in SQS_QUEUE_URL and writes the events of the objects its\nmessages name to DATABASE_URL, until SIGTERM or SIGINT. Serves /metrics, /healthz and\n/readyz on PGTRAIL_HTTP_ADDR. Configuration is read from the environment (see the README).\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(exitUsage)
	}
	if a.cfg.QueueURL == "" {
		fmt.Fprintln(a.stderr, "pgtrail: config: SQS_QUEUE_URL: required by run")
		return exitError(exitUsage)
	}

	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(a.cfg.httpClient()))
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	sqsClient := sqs.NewFromConfig(awsCfg)
	// A worker that cannot read its queue stops here with the reason,
	// instead of failing every receive for good.
	if err := checkQueue(ctx, awsCfg.Credentials, sqsClient, a.cfg.QueueURL, a.log); err != nil {
		return err
	}

	pg, err := openMigrated(ctx, a)
	if err != nil {
		return err
	}
	defer pg.Close() // after every actor has stopped
	s3Client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = a.cfg.S3ForcePathStyle
		// The gzip trailer's CRC-32 already proves every object's content
		// end to end: S3's own checksum (CRC64NVME on new objects) would
		// be computed over the body again, on every object, for nothing.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// CloudTrail uploads without a checksum; do not log its absence
		// for every object.
		o.DisableLogOutputChecksumValidationSkipped = true
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		sink.NewPoolCollector(pg))
	metrics := worker.NewMetrics(reg)

	wcfg := a.cfg.worker()
	wcfg.Drain = *drain
	// The gate pauses the pollers while the database is unreachable; it
	// learns of an outage from the writes that fail.
	wcfg.Gate = worker.NewGate(pg, worker.DefaultProbeBackoff, metrics, a.log)
	proc := worker.NewProcessor(wcfg, s3Client, wcfg.Gate.Sink(pg), pg, metrics, a.log)
	digests, err := a.cfg.digestVerifier(awsCfg, s3Client, pg, metrics, a.log)
	if err != nil {
		return err
	}
	proc.SetDigestVerifier(digests)
	w := worker.New(wcfg, sqsClient, proc, metrics, a.log)

	d := &daemon{consume: w.Run}
	if relay := a.cfg.alertRelay(a.cfg.alertDestinations(awsCfg), pg, reg, a); relay != nil {
		d.relay = relay.Run
	}
	days := a.cfg.RetentionDays
	d.retention = func(ctx context.Context) {
		var wg sync.WaitGroup
		if days != 0 {
			wg.Go(func() { pg.RunRetention(ctx, days, retentionInterval) })
		}
		wg.Go(func() { pg.RunLookupSummaries(ctx, lookupSummaries) })
		pg.RunActivityCompaction(ctx, activityCompaction)
		wg.Wait()
	}
	if a.cfg.HTTPAddr != "" {
		if d.http, d.ln, err = listenHTTP(a.cfg.HTTPAddr, reg, pg, w, a.log); err != nil {
			return err
		}
	}

	a.log.Info("pgtrail running", zap.String("version", version), zap.String("queue", a.cfg.QueueURL),
		zap.Int("pollers", wcfg.Pollers), zap.Int("object_concurrency", wcfg.ObjectConcurrency))
	err = d.run(ctx)
	a.log.Info("pgtrail stopped")
	return err
}
