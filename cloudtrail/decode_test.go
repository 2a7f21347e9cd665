package cloudtrail

import (
	"github.com/pgtrail/pgtrail/internal/corpus"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// corpusDir returns the shared CloudTrail corpus, or skips the test.
func corpusDir(tb testing.TB) string { return corpus.Dir(tb) }

// corpusObjects returns the paths of every object under s3/, sorted.
func corpusObjects(tb testing.TB) []string {
	tb.Helper()
	root := filepath.Join(corpusDir(tb), "s3")
	var paths []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no objects under %s", root)
	}
	return paths
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gunzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// decodeAll returns copies of every record of r, and the error that ended
// the object (nil at io.EOF).
func decodeAll(r io.Reader, lim Limits) ([]string, error) {
	d, err := NewDecoder(r, lim)
	if err != nil {
		return nil, err
	}
	return drain(d)
}

func drain(d *Decoder) ([]string, error) {
	var recs []string
	for {
		rec, err := d.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, string(rec))
	}
}

func TestDecodeShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // records, when the object decodes
		kind error    // otherwise the error's sentinel
	}{
		{name: "empty records", in: `{"Records":[]}`, want: nil},
		{name: "two records", in: `{"Records":[{"a":1},{"b":[2,{"c":"}"}]}]}`, want: []string{`{"a":1}`, `{"b":[2,{"c":"}"}]}`}},
		{name: "whitespace", in: " \n{ \"Records\" : [ { } ,\t{\"a\" : \"b\" } ] } \r\n", want: []string{`{ }`, `{"a" : "b" }`}},
		{name: "keys before and after", in: `{"v":{"x":[1,"]"]},"Records":[{"a":1}],"z":null,"n":-1.5e3}`, want: []string{`{"a":1}`}},
		{name: "escaped Records key", in: `{"Rec\u006frds":[{}]}`, want: []string{`{}`}},
		{name: "concatenated documents", in: `{"Records":[{"a":1}]}` + "\n" + `{"Records":[{"b":2}]}`, want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "empty input", in: ``, kind: ErrSyntax},
		{name: "only whitespace", in: "  \n", kind: ErrSyntax},
		{name: "not json", in: `hello`, kind: ErrSyntax},
		{name: "gzip magic only", in: "\x1f", kind: ErrSyntax},
		{name: "invalid json", in: `{"Records":[{"a":}]}`, kind: ErrSyntax},
		{name: "truncated json", in: `{"Records":[{"a":1}`, kind: ErrSyntax},
		{name: "unclosed records", in: `{"Records":[{"a":1},`, kind: ErrSyntax},
		{name: "trailing comma", in: `{"Records":[{"a":1},]}`, kind: ErrSyntax},
		{name: "trailing garbage", in: `{"Records":[]} x`, kind: ErrSyntax},
		{name: "trailing value", in: `{"Records":[]} 5`, kind: ErrNotCloudTrail},
		{name: "control character", in: "{\"Records\":[{\"a\":\"\x01\"}]}", kind: ErrSyntax},
		{name: "bad escape", in: `{"Records":[{"a":"\x"}]}`, kind: ErrSyntax},
		{name: "bad number", in: `{"Records":[{"a":01}]}`, kind: ErrSyntax},
		{name: "top-level array", in: `[{"eventID":"x"}]`, kind: ErrNotCloudTrail},
		{name: "top-level string", in: `"Records"`, kind: ErrNotCloudTrail},
		{name: "empty object", in: `{}`, kind: ErrNotCloudTrail},
		{name: "no Records", in: `{"records":[{}]}`, kind: ErrNotCloudTrail},
		{name: "Records object", in: `{"Records":{"a":{}}}`, kind: ErrNotCloudTrail},
		{name: "Records null", in: `{"Records":null}`, kind: ErrNotCloudTrail},
		{name: "record not object", in: `{"Records":[{},1]}`, kind: ErrNotCloudTrail},
		{name: "record array", in: `{"Records":[[]]}`, kind: ErrNotCloudTrail},
		{name: "duplicate Records", in: `{"Records":[],"Records":[{}]}`, kind: ErrNotCloudTrail},
		{name: "second document empty", in: `{"Records":[]}{}`, kind: ErrNotCloudTrail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, gz := range []bool{false, true} {
				in := []byte(tt.in)
				if gz {
					in = gzipBytes(t, in)
				}
				got, err := decodeAll(bytes.NewReader(in), Limits{})
				if tt.kind != nil {
					var de *DecodeError
					if !errors.As(err, &de) || !errors.Is(err, tt.kind) {
						t.Fatalf("gzip=%v: err = %v, want a *DecodeError of %v", gz, err, tt.kind)
					}
					continue
				}
				if err != nil {
					t.Fatalf("gzip=%v: %v", gz, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("gzip=%v: records %q, want %q", gz, got, tt.want)
				}
			}
		})
	}
}

