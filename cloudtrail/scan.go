package cloudtrail

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The scanner in this file validates one JSON value without recursion and without
// decoding it. It is shared by the Decoder (to find where a record ends) and
// by Normalize (to skip the values it does not map).

// Flags a scan reports about the strings it passed.
const (
	flagEscape    uint8 = 1 << iota // a backslash escape: unquote before use
	flagNUL                         // a \u0000 escape
	flagSurrogate                   // an unpaired UTF-16 surrogate escape
	flagBadUTF8                     // invalid UTF-8
	// flagDirty marks values that appendSanitized must repair.
	flagDirty = flagNUL | flagSurrogate | flagBadUTF8
)

// errShort means the value may continue past the end of the buffer.
var errShort = errors.New("short buffer")

// syntaxError is a scan failure at byte off of the scanned buffer.
type syntaxError struct {
	msg     string
	off     int
	tooDeep bool
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

var (
	isSpace [256]bool
	// strPlain marks the bytes a string scan passes without a look:
	// printable ASCII other than '"' and '\\'.
	strPlain [256]bool
)

func init() {
	for _, c := range []byte(" \t\r\n") {
		isSpace[c] = true
	}
	for c := 0x20; c < 0x80; c++ {
		strPlain[c] = c != '"' && c != '\\'
	}
}

// isValueStart reports whether c can begin a JSON value.
func isValueStart(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return '0' <= c && c <= '9'
}

// scanValue validates the JSON value at the start of b (after optional
// whitespace) and returns its end. If final is false and b ends before the
// value does, it returns errShort; any other error is a *syntaxError.
func scanValue(b []byte, final bool) (end int, flags uint8, err error) {
	return scanValueDepth(b, final, MaxRecordDepth)
}

// scanValueDepth is scanValue for a value that may nest at most maxDepth
// (at most MaxRecordDepth) levels: a value inside a record's objects has
// less room than the record itself.
func scanValueDepth(b []byte, final bool, maxDepth int) (end int, flags uint8, err error) {
	var (
		stack [MaxRecordDepth / 64]uint64 // bit set: the container at that depth is an object
		depth int
		i     int
		c     byte
	)

value:
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	switch c = b[i]; c {
	case '{', '[':
		if depth >= maxDepth {
			return 0, 0, &syntaxError{msg: fmt.Sprintf("nested deeper than %d levels", MaxRecordDepth), off: i, tooDeep: true}
		}
		if c == '{' {
			stack[depth>>6] |= 1 << (depth & 63)
		} else {
			stack[depth>>6] &^= 1 << (depth & 63)
		}
		depth++
		i++
		for i < len(b) && isSpace[b[i]] {
			i++
		}
		if i >= len(b) {
			goto short
		}
		if b[i] == c+2 { // '}' and ']' follow '{' and '[' by two
			i++
			depth--
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case '"':
		n, f, err := scanString(b[i+1:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i+1)
		}
		flags |= f
		i += 1 + n
	case 't':
		if err := scanLiteral(b[i:], "true", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 4
	case 'f':
		if err := scanLiteral(b[i:], "false", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 5
	case 'n':
		if err := scanLiteral(b[i:], "null", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 4
	default:
		if c != '-' && (c < '0' || c > '9') {
			return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q looking for a value", c), off: i}
		}
		n, err := scanNumber(b[i:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += n
	}

after:
	if depth == 0 {
		return i, flags, nil
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	c = b[i]
	i++
	if stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0 {
		switch c {
		case ',':
			for i < len(b) && isSpace[b[i]] {
				i++
			}
			if i >= len(b) {
				goto short
			}
			goto key
		case '}':
			depth--
			goto after
		}
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after an object member", c), off: i - 1}
	}
	switch c {
	case ',':
		goto value
	case ']':
		depth--
		goto after
	}
	return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after an array element", c), off: i - 1}

key:
	// b[i] is the first non-space byte where an object key must begin.
	if b[i] != '"' {
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q looking for a key", b[i]), off: i}
	}
	{
		n, f, err := scanString(b[i+1:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i+1)
		}
		flags |= f
		i += 1 + n
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	if b[i] != ':' {
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after a key", b[i]), off: i}
	}
	i++
	goto value

short:
	if final {
		return 0, 0, &syntaxError{msg: "unexpected end of JSON", off: len(b)}
	}
	return 0, 0, errShort
}

// shiftErr moves a syntax error's offset by base.
func shiftErr(err error, base int) error {
	if se, ok := err.(*syntaxError); ok {
		se.off += base
	}
	return err
}

// scanString scans a string whose opening quote precedes b, and returns the
// length up to and including the closing quote.
func scanString(b []byte, final bool) (int, uint8, error) {
	var flags uint8
	i := 0
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, nil
		case c == '\\':
			if i+1 >= len(b) {
				goto short
			}
			flags |= flagEscape
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid escape %q in string", b[i:i+2]), off: i}
			}
			if len(b)-i < 6 {
				if !final && isHexPrefix(b[i+2:]) {
					goto short
				}
				return 0, 0, &syntaxError{msg: "invalid \\u escape in string", off: i}
			}
			r, ok := hex4(b[i+2 : i+6])
			if !ok {
				return 0, 0, &syntaxError{msg: "invalid \\u escape in string", off: i}
			}
			i += 6
			switch {
			case r == 0:
				flags |= flagNUL
			case 0xD800 <= r && r < 0xDC00:
				// A high surrogate must be followed by an escaped low one.
				if len(b)-i < 6 && !final && isLowPrefix(b[i:]) {
					goto short
				}
				if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
					if lo, ok := hex4(b[i+2 : i+6]); ok && 0xDC00 <= lo && lo < 0xE000 {
						i += 6
						continue
					}
				}
				flags |= flagSurrogate
			case 0xDC00 <= r && r < 0xE000:
				flags |= flagSurrogate
			}
		case c < 0x20:
			return 0, 0, &syntaxError{msg: fmt.Sprintf("control character %#02x in string", c), off: i}
		default:
			n, ok := validRune(b[i:])
			switch {
			case n == 0: // incomplete sequence at the end of b
				if !final {
					goto short
				}
				flags |= flagBadUTF8
				i++
			case !ok:
				flags |= flagBadUTF8
				i += n
			default:
				i += n
			}
		}
	}
short:
	if final {
		return 0, 0, &syntaxError{msg: "unterminated string", off: len(b)}
	}
	return 0, 0, errShort
}

// skipPlain returns the index of the first byte at or after i that is not
// plain string content (see strPlain), or len(b). It tests eight bytes at a
// time: a word has no special byte if none is below 0x20, none is '"' or
// '\\', and none has the high bit set.
func skipPlain(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ ('"' * ones)
		bs := x ^ ('\\' * ones)
		special := ((x - 0x20*ones) | (q - ones) | (bs - ones) | x) & highs
		if special != 0 {
			// A borrow only spreads upward, so the lowest flagged byte is a
			// real one; the byte loop below stops there.
			break
		}
	}
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	return i
}

// validRune checks the UTF-8 sequence at the start of b, whose first byte is
// 0x80 or above. It returns the sequence's length and whether it is valid;
// an invalid byte counts as a sequence of length 1. n is 0 when b ends
// inside a sequence that may still be valid.
func validRune(b []byte) (n int, ok bool) {
	c := b[0]
	var size int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c < 0xC2 || c > 0xF4:
		return 1, false
	case c < 0xE0:
		size = 2
	case c < 0xF0:
		size = 3
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F // no surrogates
		}
	default:
		size = 4
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	}
	for k := 1; k < size; k++ {
		if k >= len(b) {
			return 0, false
		}
		if b[k] < lo || b[k] > hi {
			return 1, false
		}
		lo, hi = 0x80, 0xBF
	}
	return size, true
}

// scanLiteral checks for lit (true, false or null) at the start of b.
func scanLiteral(b []byte, lit string, final bool) error {
	if len(b) >= len(lit) {
		if string(b[:len(lit)]) == lit {
			return nil
		}
	} else if !final && string(b) == lit[:len(b)] {
		return errShort
	}
	return &syntaxError{msg: fmt.Sprintf("invalid literal, expected %s", lit), off: 0}
}

// scanNumber checks the number at the start of b and returns its length:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, final bool) (int, error) {
	i := 0
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(b):
		goto short
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return 0, &syntaxError{msg: "invalid number", off: i}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			if i >= len(b) {
				goto short
			}
			return 0, &syntaxError{msg: "invalid number: no digits after '.'", off: i}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			if i >= len(b) {
				goto short
			}
			return 0, &syntaxError{msg: "invalid number: no digits in exponent", off: i}
		}
	}
	if i < len(b) || final {
		return i, nil
	}
