package web_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/web"
	"github.com/pgtrail/pgtrail/worker"
)

// The key the tests log in with.
const (
	testKeyID  = "AKIAPGTRAILWEB000001"
	testSecret = "pgtrail-web-secret/0123456789abcdefghij"
)

// The hostile strings of the XSS tests: each would run script if the page
// put it in as HTML or as a link's URL.
var hostile = []string{
	`<script>alert("script")</script>`,
	`"><img src=x onerror=alert("img")>`,
	`javascript:alert("js")`,
}

// hostileUser is the userName of the hostile records.
var hostileUser = `eve<script>alert("user")</script>`

// bundle is a database loaded with the corpus (alerts raised by the
// built-in rules) and the hostile records, a Reader on it, and the page's
// server over the API's.
type bundle struct {
	owner  *sink.Postgres
	reader *sink.Reader
	ts     *httptest.Server
}

func setup(t *testing.T) *bundle {
	t.Helper()
	dir := corpus.Dir(t)
	log := zaptest.NewLogger(t)
	pg, url := testdb.Open(t)
	pg.SetMatcher(alert.NewRules(sigma.Builtin()))
	files, err := worker.LogFiles([]string{filepath.Join(dir, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	testdb.Ingest(t, pg, append(files, hostileFile(t)))
	r := testdb.Reader(t, url)
	creds := lookup.StaticCredentials(map[string]string{testKeyID: testSecret})
	page, err := web.New(web.Options{Store: r, Keys: creds, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	api, err := lookup.New(lookup.Options{Store: r, Credentials: creds, Log: log, Page: page})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return &bundle{owner: pg, reader: r, ts: ts}
}

// hostileFile writes a CloudTrail log file whose records carry the hostile
// strings in the fields the page shows: one under a hostile event name,
// one a StopLogging that the built-in rules raise an alert on.
func hostileFile(t *testing.T) string {
	t.Helper()
	at := time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)
	var recs []map[string]any
	for i, h := range hostile {
		recs = append(recs, hostileRecord(at.Add(time.Duration(i)*time.Minute), "hostile-"+string(rune('a'+i)), h, h))
	}
	recs = append(recs, hostileRecord(at.Add(10*time.Minute), "hostile-stoplogging", "StopLogging", strings.Join(hostile, " ")))
	b, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hostile.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hostileRecord(at time.Time, id, name, text string) map[string]any {
	source := "cloudtrail.amazonaws.com"
	return map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{
			"type": "IAMUser", "principalId": "AIDAHOSTILE", "accountId": "123456789012",
			"arn": "arn:aws:iam::123456789012:user/" + text, "userName": hostileUser,
			"accessKeyId": "AKIAHOSTILE",
		},
		"eventTime":          at.Format(time.RFC3339),
		"eventSource":        source,
		"eventName":          name,
		"awsRegion":          "us-east-1",
		"sourceIPAddress":    text,
		"userAgent":          text,
		"errorCode":          text,
		"errorMessage":       text,
		"requestParameters":  map[string]any{"name": text, text: text},
		"responseElements":   nil,
		"requestID":          id,
		"eventID":            id,
		"readOnly":           false,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": "123456789012",
		"eventCategory":      "Management",
	}
}