func TestDecodeErrorPosition(t *testing.T) {
	t.Parallel()
	in := `{"Records":[{"a":1},{"a":2},{"a":3,"b":tru}]}`
	_, err := decodeAll(strings.NewReader(in), Limits{})
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	if want := int64(strings.Index(in, "tru}")); de.Record != 2 || de.Offset != want {
		t.Fatalf("record %d offset %d, want record 2 offset %d (%v)", de.Record, de.Offset, want, err)
	}
	if !strings.Contains(err.Error(), "record 2") || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("message %q does not say where and why", err)
	}
}

func TestDecodeGzip(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"Records":[{"eventID":"1"},{"eventID":"2"},{"eventID":"3"}]}`)
	gz := gzipBytes(t, doc)

	t.Run("multi-member split document", func(t *testing.T) {
		var in []byte
		for _, part := range [][]byte{doc[:5], doc[5:30], doc[30:]} {
			in = append(in, gzipBytes(t, part)...)
		}
		recs, err := decodeAll(bytes.NewReader(in), Limits{})
		if err != nil || len(recs) != 3 {
			t.Fatalf("records %q, err %v", recs, err)
		}
	})
	t.Run("multi-member concatenated logs", func(t *testing.T) {
		in := append(append([]byte{}, gz...), gz...)
		recs, err := decodeAll(bytes.NewReader(in), Limits{})
		if err != nil || len(recs) != 6 {
			t.Fatalf("records %q, err %v", recs, err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{3, 10, len(gz) / 2, len(gz) - 4, len(gz) - 1} {
			_, err := decodeAll(bytes.NewReader(gz[:n]), Limits{})
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrGzip) {
				t.Fatalf("%d of %d bytes: err = %v, want ErrGzip", n, len(gz), err)
			}
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		for i := 10; i < len(gz); i++ {
			in := bytes.Clone(gz)
			in[i] ^= 0x55
			_, err := decodeAll(bytes.NewReader(in), Limits{})
			var de *DecodeError
			if err != nil && !errors.As(err, &de) {
				t.Fatalf("byte %d flipped: err = %v, want a *DecodeError", i, err)
			}
			if err == nil {
				t.Fatalf("byte %d flipped: no error", i)
			}
		}
	})
	t.Run("trailing garbage", func(t *testing.T) {
		in := append(bytes.Clone(gz), "junk"...)
		_, err := decodeAll(bytes.NewReader(in), Limits{})
		if !errors.Is(err, ErrGzip) {
			t.Fatalf("err = %v, want ErrGzip", err)
		}
	})
}

// A bomb: 64 MiB of whitespace inside the Records array, compressed to a
// few hundred KB, against an 8 MiB object cap.
func TestDecodeGzipBomb(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte(`{"Records":[{"a":1},`))
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for range 64 {
		zw.Write(spaces)
	}
	zw.Write([]byte(`{"a":2}]}`))
	zw.Close()
	t.Logf("bomb: %d bytes compressed", buf.Len())

	recs, err := decodeAll(bytes.NewReader(buf.Bytes()), Limits{MaxObjectBytes: 8 << 20})
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("err = %v, want ErrObjectTooLarge", err)
	}
	if len(recs) != 1 || de.Offset > 9<<20 {
		t.Fatalf("records %q, stopped at byte %d", recs, de.Offset)
	}
	// The same object passes under the default cap.
	if recs, err := decodeAll(bytes.NewReader(buf.Bytes()), Limits{}); err != nil || len(recs) != 2 {
		t.Fatalf("default limits: records %q, err %v", recs, err)
	}
}

func TestDecodeRecordLimit(t *testing.T) {
	t.Parallel()
	big := `{"a":"` + strings.Repeat("x", 10<<20) + `"}`
	in := `{"Records":[{"a":1},` + big + `,{"a":2}]}`
	for _, gz := range []bool{false, true} {
		r := io.Reader(strings.NewReader(in))
		if gz {
			r = bytes.NewReader(gzipBytes(t, []byte(in)))
		}
		recs, err := decodeAll(r, Limits{})
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrRecordTooLarge) || de.Record != 1 || len(recs) != 1 {
			t.Fatalf("gzip=%v: records %d, err = %v, want ErrRecordTooLarge at record 1", gz, len(recs), err)
		}
	}

	// A value of exactly the limit passes; one byte more does not.
	const limit = 1000
	rec := `{"a":"` + strings.Repeat("y", limit-8) + `"}`
	if len(rec) != limit {
		t.Fatal(len(rec))
	}
	recs, err := decodeAll(strings.NewReader(`{"Records":[`+rec+`]}`), Limits{MaxRecordBytes: limit})
	if err != nil || len(recs) != 1 {
		t.Fatalf("record at the limit: %v", err)
	}
	_, err = decodeAll(strings.NewReader(`{"Records":[`+rec[:6]+"y"+rec[6:]+`]}`), Limits{MaxRecordBytes: limit})
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("record over the limit: %v", err)
	}
	// Other top-level values are bounded the same way.
	_, err = decodeAll(strings.NewReader(`{"x":`+rec[:6]+"y"+rec[6:]+`,"Records":[]}`), Limits{MaxRecordBytes: limit})
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("top-level value over the limit: %v", err)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{MaxRecordDepth, MaxRecordDepth + 1, 100_000} {
		// The record's own braces are the first level.
		rec := `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
		recs, err := decodeAll(strings.NewReader(`{"Records":[`+rec+`]}`), Limits{})
		if depth <= MaxRecordDepth {
			if err != nil || len(recs) != 1 {
				t.Fatalf("depth %d: %v", depth, err)
			}
			continue
		}
		if !errors.Is(err, ErrTooDeep) {
			t.Fatalf("depth %d: err = %v, want ErrTooDeep", depth, err)
		}
	}
	// Unclosed nesting stays bounded too.
	_, err := decodeAll(strings.NewReader(`{"Records":[{"a":`+strings.Repeat(`{"a":`, 100_000)), Limits{})
	if !errors.Is(err, ErrTooDeep) {
		t.Fatalf("err = %v, want ErrTooDeep", err)
	}
}

func TestDecodeSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"nul escape", `{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{"nul escape upper", `{"a":"\U0000"}`, `{"a":"\U0000"}`}, // not an escape: invalid, see below
		{"escaped backslash", `{"a":"x\\u0000y"}`, `{"a":"x\\u0000y"}`},
		{"escaped backslash then nul", `{"a":"\\\u0000"}`, `{"a":"\\\ufffd"}`},
		{"nul in key", `{"\u0000":1}`, `{"\ufffd":1}`},
		{"invalid utf-8", "{\"a\":\"x\xffy\xc3\"}", "{\"a\":\"x\uFFFDy\uFFFD\"}"},
		{"overlong and surrogate bytes", "{\"a\":\"\xc0\xaf\xed\xa0\x80\"}", "{\"a\":\"\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\"}"},
		{"valid utf-8", `{"a":"é 日本 🎉"}`, `{"a":"é 日本 🎉"}`},
		{"lone high surrogate", `{"a":"\ud800x"}`, `{"a":"\ufffdx"}`},
		{"lone low surrogate", `{"a":"\udc00"}`, `{"a":"\ufffd"}`},
		{"high then high", `{"a":"\ud800\ud800\udc00"}`, `{"a":"\ufffd\ud800\udc00"}`},
		{"surrogate pair", `{"a":"\ud83c\udf89"}`, `{"a":"\ud83c\udf89"}`},
		{"other escapes", `{"a":"\"\/\b\f\n\r\t\u00e9\u0001"}`, `{"a":"\"\/\b\f\n\r\t\u00e9\u0001"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := decodeAll(strings.NewReader(`{"Records":[`+tt.in+`]}`), Limits{})
			if tt.name == "nul escape upper" {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("err = %v, want ErrSyntax for \\U", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if recs[0] != tt.want {
				t.Fatalf("got %q, want %q", recs[0], tt.want)
			}
			checkRecord(t, []byte(recs[0]))
			// It round-trips through encoding/json.
			var v any
			if err := json.Unmarshal([]byte(recs[0]), &v); err != nil {
				t.Fatal(err)
			}
			if hasNUL(v) {
				t.Fatalf("%s decodes to a string with NUL", recs[0])
			}
			if out, err := json.Marshal(v); err != nil || !json.Valid(out) {
				t.Fatalf("round trip: %s, %v", out, err)
			}
		})
	}
}

