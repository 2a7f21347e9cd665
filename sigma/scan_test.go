package sigma

import (
	"strings"
	"testing"
)

// refSkipString is skipStringEsc read byte by byte: a backslash and the
// character after it are a pair, the first quote outside a pair ends the
// string.
func refSkipString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j++
		}
	}
	return -1, esc
}

// TestSkipStringEsc compares the string skipper with the byte-by-byte
// reference on strings of every length up to 70, with a quote or a
// backslash (or a run of them) placed at each offset, closed or cut short:
// the eight-byte, sixteen-byte and IndexByte paths and their edges.
func TestSkipStringEsc(t *testing.T) {
	n := 0
	for length := 0; length <= 70; length++ {
		body := strings.Repeat("a", length)
		for at := 0; at <= length; at++ {
			for _, ins := range []string{``, `\"`, `\\`, `\\\"`, `\\"`, `\`, `"`, `\u0022`} {
				s := body[:at] + ins + body[at:]
				for _, doc := range []string{`"` + s + `"`, `"` + s + `","x":"y"`, `"` + s, `"` + s + `\`} {
					for _, pad := range []string{"", "xxxxxxx"} {
						b := []byte(pad + doc)
						gotEnd, gotEsc := skipStringEsc(b, len(pad))
						wantEnd, wantEsc := refSkipString(b, len(pad))
						if gotEnd != wantEnd || (wantEnd >= 0 && gotEsc != wantEsc) {
							t.Fatalf("%q: (%d, %v), want (%d, %v)", b, gotEnd, gotEsc, wantEnd, wantEsc)
						}
						if got, want := skipContainer([]byte("["+pad+doc+"]"), 0), refSkipContainer([]byte("["+pad+doc+"]")); got != want {
							t.Fatalf("skipContainer(%q) = %d, want %d", "["+pad+doc+"]", got, want)
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d strings compared", n)
}

// refSkipContainer is skipContainer read byte by byte from b[0].
func refSkipContainer(b []byte) int {
	depth := 0
	for j := 0; j < len(b); j++ {
		switch b[j] {
		case '"':
			end, _ := refSkipString(b, j)
			if end < 0 {
				return 0
			}
			j = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return 0
}
