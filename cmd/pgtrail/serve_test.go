package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

const (
	serveKeyID  = "AKIAPGTRAILSERVE0001"
	serveSecret = "pgtrail-serve-test/0123456789abcdefghij"
)

// TestServeCommand starts pgtrail serve, the command, on a loopback port
// chosen by the system, and pages through a LookupEvents answer with the
// AWS SDK's own CloudTrail client: the same events, in the same order, as
// pgtrail lookup prints. A request signed with an unknown secret is
// refused; SIGTERM's context ends the command with status 0.
func TestServeCommand(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(creds, []byte("# the test's key\n"+serveKeyID+":"+serveSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "info",
		"PGTRAIL_API_ADDR": "127.0.0.1:0", "PGTRAIL_API_CREDENTIALS": creds, "PGTRAIL_API_RATE": "0", "PGTRAIL_API_FULL_HISTORY": "true"}
	if code, _, stderr := runCommand(t, t.Context(), env, "ingest", filepath.Join(corpus.Dir(t), "s3", "plaso")); code != 0 {
		t.Fatalf("ingest: %d %s", code, stderr)
	}
	code, out, stderr := runCommand(t, t.Context(), env, "lookup", "-attr", "Username=fakeusername", "-from", "2022-02-07", "-to", "2022-02-09", "-json")
	if code != 0 {
		t.Fatalf("lookup: %d %s", code, stderr)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct{ EventID string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.EventID == "" {
			t.Fatalf("lookup -json line %q: %v", l, err)
		}
		want = append(want, rec.EventID)
	}
	if len(want) < 3 {
		t.Fatalf("lookup found %d events; the test wants several pages", len(want))
	}

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var errOut lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- Main(ctx, []string{"serve"}, envconfig.MapLookuper(env), &lockedBuffer{}, &errOut)
	}()
	addr := servingAddr(t, &errOut, exited)

	client := func(secret string) *cloudtrail.Client {
		return cloudtrail.New(cloudtrail.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(serveKeyID, secret, "")})
	}
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyUsername, AttributeValue: aws.String("fakeusername")}},
		StartTime:        aws.Time(time.Date(2022, 2, 7, 0, 0, 0, 0, time.UTC)),
		EndTime:          aws.Time(time.Date(2022, 2, 9, 0, 0, 0, 0, time.UTC)),
		MaxResults:       aws.Int32(2),
	}
	var got []string
	pages := 0
	for p := cloudtrail.NewLookupEventsPaginator(client(serveSecret), in); p.HasMorePages(); pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		for _, e := range page.Events {
			got = append(got, aws.ToString(e.EventId))
		}
	}
	if !slices.Equal(got, want) || pages < 2 {
		t.Errorf("serve answered %q in %d pages; lookup prints %q", got, pages, want)
	}

	_, err := client("not-the-secret").LookupEvents(ctx, in)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("badly signed request: %v, want InvalidSignatureException", err)
	}

	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d after its context ended:\n%s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of its context ending")
	}
}

// servingAddr waits for serve's "serving LookupEvents" log line and
// returns the address it names.
func servingAddr(t *testing.T, log *lockedBuffer, exited <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(log.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving LookupEvents" && line.Addr != "" {
				return line.Addr
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d before serving:\n%s", code, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not log its address within 20s:\n%s", log.String())
	return ""
}

// TestServeConfigErrors: serve's settings are refused with status 2 and
// the variable named, before any connection is made.
func TestServeConfigErrors(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db?connect_timeout=1"}
	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{nil, "pgtrail: config: PGTRAIL_API_CREDENTIALS: required"},
		{map[string]string{"PGTRAIL_API_CREDENTIALS": "/k", "PGTRAIL_API_RATE": "fast"},
			"pgtrail: config: PGTRAIL_API_RATE: want a number of requests per second, 0 (no limit) or more, got fast"},
		{map[string]string{"PGTRAIL_API_CREDENTIALS": "/k", "PGTRAIL_API_ADDR": "8455"},
			`pgtrail: config: PGTRAIL_API_ADDR: want host:port, got "8455"`},
		{map[string]string{"PGTRAIL_API_CREDENTIALS": "/k", "PGTRAIL_API_TOKEN_KEY": "short"},
			"pgtrail: config: PGTRAIL_API_TOKEN_KEY: must be at least 32 bytes, got 5"},
		{map[string]string{"PGTRAIL_API_CREDENTIALS": "/k", "PGTRAIL_API_FULL_HISTORY": "always"},
			"pgtrail: config: PGTRAIL_API_FULL_HISTORY: want true or false, got always"},
	} {
		env := maps.Clone(base)
		for k, v := range tc.set {
			env[k] = v
		}
		code, _, stderr := runCommand(t, t.Context(), env, "serve")
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve with %v: exit %d, stderr %q; want 2 and %q", tc.set, code, stderr, tc.want)
		}
	}
}