// checkRecord asserts what Decoder.Next promises of a record: valid JSON,
// valid UTF-8, and no escape that jsonb refuses.
func checkRecord(tb testing.TB, rec []byte) {
	tb.Helper()
	if !json.Valid(rec) {
		tb.Fatalf("record is not valid JSON: %q", rec)
	}
	if !utf8.Valid(rec) {
		tb.Fatalf("record is not valid UTF-8: %q", rec)
	}
	if rec[0] != '{' {
		tb.Fatalf("record is not an object: %q", rec)
	}
	// Walk the strings independently of the decoder's scanner.
	inString := false
	for i := 0; i < len(rec); i++ {
		switch c := rec[i]; {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			i++
			if rec[i] != 'u' {
				continue
			}
			r, _ := hexRune(rec[i+1 : i+5])
			i += 4
			switch {
			case r == 0:
				tb.Fatalf("record has a \\u0000 escape: %q", rec)
			case r >= 0xD800 && r < 0xDC00:
				lo, ok := rune(0), false
				if i+6 < len(rec) && rec[i+1] == '\\' && rec[i+2] == 'u' {
					lo, ok = hexRune(rec[i+3 : i+7])
				}
				if !ok || lo < 0xDC00 || lo >= 0xE000 {
					tb.Fatalf("record has an unpaired surrogate: %q", rec)
				}
				i += 6
			case r >= 0xDC00 && r < 0xE000:
				tb.Fatalf("record has an unpaired surrogate: %q", rec)
			}
		}
	}
}

// hasNUL reports whether a value decoded by encoding/json has a NUL in a
// string or key.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

func hexRune(b []byte) (rune, bool) {
	var r rune
	_, err := fmt.Sscanf(string(b), "%04x", &r)
	return r, err == nil
}

// Every proper prefix of a value is "short", never an error or a value, so
// that the Decoder's restart after a refill is sound.
func TestDecodeScanPrefixes(t *testing.T) {
	t.Parallel()
	values := []string{
		`{"a":[1,-2.5e+3,true,false,null,"x\"y\\u0000\ud83c\udf89é"],"b":{},"c":[],"d":0}`,
		"{\"a\":\"\xe6\x97\xa5\xff\"}",
		`{"a":"\ud800"}`,
		`{ "k" : [ { } , [ ] ] }`,
	}
	for _, v := range values {
		b := []byte(v)
		n, _, err := scanValue(b, false)
		if err != nil || n != len(b) {
			t.Fatalf("%q: n=%d err=%v", v, n, err)
		}
		for i := range len(b) {
			if _, _, err := scanValue(b[:i], false); err != errShort {
				t.Fatalf("%q prefix %d: err = %v, want errShort", v, i, err)
			}
			if _, _, err := scanValue(b[:i], true); err == nil {
				t.Fatalf("%q prefix %d: final scan succeeded", v, i)
			}
		}
	}
}

// Readers that return a byte at a time, or data with io.EOF, change nothing.
func TestDecodeReaders(t *testing.T) {
	t.Parallel()
	paths := corpusObjects(t)
	for _, p := range paths[:min(len(paths), 20)] {
		gz, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		plain := gunzipBytes(t, gz)
		want, err := decodeAll(bytes.NewReader(gz), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]io.Reader{
			"one byte gzip":  iotest.OneByteReader(bytes.NewReader(gz)),
			"one byte plain": iotest.OneByteReader(bytes.NewReader(plain)),
			"data err gzip":  iotest.DataErrReader(bytes.NewReader(gz)),
			"half plain":     iotest.HalfReader(bytes.NewReader(plain)),
		} {
			got, err := decodeAll(r, Limits{MaxRecordBytes: 64 << 10})
			if err != nil {
				t.Fatalf("%s %s: %v", name, p, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s %s: records differ", name, p)
			}
		}
	}
}

// A failing reader is the storage's fault: its error is passed on for a
// retry, not dressed as a permanent *DecodeError.
func TestDecodeSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	doc := []byte(`{"Records":[{"a":1},{"a":2}]}`)
	for name, in := range map[string][]byte{"plain": doc, "gzip": gzipBytes(t, doc)} {
		for _, n := range []int{0, 1, 5, len(in) - 1} {
			r := io.MultiReader(bytes.NewReader(in[:n]), iotest.ErrReader(boom))
			_, err := decodeAll(r, Limits{})
			var de *DecodeError
			if !errors.Is(err, boom) || errors.As(err, &de) {
				t.Fatalf("%s after %d bytes: err = %v, want the reader's error", name, n, err)
			}
		}
	}
}

