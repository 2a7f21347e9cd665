package cloudtrail

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzLimits keep each run fast; the limits themselves are tested elsewhere.
var fuzzLimits = Limits{MaxObjectBytes: 4 << 20, MaxRecordBytes: 256 << 10}

// FuzzDecoder checks that no input panics the Decoder, that every record it
// returns is valid, repaired JSON, and that it agrees with oracles built on
// the standard library: compress/gzip and a json.Decoder.
func FuzzDecoder(f *testing.F) {
	for _, p := range fuzzSeedFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			f.Add(gunzipBytes(f, b))
		}
	}
	for _, s := range []string{
		``, `{}`, `{"Records":[]}`, `{"Records":[{}]}{"Records":[{"a":1}]}`, `{"x":[1,{"y":"\u0000"}],"Records":[{"a":"\ud800\\u0000"}],"z":1e5}`,
		"{\"Records\":[{\"a\":\"\xff\"}]}", `{"Records":[{"a":[[[[[[[[]]]]]]]]}]}`, `[]`, `{"Records":{}}`, `{"Records":[1]}`,
	} {
		f.Add([]byte(s))
		f.Add(gzipBytes(f, []byte(s)))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := fuzzDecode(t, in)
		checkNextEntry(t, in, recs, err)

		isGzip := len(in) >= 2 && in[0] == 0x1f && in[1] == 0x8b
		if isGzip {
			// The plain text decodes the same way as its gzip.
			zr, zerr := stdgzip.NewReader(bytes.NewReader(in))
			if zerr != nil {
				return
			}
			plain, zerr := io.ReadAll(io.LimitReader(zr, fuzzLimits.MaxObjectBytes+1))
			if zerr != nil || int64(len(plain)) > fuzzLimits.MaxObjectBytes {
				return
			}
			precs, perr := fuzzDecode(t, plain)
			if !sameRecords(recs, precs) || kindOf(err) != kindOf(perr) {
				t.Fatalf("gzip and plain differ: %d records, %v; %d records, %v", len(recs), err, len(precs), perr)
			}
			return
		}

		docs, oerr := oracleDecode(in)
		switch {
		case err == nil:
			if oerr != nil {
				t.Fatalf("decoded %d records, but the oracle fails: %v", len(recs), oerr)
			}
			var want []string
			for _, doc := range docs {
				for _, r := range doc {
					want = append(want, string(appendSanitized(nil, r)))
				}
			}
			if !sameRecords(recs, want) {
				t.Fatalf("records differ from the oracle:\n%q\n%q", recs, want)
			}
		case errors.Is(err, ErrSyntax) && oerr == nil && len(docs) > 0:
			t.Fatalf("invalid JSON (%v), but the oracle decodes it", err)
		}
	})
}

// fuzzDecode decodes in, checking every record and the error's type.
func fuzzDecode(t *testing.T, in []byte) ([]string, error) {
	d, err := NewDecoder(bytes.NewReader(in), fuzzLimits)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("NewDecoder: %v is not a *DecodeError", err)
		}
		return nil, err
	}
	var recs []string
	for {
		rec, err := d.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Next: %v is not a *DecodeError", err)
			}
			if _, again := d.Next(); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
			return recs, err
		}
		if len(rec) > fuzzLimits.MaxRecordBytes+fuzzLimits.MaxRecordBytes/2 {
			t.Fatalf("record of %d bytes", len(rec))
		}
		checkRecord(t, rec)
		recs = append(recs, string(rec))
	}
}

// checkNextEntry decodes in again with NextEntry and checks that it gives what
// Next and Normalize gave: the same rows and the same final error.
func checkNextEntry(t *testing.T, in []byte, recs []string, nextErr error) {
	t.Helper()
	d, err := NewDecoder(bytes.NewReader(in), fuzzLimits)
	if err != nil {
		return // NewDecoder is shared by both ways
	}
	for i := 0; ; i++ {
		var row Entry
		err := d.NextEntry(&row, "b", "k")
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			if i != len(recs) || fmt.Sprint(err) != fmt.Sprint(nextErr) {
				t.Fatalf("NextEntry: %d rows, %v; Next: %d records, %v", i, err, len(recs), nextErr)
			}
			return
		}
		if i >= len(recs) {
			t.Fatalf("NextEntry: more rows than Next's %d records", len(recs))
		}
		want, werr := Normalize([]byte(recs[i]), "b", "k")
		switch {
		case werr != nil:
			if row.Reject == nil || row.Reject.Reason != werr.Error() || row.Reject.Raw != recs[i] || row.Reject.Index != i {
				t.Fatalf("record %d: NextEntry gave %+v, want the reject %q", i, row, werr)
			}
		case row.Reject != nil:
			t.Fatalf("record %d: NextEntry rejects it (%s), Normalize does not", i, row.Reject.Reason)
		case !reflect.DeepEqual(row.Event, want):
			t.Fatalf("record %d: NextEntry gave\n%+v\nNormalize gave\n%+v", i, row.Event, want)
		}
	}
}

