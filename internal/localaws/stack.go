package localaws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const (
	// Region is the region that a Stack's clients sign requests for.
	Region = "us-east-1"
	// AccessKeyID is the static access key of a Stack's clients; the
	// emulators accept any credentials.
	AccessKeyID = "test"
	// SecretAccessKey is the static secret key of a Stack's clients.
	SecretAccessKey = "test"
)

// DefaultAddr is the address Start listens on when Options.Addr is empty:
// the loopback interface on a port chosen by the kernel.
const DefaultAddr = "127.0.0.1:0"

// Options configures Start.
type Options struct {
	// Addr is the loopback host:port to listen on. Empty means DefaultAddr.
	// Start refuses any address that is not loopback, unless AllowRemote.
	Addr string
	// AllowRemote lets Addr be any address, for a container whose port is
	// published on the host's loopback only. The emulators check no
	// credentials: never expose them further.
	AllowRemote bool
	// Verbose sends goaws' logs from info level up to stderr; by default
	// they are discarded. goaws logs through the process-wide logrus
	// logger, so the first Stack of the process decides.
	Verbose bool
}

// Stack is a running set of AWS emulators behind one loopback HTTP
// listener: SQS and SNS from the process-wide goaws, and S3 from a gofakes3
// in-memory backend of its own. Requests are routed by the service in their
// signature, so one endpoint serves all three services.
type Stack struct {
	// Endpoint is the base URL of the listener, e.g. http://127.0.0.1:4566.
	Endpoint string
	// SQSURL, SNSURL and S3URL are the endpoints of each service; they all
	// equal Endpoint.
	SQSURL, SNSURL, S3URL string
	// Region is the region of the clients, Region.
	Region string
	// AccountID is the account in goaws' queue URLs and ARNs.
	AccountID string

	sqs *sqs.Client
	sns *sns.Client
	s3  *s3.Client

	srv    *http.Server
	cancel context.CancelFunc // ends requests in flight, such as long polls
	served chan error         // the result of srv.Serve
	shared bool
}

// sharedStack is the process-wide Stack returned by Shared.
var sharedStack struct {
	once  sync.Once
	stack *Stack
	err   error
}

// Shared returns the process-wide Stack, starting it on first use on
// DefaultAddr. It is never closed: its Close and Shutdown do nothing. Tests
// share it and keep out of each other's way by using distinct queue, topic
// and bucket names (see UniqueName).
func Shared(ctx context.Context) (*Stack, error) {
	sharedStack.once.Do(func() {
		// The result is kept for the process, so a cancellation of the
		// first caller's ctx must not become everyone's error.
		s, err := Start(context.WithoutCancel(ctx), Options{})
		if err != nil {
			sharedStack.err = err
			return
		}
		s.shared = true
		sharedStack.stack = s
	})
	return sharedStack.stack, sharedStack.err
}

// Start starts a Stack on opts.Addr. Its S3 is empty and its own; its SQS
// and SNS are goaws', which one process has only one of, so queues and
// topics are visible from every Stack of the process. goaws writes the
// address of the first Stack of the process into the queue URLs it
// returns; the SDK only uses a queue URL's last path segment, so any
// Stack's endpoint accepts any queue URL.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	if !opts.AllowRemote {
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("localaws: listen: %w", err)
	}

	_, port := hostPort(ln.Addr())
	faker := gofakes3.New(s3mem.New(),
		// Virtual-hosted requests to bucket.localhost:port work too; gofakes3
		// compares the whole Host header, port included.
		gofakes3.WithHostBucketBase("localhost", "localhost:"+port),
	)
	base, cancel := context.WithCancel(context.Background())
	endpoint := "http://" + ln.Addr().String()
	s := &Stack{
		Endpoint:  endpoint,
		SQSURL:    endpoint,
		SNSURL:    endpoint,
		S3URL:     endpoint,
		Region:    Region,
		AccountID: accountID,
		srv: &http.Server{
			Handler:           splitter{goaws: goawsHandler(ln.Addr(), opts.Verbose), s3: faker.Server()},
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return base },
		},
		cancel: cancel,
		served: make(chan error, 1),
	}
	go func() { s.served <- s.srv.Serve(ln) }()

	cfg := s.AWSConfig()
	s.sqs = sqs.NewFromConfig(cfg)
	s.sns = sns.NewFromConfig(cfg)
	s.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	return s, nil
}

// AWSConfig returns a config for SDK clients of this Stack: static
// credentials, Region, and BaseEndpoint set to Endpoint, which serves every
// service. It does not read the environment or shared config files. An S3
// client made from it should set UsePathStyle, as S3 does (with an IP
// endpoint the SDK picks path style anyway).
//
// The SDK's default checksum settings work with gofakes3, so they are left
// alone. Over plain HTTP the SDK cannot sign or checksum an unseekable
// PutObject body under any setting: upload an *os.File or *bytes.Reader.
func (s *Stack) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// SQS returns an SQS client of this Stack.
func (s *Stack) SQS() *sqs.Client { return s.sqs }

// SNS returns an SNS client of this Stack.
func (s *Stack) SNS() *sns.Client { return s.sns }

// S3 returns an S3 client of this Stack, using path-style addressing.
func (s *Stack) S3() *s3.Client { return s.s3 }

// Close stops the listener at once, cutting requests in flight. goaws and
// its queues live on for the rest of the process.
func (s *Stack) Close() error {
	if s.shared {
		return nil
	}
	s.cancel()
	err := s.srv.Close()
	return errors.Join(err, s.serveErr())
}

// Shutdown stops the listener, ends long polls and waits for requests in
// flight until ctx is done, then cuts the rest.
func (s *Stack) Shutdown(ctx context.Context) error {
	if s.shared {
		return nil
	}
	s.cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return errors.Join(fmt.Errorf("localaws: shutdown: %w", err), s.srv.Close(), s.serveErr())
	}
	return s.serveErr()
}

// serveErr waits for Serve to return and reports why, unless it returned
// because the server was closed.
func (s *Stack) serveErr() error {
	err := <-s.served
	s.served <- err // Close and Shutdown may both be called.
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("localaws: serve: %w", err)
}

// checkLoopback refuses an address whose host is not a loopback IP or
// "localhost": the emulators have no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("localaws: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("localaws: address %q is not loopback", addr)
	}
	return nil
}
