package localaws

import (
	"net/http"
	"strings"
)

// splitter sends each request on the single listener to goaws (SQS and SNS)
// or to gofakes3 (S3).
type splitter struct {
	goaws http.Handler
	s3    http.Handler
}

// ServeHTTP implements http.Handler.
func (rt splitter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isGoawsRequest(r) {
		rt.goaws.ServeHTTP(w, r)
		return
	}
	rt.s3.ServeHTTP(w, r)
}

// isGoawsRequest reports whether r is meant for SQS or SNS. A signed
// request names its service in the SigV4 credential scope
// (".../us-east-1/sqs/aws4_request"), in the Authorization header or, when
// presigned, in X-Amz-Credential. An unsigned request is SQS when it carries
// an X-Amz-Target of AmazonSQS, and SQS or SNS when it is a query-protocol
// call: a form post or a GET with an Action parameter, which S3 never uses.
func isGoawsRequest(r *http.Request) bool {
	if service, ok := signedService(r); ok {
		return service == "sqs" || service == "sns"
	}
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/SimpleNotificationService/") {
		return true // SigningCertURL of SNS messages.
	}
	if r.Method == http.MethodPost &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return true
	}
	return r.Method == http.MethodGet && r.URL.Query().Has("Action")
}

// signedService returns the service of the SigV4 credential scope of r.
func signedService(r *http.Request) (string, bool) {
	credential := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return "", false
		}
		credential, _, _ = strings.Cut(after, ",")
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(strings.TrimSpace(credential), "/")
	if len(parts) != 5 {
		return "", false
	}
	return parts[3], true
}