// oracleDecode reads in as a stream of {"Records":[...]} objects with
// encoding/json.
func oracleDecode(in []byte) ([][]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	var docs [][]json.RawMessage
	for {
		var doc map[string]json.RawMessage
		err := dec.Decode(&doc)
		if err == io.EOF {
			if len(docs) == 0 {
				return nil, errors.New("no JSON value")
			}
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if doc == nil {
			return docs, errors.New("top level is not an object")
		}
		var recs []json.RawMessage
		if r, ok := doc["Records"]; !ok || json.Unmarshal(r, &recs) != nil || recs == nil {
			return docs, errors.New("no Records array")
		}
		for _, r := range recs {
			if r[0] != '{' {
				return docs, errors.New("record is not an object")
			}
		}
		docs = append(docs, recs)
	}
}

func sameRecords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func kindOf(err error) error {
	for _, k := range []error{ErrGzip, ErrSyntax, ErrNotCloudTrail, ErrObjectTooLarge, ErrRecordTooLarge, ErrTooDeep} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// FuzzNormalize checks that no record panics Normalize, that what it returns
// is safe to store, and that it agrees with refNormalize.
func FuzzNormalize(f *testing.F) {
	for _, p := range fuzzSeedFiles(f) {
		in, err := os.Open(p)
		if err != nil {
			f.Fatal(err)
		}
		recs, err := decodeAll(in, Limits{})
		in.Close()
		if err != nil {
			continue
		}
		// One record per object, or all of them from the sources with
		// oddities, keeps the baseline run short.
		for i, r := range recs {
			if i == 0 || strings.Contains(p, "panther") || strings.Contains(p, "malformed") {
				f.Add([]byte(r))
			}
		}
	}
	for _, s := range []string{
		`{"eventTime":"2024-01-01 00:00:00.123","eventID":1,"readOnly":"TRUE","userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":"false"}}}}`,
		`{"eventTime":"2024-01-01T00:00:00+01:00","eventType":"AwsCloudTrailInsight","insightDetails":{"eventName":"\u0000"}}`,
		"{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":\"\xff\\ud800\"}",
		`{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"arn":"a"},"userIdentity":null}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Normalize(raw, "b", "k")
		var se *syntaxError
		if errors.As(err, &se) && se.tooDeep {
			return // encoding/json nests deeper
		}
		if !json.Valid(raw) {
			if err == nil {
				t.Fatalf("invalid JSON normalized: %+v", ev)
			}
			return
		}
		want, wantErr := refNormalize(appendSanitized(nil, raw), "b", "k")
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Normalize: %v; oracle: %v", err, wantErr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "eventTime ") && !errors.Is(err, errNotObject) {
				t.Fatalf("unexpected error for valid JSON: %v", err)
			}
			return
		}
		if !eventsEqual(ev, want) {
			t.Fatalf("oracle differs:\n%+v\n%+v", ev, want)
		}
		checkRecord(t, ev.Record)
		if ev.EventID == "" || ev.EventTime.IsZero() {
			t.Fatalf("no id or time: %+v", ev)
		}
		for _, s := range []string{ev.EventID, ev.EventVersion, ev.EventSource, ev.EventName, ev.EventType, ev.EventCategory,
			ev.AWSRegion, ev.SourceIPAddress, ev.UserAgent, ev.UserIdentityType, ev.UserIdentityARN, ev.UserIdentityAccountID,
			ev.UserIdentityPrincipalID, ev.UserIdentityAccessKeyID, ev.UserIdentityUserName, ev.SessionIssuerARN, ev.InvokedBy,
			ev.ErrorCode, ev.ErrorMessage, ev.RequestID, ev.RecipientAccountID, ev.SharedEventID, ev.VPCEndpointID} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("unsafe text %q", s)
			}
		}
		for _, c := range [][]byte{ev.RequestParameters, ev.ResponseElements, ev.AdditionalEventData, ev.Resources} {
			if c != nil && !json.Valid(c) {
				t.Fatalf("column %q is not JSON", c)
			}
		}
	})
}

// fuzzSeedFiles returns the corpus files small enough to seed a fuzzer:
// the S3 objects and the malformed fixtures.
func fuzzSeedFiles(tb testing.TB) []string {
	dir := corpusDir(tb)
	var paths []string
	for _, p := range corpusObjects(tb) {
		if fi, err := os.Stat(p); err == nil && fi.Size() < 16<<10 {
			paths = append(paths, p)
		}
	}
	malformed, _ := filepath.Glob(filepath.Join(dir, "raw", "malformed", "*"))
	return append(paths, malformed...)
}
