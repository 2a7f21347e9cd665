package sigma

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// A Sigma string is text with the wildcards * (any run of characters) and
// ? (one character). A backslash escapes a wildcard or a backslash; any
// other backslash is a plain one. That is the specification's escaping
// (rules specification, "Escaping"): \* and \? are plain wildcards, \\*
// is a backslash then a wildcard, \\\* a backslash then a plain *, and \\
// followed by anything else is one backslash.

// Wildcard markers inside a parsed Sigma string. They are bytes that valid
// UTF-8 never holds, so no text can be mistaken for them.
const (
	wildMany byte = 0xFE // *
	wildOne  byte = 0xFF // ?
)

// wildManyStr is wildMany as a Sigma string. (string(wildMany) would be
// the UTF-8 encoding of U+00FE.)
const wildManyStr sigmaString = "\xfe"

// sigmaString is a parsed Sigma string: text in which the bytes wildMany and
// wildOne stand for the wildcards.
type sigmaString string

// parseSigmaString parses s, honouring the escapes described above.
func parseSigmaString(s string) sigmaString {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*':
			b.WriteByte(wildMany)
		case '?':
			b.WriteByte(wildOne)
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				i++
				b.WriteByte(s[i])
			} else {
				b.WriteByte('\\')
			}
		default:
			b.WriteByte(c)
		}
	}
	return sigmaString(b.String())
}

// plainSigmaString is s taken literally, wildcards included.
func plainSigmaString(s string) sigmaString {
	return sigmaString(s)
}

func (s sigmaString) hasWildcards() bool {
	return strings.IndexByte(string(s), wildMany) >= 0 || strings.IndexByte(string(s), wildOne) >= 0
}

// String returns s in Sigma notation, for messages.
func (s sigmaString) String() string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case wildMany:
			b.WriteByte('*')
		case wildOne:
			b.WriteByte('?')
		case '*', '?', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pattern matches a candidate's text against a Sigma string. Plain text,
// prefixes, suffixes, infixes and patterns with * only are matched without
// regular expressions; case is folded for ASCII by hand, which needs no
// copy of the candidate (strings.ToLower would allocate one per value).
// Text or patterns beyond ASCII, and patterns with ?, use an equivalent
// regular expression, whose (?i) folds case as Unicode does.
type pattern struct {
	// segs are the literal runs between the * wildcards, lower-cased when
	// the match ignores case. anchorStart and anchorEnd say whether the
	// first and last run must be at the text's start and end.
	segs        []string
	anchorStart bool
	anchorEnd   bool
	cased       bool
	// re is the whole pattern as a regular expression, for patterns with
	// ? or beyond ASCII (always), and for text beyond ASCII when case is
	// ignored.
	re    *regexp.Regexp
	ascii bool // the pattern is ASCII and has no ?
	// whole is whether the pattern is one run anchored both ways (no
	// wildcard); minLen is the length of its runes together.
	whole  bool
	minLen int
}

func newPattern(s sigmaString, cased bool) *pattern {
	p := &pattern{cased: cased, ascii: true}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == wildOne || (c >= 0x80 && c != wildMany) {
			p.ascii = false
		}
	}
	if p.ascii {
		parts := strings.Split(string(s), string(wildManyStr))
		p.anchorStart = parts[0] != ""
		p.anchorEnd = parts[len(parts)-1] != ""
		for _, part := range parts {
			if part == "" {
				continue
			}
			if !cased {
				part = strings.ToLower(part)
			}
			p.segs = append(p.segs, part)
		}
		if len(parts) == 1 { // no wildcard: the whole text
			p.anchorStart, p.anchorEnd = true, true
			if len(p.segs) == 0 {
				p.segs = []string{""}
			}
		}
		p.whole = len(p.segs) == 1 && p.anchorStart && p.anchorEnd
		for _, seg := range p.segs {
			p.minLen += len(seg)
		}
	}
	if !p.ascii || !cased {
		p.re = regexp.MustCompile(globRegexp(s, cased))
	}
	return p
}

