package lookup

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The signature this server accepts: AWS Signature Version 4 in the
// Authorization header, for the CloudTrail service, signed payload.
const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	sigService    = "cloudtrail"
	sigTerminator = "aws4_request"
	amzDateFormat = "20060102T150405Z"
	// maxSkew is how far X-Amz-Date may lie from the server's clock either
	// way, as AWS allows.
	maxSkew = 5 * time.Minute
)

// unsignable are the headers the SDK's signer never signs (its
// IgnoredHeaders): a client that signed one of them cannot be checked by
// re-signing, and the AWS SDKs and botocore never do.
var unsignable = []string{"authorization", "user-agent", "x-amzn-trace-id", "expect", "transfer-encoding"}

// authorization is the parsed Authorization header.
type authorization struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// verify checks the request's SigV4 signature over body against creds and
// returns the access key ID that signed it, or the error to send and the key
// ID the request claimed (for the log).
//
// The expected signature is computed by the AWS SDK's own signer
// (aws/signer/v4): the request is rebuilt with exactly the headers the
// client signed, and signed again with the secret of the client's key at
// the client's time and scope. The canonical request, the string to sign and
// the key derivation are therefore the SDK's, not a copy of them; what is
// hand-written here is only the part that no library offers to a server:
// reading the Authorization header and checking the scope and the clock.
func verify(r *http.Request, body []byte, creds *Credentials, now time.Time) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			return "", errIncompleteSignature("pgtrail accepts the signature in the Authorization header only, not in the query string.")
		}
		return "", errMissingAuth
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return "", errIncompleteSignature(err.Error())
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		// pgtrail's keys are long-term ones: a session token is one that
		// pgtrail did not issue.
		return a.accessKey, errUnrecognizedClient
	}
	secret, ok := creds.secret(a.accessKey)
	if !ok {
		return a.accessKey, errUnrecognizedClient
	}
	rawDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse(amzDateFormat, rawDate)
	switch {
	case rawDate == "" || !slices.Contains(a.signedHeaders, "x-amz-date"):
		return a.accessKey, errIncompleteSignature("Authorization header requires existence of a signed X-Amz-Date header.")
	case err != nil:
		return a.accessKey, errIncompleteSignature(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'.", rawDate))
	case !slices.Contains(a.signedHeaders, "host"):
		return a.accessKey, errIncompleteSignature("'Host' must be a signed header.")
	case a.date != at.Format("20060102"):
		return a.accessKey, errInvalidSignature(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.date, at.Format("20060102"), rawDate))
	case a.service != sigService:
		return a.accessKey, errInvalidSignature(fmt.Sprintf("Credential should be scoped to correct service: '%s'.", sigService))
	case at.Before(now.Add(-maxSkew)):
		return a.accessKey, errInvalidSignature(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			rawDate, now.Add(-maxSkew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat)))
	case at.After(now.Add(maxSkew)):
		return a.accessKey, errInvalidSignature(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			rawDate, now.Add(maxSkew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat)))
	}
	for _, name := range a.signedHeaders {
		if slices.Contains(unsignable, name) {
			return a.accessKey, errInvalidSignature(fmt.Sprintf("pgtrail cannot verify a signature that covers the %s header.", name))
		}
	}

	want, err := expectedSignature(r, body, a, secret, at)
	if err != nil {
		return a.accessKey, errInvalidSignature(err.Error())
	}
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return a.accessKey, errInvalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return a.accessKey, nil
}

// expectedSignature signs a copy of r that carries only the headers a
// names, and returns the signature the SDK's signer computed.
func expectedSignature(r *http.Request, body []byte, a authorization, secret string, at time.Time) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			// The server keeps it out of Header; the signer takes it
			// from ContentLength.
			c.ContentLength = r.ContentLength
		default:
			values := r.Header.Values(name)
			if len(values) == 0 {
				values = []string{""}
			}
			c.Header[http.CanonicalHeaderKey(name)] = values
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.accessKey, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), a.service, a.region, at); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	got, err := parseAuthorization(c.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if !slices.Equal(got.signedHeaders, a.signedHeaders) {
		// The signer chose other headers than the client (an empty
		// Content-Length, say): the signatures cannot be compared.
		return "", fmt.Errorf("pgtrail cannot verify a signature over the headers %s", strings.Join(a.signedHeaders, ";"))
	}
	return got.signature, nil
}

// parseAuthorization reads
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != sigAlgorithm {
		return a, fmt.Errorf("Authorization header must start with %s.", sigAlgorithm)
	}
	var cred, signed string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			a.signature = v
		}
	}
	switch {
	case cred == "":
		return a, fmt.Errorf("Authorization header requires 'Credential' parameter.")
	case signed == "":
		return a, fmt.Errorf("Authorization header requires 'SignedHeaders' parameter.")
	case a.signature == "":
		return a, fmt.Errorf("Authorization header requires 'Signature' parameter.")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] == "" || scope[4] != sigTerminator {
		return a, fmt.Errorf("Credential should be of the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/%s.", sigTerminator)
	}
	a.accessKey, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	return a, nil
}