func TestDecodeReset(t *testing.T) {
	t.Parallel()
	paths := corpusObjects(t)
	d, err := NewDecoder(strings.NewReader(`{"Records":[]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		gz, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		in := gz
		if i%2 == 1 {
			in = gunzipBytes(t, gz)
		}
		want, err := decodeAll(bytes.NewReader(gz), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Reset(bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		got, err := drain(d)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s after Reset: %d records, err %v; want %d", p, len(got), err, len(want))
		}
		// A broken object in between leaves the Decoder reusable.
		if err := d.Reset(strings.NewReader("{")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Next(); !errors.Is(err, ErrSyntax) {
			t.Fatalf("err = %v", err)
		}
		if _, err := d.Next(); !errors.Is(err, ErrSyntax) {
			t.Fatalf("error is not sticky: %v", err)
		}
	}
	if err := d.Reset(bytes.NewReader(nil)); !errors.Is(err, ErrSyntax) {
		t.Fatalf("empty object: %v", err)
	}
}

// The malformed fixtures from aws-cloudtrail-processing-library.
func TestDecodeMalformedFixtures(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(corpusDir(t), "raw", "malformed")
	tests := map[string]struct {
		records int
		rejects []string
		kind    error
	}{
		"SerializerAllFieldsNull.json":                   {records: 2, rejects: []string{"eventTime missing"}},
		"SerializerTestFile.json":                        {records: 6},
		"SerializerTestFileBadFieldName.json":            {records: 2, rejects: []string{"eventTime missing"}},
		"SerializerTestFileBadJsonFormat.json":           {kind: ErrSyntax},
		"SerializerTestFileCompact.json":                 {records: 6},
		"SerializerTestFileCompact.json.gz":              {records: 6},
		"SerializerTestFileLocation.json":                {records: 6},
		"SerializerTestFileMissField.json":               {records: 4, rejects: []string{`eventTime unparseable: "ThisIsAWrongEventTime"`}},
		"SerializerTestFileNewFieldAtRandomPlaces.json":  {records: 2},
		"SerializerTestFileNewFieldName.json":            {records: 2, rejects: []string{"eventTime missing"}},
		"SerializerTestFileNewFieldsInRoot.json":         {records: 2},
		"SerializerTestFileNewFieldsInUserIdentity.json": {records: 2},
		"SerializerVariousUserIdentityTestFile.json":     {records: 1},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(tests) {
		t.Errorf("%d fixtures, %d expectations", len(entries), len(tests))
	}
	for _, e := range entries {
		want, ok := tests[e.Name()]
		if !ok {
			t.Errorf("no expectation for %s", e.Name())
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := decodeAll(f, Limits{})
		f.Close()
		if want.kind != nil {
			if !errors.Is(err, want.kind) {
				t.Errorf("%s: err = %v, want %v", e.Name(), err, want.kind)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		var rejects []string
		for _, rec := range recs {
			checkRecord(t, []byte(rec))
			if _, err := Normalize([]byte(rec), "b", e.Name()); err != nil {
				rejects = append(rejects, err.Error())
			}
		}
		if len(recs) != want.records || fmt.Sprint(rejects) != fmt.Sprint(want.rejects) {
			t.Errorf("%s: %d records, rejects %q; want %d, %q", e.Name(), len(recs), rejects, want.records, want.rejects)
		}
	}
}

// A 300 MB object streams through a few MB of heap.
func TestDecodeBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 300 MB; skipped with -short")
	}
	const target = 300 << 20
	rec := []byte(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice"},` +
		`"eventTime":"2024-08-01T13:42:21Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",` +
		`"requestParameters":{"bucketName":"b","key":"` + strings.Repeat("k", 600) + `"},"eventID":"`)

	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		zw.Write([]byte(`{"Records":[`))
		for n, written := 0, 0; written < target; n++ {
			if n > 0 {
				zw.Write([]byte{','})
			}
			zw.Write(rec)
			k, _ := fmt.Fprintf(zw, `%d"}`, n)
			written += len(rec) + k + 1
		}
		zw.Write([]byte(`]}`))
		pw.CloseWithError(zw.Close())
	}()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()

	d, err := NewDecoder(pr, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		raw, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Normalize(raw, "b", "k"); err != nil {
			t.Fatal(err)
		}
		n++
	}
	close(stop)
	wg.Wait()
	// Not parallel: the package's parallel tests wait until it is done.
	const budget = 32 << 20
	t.Logf("%d records, %d MB decompressed; heap in use: base %.1f MB, peak %.1f MB",
		n, d.total>>20, float64(base.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20))
	if d.total < target {
		t.Fatalf("decoded only %d bytes", d.total)
	}
	if peak.Load() > budget {
		t.Fatalf("heap in use peaked at %d bytes; budget %d", peak.Load(), budget)
	}
}