short:
	if final {
		return 0, &syntaxError{msg: "unexpected end of JSON in a number", off: i}
	}
	return 0, errShort
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hex digits in b.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		v := hexVal(c)
		if v < 0 {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

// isHexPrefix reports whether b (shorter than 4 bytes) may begin 4 hex digits.
func isHexPrefix(b []byte) bool {
	for _, c := range b {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

// isLowPrefix reports whether b (shorter than 6 bytes) may begin an escaped
// low surrogate, \udc00 to \udfff.
func isLowPrefix(b []byte) bool {
	const pat = `\udc`
	for k, c := range b {
		switch {
		case k < 3 && c != pat[k]:
			return false
		case k == 3 && (c|0x20 < 'c' || c|0x20 > 'f'):
			return false
		case k > 3 && hexVal(c) < 0:
			return false
		}
	}
	return true
}

// appendSanitized appends the valid JSON text src (as checked by scanValue)
// to dst, replacing invalid UTF-8 in strings with U+FFFD and the escapes
// \u0000 and unpaired surrogates with \ufffd.
func appendSanitized(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); {
		c := src[i]
		if !inString {
			dst = append(dst, c)
			inString = c == '"'
			i++
			continue
		}
		switch {
		case c == '"':
			dst = append(dst, c)
			inString = false
			i++
		case c == '\\':
			if src[i+1] != 'u' {
				dst = append(dst, src[i:i+2]...)
				i += 2
				continue
			}
			r, _ := hex4(src[i+2 : i+6])
			switch {
			case r == 0 || (0xDC00 <= r && r < 0xE000):
				dst = append(dst, `\ufffd`...)
				i += 6
			case 0xD800 <= r && r < 0xDC00:
				if i+12 <= len(src) && src[i+6] == '\\' && src[i+7] == 'u' {
					if lo, ok := hex4(src[i+8 : i+12]); ok && 0xDC00 <= lo && lo < 0xE000 {
						dst = append(dst, src[i:i+12]...)
						i += 12
						continue
					}
				}
				dst = append(dst, `\ufffd`...)
				i += 6
			default:
				dst = append(dst, src[i:i+6]...)
				i += 6
			}
		case c < 0x80:
			dst = append(dst, c)
			i++
		default:
			n, ok := validRune(src[i:])
			if n == 0 {
				n = 1
			}
			if ok {
				dst = append(dst, src[i:i+n]...)
			} else {
				dst = append(dst, "\uFFFD"...)
			}
			i += n
		}
	}
	return dst
}