// globRegexp returns a regular expression that matches what s does.
func globRegexp(s sigmaString, cased bool) string {
	var b strings.Builder
	b.WriteString("(?s")
	if !cased {
		b.WriteString("i")
	}
	b.WriteString(")^")
	lit := 0
	flush := func(i int) {
		if lit < i {
			b.WriteString(regexp.QuoteMeta(string(s[lit:i])))
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case wildMany:
			flush(i)
			b.WriteString(".*")
			lit = i + 1
		case wildOne:
			flush(i)
			b.WriteString(".")
			lit = i + 1
		}
	}
	flush(len(s))
	b.WriteString("$")
	return b.String()
}

// match reports whether text matches the pattern.
//
// Text shorter than the pattern's literal runs together cannot match, nor
// can text beyond ASCII that is no longer than the whole text an ASCII
// pattern is: the runes that fold to ASCII letters (K, the Kelvin sign,
// for k; ſ for s) take more bytes than the letters, and a byte that is not
// valid UTF-8 is U+FFFD to the regular expression, which matches no ASCII
// letter. Neither needs the look at the text beyond ASCII.
func (p *pattern) match(text string) bool {
	var ascii uint8
	return p.matchText(text, &ascii)
}

// matchText is match for a text whose isASCII is remembered in *ascii
// (0: not known yet, 1: ASCII, 2: not), for the next pattern to match it.
// Of a whole pattern, text more than three times as long cannot match
// either: no rune folds to an ASCII letter in more than three bytes.
func (p *pattern) matchText(text string, ascii *uint8) bool {
	if p.ascii {
		if len(text) < p.minLen {
			return false
		}
		if p.whole && (len(text) == p.minLen || p.cased || len(text) > 3*p.minLen) {
			return p.equal(text, p.segs[0])
		}
	}
	if !p.ascii {
		return p.re.MatchString(text)
	}
	if !p.cased {
		if *ascii == 0 {
			*ascii = 1
			if !isASCII(text) {
				*ascii = 2
			}
		}
		if *ascii == 2 {
			return p.re.MatchString(text)
		}
	}
	segs := p.segs
	if len(segs) == 0 { // only wildcards
		return true
	}
	if p.whole {
		return p.equal(text, segs[0])
	}
	if p.anchorStart {
		if len(text) < len(segs[0]) || !p.equal(text[:len(segs[0])], segs[0]) {
			return false
		}
		text = text[len(segs[0]):]
		segs = segs[1:]
	}
	if p.anchorEnd {
		if len(segs) == 0 {
			return text == "" // cannot happen: one run anchored both ways is handled above
		}
		last := segs[len(segs)-1]
		if len(text) < len(last) || !p.equal(text[len(text)-len(last):], last) {
			return false
		}
		text = text[:len(text)-len(last)]
		segs = segs[:len(segs)-1]
	}
	// The middle runs in order, each at its leftmost place: for patterns
	// with * only, the leftmost place never loses a match.
	for _, seg := range segs {
		i := p.index(text, seg)
		if i < 0 {
			return false
		}
		text = text[i+len(seg):]
	}
	return true
}

func (p *pattern) equal(text, seg string) bool {
	if p.cased {
		return text == seg
	}
	return equalFoldLower(text, seg)
}

func (p *pattern) index(text, seg string) int {
	if p.cased {
		return strings.Index(text, seg)
	}
	return indexFoldLower(text, seg)
}

// equalFoldLower reports whether the ASCII text s equals lower, which is
// in lower case, ignoring case.
func equalFoldLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// indexFoldLower returns the index of the first instance of lower (in lower
// case) in the ASCII text s, ignoring case, or -1.
func indexFoldLower(s, lower string) int {
	if len(lower) == 0 {
		return 0
	}
	c0 := lower[0]
	up := c0
	if 'a' <= c0 && c0 <= 'z' {
		up = c0 - ('a' - 'A')
	}
	for i := 0; i+len(lower) <= len(s); i++ {
		// Jump to the next place the first byte, in either case, is.
		j := strings.IndexByte(s[i:len(s)-len(lower)+1], c0)
		if up != c0 {
			if k := strings.IndexByte(s[i:len(s)-len(lower)+1], up); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		i += j
		if equalFoldLower(s[i:i+len(lower)], lower) {
			return i
		}
	}
	return -1
}

// isASCII reports whether s has no byte beyond ASCII, eight at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&msb != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
