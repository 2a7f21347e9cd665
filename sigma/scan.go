package sigma

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The JSON scanning of a record: finding keys, skipping values and
// decoding strings, without a decoder. It is written by hand because the
// standard library has no lazy JSON reader: encoding/json decodes whole
// values (and allocates) where a rule needs one field.
//
// cloudtrail has a scanner of its own (scan.go, appendUnquoted in
// normalize.go) and the two are kept apart: cloudtrail's decoding makes
// text PostgreSQL can store (NUL, invalid UTF-8 and malformed escapes
// become U+FFFD), while a rule must see a value as the record writes it
// (unquote keeps a malformed escape as written); and sigma decodes only
// strings that hold escapes, a few in a thousand, the rest being aliased.

// fieldPath is a field name of a rule, such as userIdentity.type: dots
// separate the keys of nested objects (a key that holds dots itself matches
// too, as it would in a search engine).
type fieldPath struct {
	name string
	// first is the text every top-level key the path can match begins
	// with: its first segment; empty when that segment has characters that
	// JSON may escape other than with \u, so that it need not occur
	// verbatim.
	first string
	rare  int // the index in first of its rarest byte
	seg   int // the id of first in its Set, or -1
	// key is the cloudtrail.Member Key of first, 0 if Normalize maps no
	// such key (top.go).
	key uint8
}

func newFieldPath(name string) *fieldPath {
	first, _, _ := strings.Cut(name, ".")
	for i := 0; i < len(first); i++ {
		if c := first[i]; c < 0x20 || c == '"' || c == '\\' || c == '/' {
			first = ""
			break
		}
	}
	return &fieldPath{name: name, first: first, rare: rarest(first), seg: -1}
}

// rarest returns the index of the byte of s least frequent in CloudTrail
// records (the y of userIdentity, the C of errorCode).
func rarest(s string) int {
	best, score := 0, -1
	for i := 0; i < len(s); i++ {
		sc := 1000 // not printable ASCII: rarer than any
		if j := strings.IndexByte(byteFrequency, s[i]); j >= 0 {
			sc = len(byteFrequency) - j
		}
		if sc > score {
			best, score = i, sc
		}
	}
	return best
}

// byteFrequency is printable ASCII from the least to the most frequent
// byte in the corpus's records (855 records, 1 MB, counted once). Upper-case
// letters are not all rare: access key and principal ids are full of them.
const byteFrequency = "^`|~!&$?<>'#=%;()*@+[]jYJQWBUGXF_xqk\\OZLKVHzN/MRPEhTC{}DSgywfb v6.7895pI4A3lm0u-2d,ic1orn:stae\""

// lastIndex returns the index of the last occurrence of lit in b, or -1.
// It looks for lit's byte at rare, which the caller chose to be one that
// CloudTrail's text seldom holds, with the vectorized IndexByte: a search
// for the first byte would stop at every other key.
func lastIndex(b []byte, lit string, rare int) int {
	last := -1
	c := lit[rare]
	for at := rare; at < len(b); {
		i := bytes.IndexByte(b[at:], c)
		if i < 0 {
			break
		}
		start := at + i - rare
		if start+len(lit) <= len(b) && string(b[start:start+len(lit)]) == lit {
			last = start
		}
		at += i + 1
	}
	return last
}

// bytesString returns b as a string without copying; b must not change
// while the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// stringValue returns the text of the JSON string literal b (quotes
// included), without copying when it has no escapes.
func stringValue(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	in := b[1 : len(b)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return bytesString(in)
	}
	return unquote(in)
}

// unquote decodes the escapes of a JSON string's content. Invalid escapes
// are kept as they are; unpaired surrogates become U+FFFD.
func unquote(in []byte) string {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' || i+1 >= len(in) {
			out = append(out, c)
			continue
		}
		i++
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := decodeU(in[i+1:])
			if n == 0 {
				out = append(out, '\\', 'u')
				continue
			}
			i += n
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), 0
				if i+2 < len(in) && in[i+1] == '\\' && in[i+2] == 'u' {
					r2, n2 = decodeU(in[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 2 + n2
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, '\\', in[i])
		}
	}
	return string(out)
}

// decodeU decodes the four hex digits at the start of b; n is 0 if there
// are none.
func decodeU(b []byte) (r rune, n int) {
	if len(b) < 4 {
		return 0, 0
	}
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, 0
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}

// scanMembers appends the members of the object at b[i] (after optional
// whitespace) to ms. It returns ms unchanged if there is no object there,
// and the members read so far if the object is cut short or malformed.
func scanMembers(b []byte, i int, ms []member) []member {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return ms
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		kend, esc := skipStringEsc(b, i)
		if kend < 0 {
			return ms
		}
		j := skipSpace(b, kend)
		if j >= len(b) || b[j] != ':' {
			return ms
		}
		v0 := skipSpace(b, j+1)
		v1 := skipValue(b, v0)
		if v1 <= v0 {
			return ms
		}
		ms = append(ms, member{k0: int32(i + 1), k1: int32(kend - 1), v0: int32(v0), v1: int32(v1), kesc: esc})
		i = skipSpace(b, v1)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return ms
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the JSON value that starts at b[i], or i if
// there is none (or it is cut short).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := skipStringEsc(b, i)
		if end < 0 {
			return i
		}
		return end
	case '{', '[':
		return skipContainer(b, i)
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"', '{', '[':
			return j
		}
		j++
	}
	return j
}

// skipContainer returns the end of the object or array that starts at
// b[i], or i if it is not closed. It is the inner loop of every scan, so
// strings are skipped in place, eight bytes at a time, without a call.
func skipContainer(b []byte, i int) int {
	depth := 0
	j := i
	for j < len(b) {
		c := b[j]
		if !structural[c] {
			j++
			continue
		}
		switch c {
		case '"':
			j++
			for {
				for j+8 <= len(b) {
					m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
					if m != 0 {
						j += bits.TrailingZeros64(m) >> 3
						break
					}
					j += 8
				}
				for j < len(b) && b[j] != '"' && b[j] != '\\' {
					j++
				}
				if j >= len(b) {
					return i
				}
				if b[j] == '"' {
					j++
					break
				}
				j += 2 // a backslash and the character it escapes
			}
			continue
		case '{', '[':
			depth++
		default: // '}', ']'
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return i
}

// structural marks the bytes skipContainer stops at outside strings.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// Constants of the SWAR search for a quote or a backslash eight bytes at a
// time.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// quoteOrBackslash returns a word with the high bit set in each byte of w
// that is '"' or '\\' (and possibly in bytes above such a byte; the lowest
// set bit is always exact).
func quoteOrBackslash(w uint64) uint64 {
	q := w ^ (lsb * '"')
	s := w ^ (lsb * '\\')
	return ((q-lsb)&^q | (s-lsb)&^s) & msb
}

// skipString returns the end of the string literal that starts at b[i]
// (the index after its closing quote), or -1 if it is not closed.
func skipString(b []byte, i int) int {
	end, _ := skipStringEsc(b, i)
	return end
}

// skipStringEsc is skipString that also reports whether the string has
// backslash escapes. It reads eight bytes at a time: most of a CloudTrail
// record's bytes are inside strings.
func skipStringEsc(b []byte, i int) (int, bool) {
	esc := false
	j := i + 1
	for {
		for j+8 <= len(b) {
			m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
			if m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) {
			return -1, esc
		}
		if b[j] == '"' {
			return j + 1, esc
		}
		esc = true
		j += 2 // the backslash and the character it escapes
	}
}
