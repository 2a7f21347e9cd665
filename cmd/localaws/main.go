// Command localaws serves emulated SQS, SNS and S3 on one loopback port for
// local development and demos:
//
//	localaws -addr 127.0.0.1:4566 -queue trail -bucket trail-logs -topic trail
//
// It prints the endpoint and the resources it created as NAME=value lines
// on stdout, ready for eval, and runs until SIGINT or SIGTERM. Point the
// AWS SDK or CLI at it with AWS_ENDPOINT_URL and any credentials; S3
// clients should use path-style addressing. The AWS CLI v1 ignores
// AWS_ENDPOINT_URL for sqs commands: give them --endpoint-url.
//
// It refuses to listen on anything but a loopback address, as the
// emulators accept any credentials. See package localaws for how the
// emulators differ from AWS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// shutdownGrace bounds how long requests in flight may take at shutdown.
const shutdownGrace = 5 * time.Second

// config holds the command line.
type config struct {
	addr            string
	queue           string
	visibility      int
	maxReceiveCount int
	bucket          string
	topic           string
	raw             bool
	seed            string
	allowRemote     bool
	verbose         bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "localaws:", err)
		os.Exit(1)
	}
}

// run parses args, starts the stack, creates the requested resources and
// serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	stack, err := localaws.Start(ctx, localaws.Options{Addr: cfg.addr, AllowRemote: cfg.allowRemote, Verbose: cfg.verbose})
	if err != nil {
		return err
	}
	// Stopping: end long polls, let other requests finish within the grace.
	defer func() {
		fmt.Fprintln(stderr, "localaws: stopping")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := stack.Shutdown(shutdownCtx); err != nil {
			fmt.Fprintln(stderr, "localaws:", err)
		}
	}()

	// AWS_DEFAULT_REGION is for the AWS CLI v1, which ignores AWS_REGION.
	fmt.Fprintf(stdout, "AWS_ENDPOINT_URL=%s\nAWS_REGION=%s\nAWS_DEFAULT_REGION=%[2]s\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n",
		stack.Endpoint, stack.Region, localaws.AccessKeyID, localaws.SecretAccessKey)
	if err := createResources(ctx, stack, cfg, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "localaws: serving SQS, SNS and S3 on %s; interrupt to stop\n", stack.Endpoint)
	<-ctx.Done()
	return nil
}

// parseFlags parses the command line into a config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("localaws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: localaws [flags]\n\nServes emulated SQS, SNS and S3 on one loopback address.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:4566", "loopback `host:port` serving SQS, SNS and S3")
	fs.StringVar(&cfg.queue, "queue", "", "create this SQS queue, with a dead-letter queue `name`-dlq")
	fs.IntVar(&cfg.visibility, "visibility", 30, "visibility timeout of -queue, in `seconds`")
	fs.IntVar(&cfg.maxReceiveCount, "max-receive", 3, "receives of a -queue message before it moves to the DLQ; 0 for no DLQ")
	fs.StringVar(&cfg.bucket, "bucket", "", "create this S3 bucket")
	fs.StringVar(&cfg.topic, "topic", "", "create this SNS topic, subscribed to -queue if given")
	fs.BoolVar(&cfg.raw, "raw", false, "deliver -topic messages to -queue raw, without the SNS envelope")
	fs.StringVar(&cfg.seed, "seed", "", "upload the CloudTrail tree in `dir` to -bucket and announce every object as CloudTrail does (through -topic, or straight to -queue)")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a non-loopback -addr, inside a container whose port is published on loopback only (the emulators check no credentials)")
	fs.BoolVar(&cfg.verbose, "v", false, "log goaws requests to stderr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.seed != "" && (cfg.bucket == "" || cfg.queue == "" && cfg.topic == "") {
		return config{}, errors.New("-seed needs -bucket, and -topic or -queue")
	}
	return cfg, nil
}

// createResources creates what cfg asks for and prints each as NAME=value.
func createResources(ctx context.Context, stack *localaws.Stack, cfg config, stdout io.Writer) error {
	var queueURL, topicARN string
	if cfg.queue != "" {
		q, dlq, err := stack.CreateQueue(ctx, cfg.queue, cfg.visibility, cfg.maxReceiveCount)
		if err != nil {
			return err
		}
		queueURL = q
		fmt.Fprintf(stdout, "QUEUE_URL=%s\n", q)
		if dlq != "" {
			fmt.Fprintf(stdout, "DLQ_URL=%s\n", dlq)
		}
	}
	if cfg.bucket != "" {
		if err := stack.CreateBucket(ctx, cfg.bucket); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "BUCKET=%s\n", cfg.bucket)
	}
	if cfg.topic != "" {
		arn, err := stack.CreateTopic(ctx, cfg.topic)
		if err != nil {
			return err
		}
		if queueURL != "" {
			if err := stack.Subscribe(ctx, arn, queueURL, cfg.raw); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "TOPIC_ARN=%s\n", arn)
		topicARN = arn
	}
	if cfg.seed != "" {
		n, err := seed(ctx, stack, cfg.seed, cfg.bucket, topicARN, queueURL)
		if err != nil {
			return fmt.Errorf("seed %s: %w", cfg.seed, err)
		}
		fmt.Fprintf(stdout, "SEEDED_OBJECTS=%d\n", n)
	}
	return nil
}
