package backfill

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/time/rate"
)

// S3Options makes an S3 client fit for a backfill: at most rps requests a
// second (lists and gets together; 0 for no cap), and the SDK's standard
// retryer, which backs off on 503 SlowDown, allowed more attempts and
// longer waits. The retryer's client-side retry quota is turned off: a
// backfill that meets SlowDown on a busy prefix should wait and go on, not
// fail every request once the quota is spent.
func S3Options(rps float64) func(*s3.Options) {
	return func(o *s3.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 10
			so.MaxBackoff = 30 * time.Second
			so.RateLimiter = ratelimit.None
		})
		if rps > 0 {
			o.HTTPClient = &limitedClient{next: o.HTTPClient, lim: rate.NewLimiter(rate.Limit(rps), max(1, int(rps)))}
		}
	}
}

// limitedClient waits for the limiter before each HTTP request, retries
// included. The SDK has no request-rate option of its own.
type limitedClient struct {
	next aws.HTTPClient
	lim  *rate.Limiter
}

func (c *limitedClient) Do(r *http.Request) (*http.Response, error) {
	if err := c.lim.Wait(r.Context()); err != nil {
		return nil, err
	}
	next := c.next
	if next == nil {
		next = http.DefaultClient
	}
	return next.Do(r)
}