// skipPlain's eight-bytes-at-a-time test agrees with the byte table for
// every byte value at every position of a word and of the tail.
func TestDecodeSkipPlain(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		for pos := range 20 {
			for n := pos + 1; n < 24; n++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				want := n
				if !strPlain[c] {
					want = pos
				}
				if got := skipPlain(b, 0); got != want {
					t.Fatalf("byte %#02x at %d of %d: got %d, want %d", c, pos, n, got, want)
				}
			}
		}
	}
}

// stallReader returns no data and no error, forever.
type stallReader struct{}

func (stallReader) Read([]byte) (int, error) { return 0, nil }

func TestDecodeStalledReader(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{`{"Records":[`, "\x1f\x8b"} {
		r := io.MultiReader(strings.NewReader(prefix), stallReader{})
		d, err := NewDecoder(r, Limits{})
		if err == nil {
			_, err = d.Next()
		}
		var de *DecodeError
		if !errors.Is(err, io.ErrNoProgress) || errors.As(err, &de) {
			t.Fatalf("%q: err = %v, want io.ErrNoProgress", prefix, err)
		}
	}
}

// TestNextEntryKeepsEntries decodes the whole corpus, and generated objects with
// big records, through one Decoder's NextEntry, keeping every row, and checks
// afterwards that each still equals what Next and Normalize give: rows must
// not share memory that a later record overwrites.
func TestNextEntryKeepsEntries(t *testing.T) {
	t.Parallel()
	var objects [][]byte
	for _, p := range corpusObjects(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objects = append(objects, b)
	}
	// Records around arenaLarge, and dirty ones, take the other paths.
	var big bytes.Buffer
	big.WriteString(`{"Records":[`)
	for i := range 40 {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `{"eventTime":"2024-01-01T00:00:%02dZ","eventID":"id-%d","eventName":"N\u0000%d","requestParameters":{"pad":"%s"}}`,
			i%60, i, i, strings.Repeat("x", i*400))
	}
	big.WriteString(`]}`)
	objects = append(objects, gzipBytes(t, big.Bytes()))

	type kept struct {
		obj, rec int
		row      Entry
	}
	var rows []kept
	d, err := NewDecoder(bytes.NewReader(objects[0]), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, obj := range objects {
		if err := d.Reset(bytes.NewReader(obj)); err != nil {
			t.Fatal(err)
		}
		for j := 0; ; j++ {
			var row Entry
			err := d.NextEntry(&row, "bucket", fmt.Sprint(i))
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("object %d: %v", i, err)
			}
			rows = append(rows, kept{i, j, row})
		}
	}
	events := 0
	for _, k := range rows {
		recs, err := decodeAll(bytes.NewReader(objects[k.obj]), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want, werr := Normalize([]byte(recs[k.rec]), "bucket", fmt.Sprint(k.obj))
		switch {
		case werr != nil:
			if k.row.Reject == nil || k.row.Reject.Reason != werr.Error() || k.row.Reject.Raw != recs[k.rec] {
				t.Fatalf("object %d record %d: got %+v, want the reject %q", k.obj, k.rec, k.row, werr)
			}
		case k.row.Reject != nil || !reflect.DeepEqual(k.row.Event, want):
			t.Fatalf("object %d record %d: got\n%+v\nwant\n%+v", k.obj, k.rec, k.row, want)
		default:
			events++
		}
	}
	if events < 500 {
		t.Fatalf("only %d events compared", events)
	}
}
