package cloudtrail_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// snake turns a Go field name into its column name: SourceIPAddress is
// source_ip_address, S3Bucket s3_bucket.
func snake(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// TestColumnsMatchEvent checks Columns against Event: one column per
// field, in order, named after it, of a type that holds it.
func TestColumnsMatchEvent(t *testing.T) {
	typ := reflect.TypeFor[cloudtrail.Event]()
	// Layout, the last field, is not a column.
	if last := typ.Field(typ.NumField() - 1); last.Name != "Layout" {
		t.Fatalf("Event's last field is %s, not Layout", last.Name)
	}
	if typ.NumField()-1 != len(cloudtrail.Columns) {
		t.Fatalf("Event has %d column fields, Columns %d", typ.NumField()-1, len(cloudtrail.Columns))
	}
	want := map[reflect.Type]string{
		reflect.TypeFor[string]():          "text",
		reflect.TypeFor[time.Time]():       "timestamptz",
		reflect.TypeFor[*bool]():           "boolean",
		reflect.TypeFor[json.RawMessage](): "jsonb",
	}
	for i, c := range cloudtrail.Columns {
		f := typ.Field(i)
		if snake(f.Name) != c.Name {
			t.Errorf("column %d is %s, field %s", i, c.Name, f.Name)
		}
		if want[f.Type] != c.Type {
			t.Errorf("column %s is %s, field %s is a %s", c.Name, c.Type, f.Name, f.Type)
		}
	}
}
