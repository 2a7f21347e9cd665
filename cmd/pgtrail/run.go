package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run takes no arguments, got %q", fs.Args())
	}
	if a.cfg.QueueURL == "" {
		fmt.Fprintln(a.stderr, "pgtrail: config: SQS_QUEUE_URL: required by run")
		return exitError(2)
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
	defer pg.Close()
	defer startRetention(ctx, a, pg)() // stops before pg closes
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
	w := worker.New(wcfg, sqsClient, proc, metrics, a.log)

	if a.cfg.HTTPAddr != "" {
		srv, err := serveHTTP(a.cfg.HTTPAddr, reg, pg, w, a.log)
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}

	a.log.Info("pgtrail running", zap.String("version", version), zap.String("queue", a.cfg.QueueURL),
		zap.Int("pollers", wcfg.Pollers), zap.Int("object_concurrency", wcfg.ObjectConcurrency))
	err = w.Run(ctx)
	a.log.Info("pgtrail stopped")
	return err
}

// queueAttributes is what checkQueue needs from SQS.
type queueAttributes interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// checkQueueTimeout bounds checkQueue, retries and credential look-ups
// included.
const checkQueueTimeout = 30 * time.Second

// checkQueue reads the queue's redrive policy once, which proves that there
// are credentials, that they may read the queue, and that the queue exists
// in the region: its error names what to fix, the credential chain or
// SQS_QUEUE_URL. It warns when the queue has no redrive policy, with which
// a message that cannot be processed would be received again and again.
func checkQueue(ctx context.Context, creds aws.CredentialsProvider, q queueAttributes, queueURL string, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkQueueTimeout)
	defer cancel()
	if creds == nil {
		return errors.New("aws credentials: none configured")
	}
	if _, err := creds.Retrieve(ctx); err != nil {
		return fmt.Errorf("aws credentials: none found in the default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
			"AWS_PROFILE and the shared config files, AWS_WEB_IDENTITY_TOKEN_FILE, the ECS task role, the EC2 instance role): %w", err)
	}
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch code := ae.ErrorCode(); {
			case slices.Contains(noQueue, code):
				return fmt.Errorf("SQS_QUEUE_URL: no queue %s (check the URL and AWS_REGION): %s", queueURL, code)
			case strings.Contains(code, "AccessDenied") || slices.Contains(refusedCredentials, code):
				return fmt.Errorf("aws credentials: refused for the queue in SQS_QUEUE_URL %s (%s: %s): check the identity the "+
					"credential chain found and its policy (deploy/IAM.md)", queueURL, code, ae.ErrorMessage())
			}
		}
		return fmt.Errorf("SQS_QUEUE_URL: cannot read the queue %s: %w", queueURL, err)
	}
	if out.Attributes[string(types.QueueAttributeNameRedrivePolicy)] == "" {
		log.Warn("the queue has no redrive policy: a message that cannot be processed will be received again and again; "+
			"give the queue a dead-letter queue (maxReceiveCount 5)", zap.String("queue", queueURL))
	}
	return nil
}

// noQueue are the error codes with which SQS says there is no such queue:
// QueueDoesNotExist, or the query protocol's name for it; InvalidAddress
// for a URL that is not one of the endpoint's; InvalidParameterValue from
// goaws, the emulator, for a queue it does not have.
var noQueue = []string{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "InvalidAddress",
	"AWS.SimpleQueueService.InvalidParameterValue"}

// refusedCredentials are the error codes with which AWS refuses the
// credentials themselves.
var refusedCredentials = []string{
	"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
	"ExpiredToken", "ExpiredTokenException", "MissingAuthenticationToken", "IncompleteSignature", "InvalidSecurity",
}

// serveHTTP serves /metrics, /healthz (the process is alive) and /readyz
// (the database answers and SQS answered recently). The listener may be
// open to all: /readyz says what is wrong in a few words, and leaves the
// details, such as the database's user, name and host, to the log.
func serveHTTP(addr string, reg *prometheus.Registry, pg *sink.Postgres, w *worker.Worker, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	var pingFailed atomic.Bool // the latest readiness ping failed
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if err := w.Ready(); err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := pg.Ping(r.Context()); err != nil {
			if !pingFailed.Swap(true) {
				log.Warn("readiness: database unreachable", zap.Error(err))
			}
			http.Error(rw, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		pingFailed.Store(false)
		fmt.Fprintln(rw, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on PGTRAIL_HTTP_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("serving metrics and health", zap.String("addr", ln.Addr().String()))
	return srv, nil
}
