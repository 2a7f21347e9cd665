package sigma

import (
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// matcher is one compiled value of a detection item, matched against the
// candidates a field holds. Values that need more than one candidate at a
// time (null, fieldref) are handled by the item.
type matcher interface {
	match(c *cand) bool
}

// strMatcher matches the candidate's text (a string's, a number's or a
// boolean's, or an object's JSON text) against a Sigma string.
type strMatcher struct{ p *pattern }

func (m strMatcher) match(c *cand) bool { return m.p.matchText(c.text, &c.ascii) }

// numMatcher is a number in the rule (EventID: 4624): it matches a JSON
// number of the same value, or text that is the number as the rule writes
// it.
type numMatcher struct {
	text string
	f    float64
}

func (m numMatcher) match(c *cand) bool {
	switch c.kind {
	case kNumber:
		f, err := strconv.ParseFloat(c.text, 64)
		return err == nil && f == m.f
	case kString:
		return c.text == m.text
	}
	return false
}

// boolMatcher is a boolean in the rule: it matches a JSON boolean or a
// string "true" or "false" in any case (CloudTrail writes readOnly both
// ways).
type boolMatcher struct{ b bool }

func (m boolMatcher) match(c *cand) bool {
	if c.kind != kBool && c.kind != kString {
		return false
	}
	return equalFoldLower(c.text, strconv.FormatBool(m.b))
}

// reMatcher is the re modifier: a regular expression searched for anywhere
// in the text, as pySigma's matcher does (re.search).
type reMatcher struct{ re *regexp.Regexp }

func (m reMatcher) match(c *cand) bool { return m.re.MatchString(c.text) }

// cidrMatcher is the cidr modifier: the text is an IP address inside the
// network.
type cidrMatcher struct{ prefix netip.Prefix }

func (m cidrMatcher) match(c *cand) bool {
	if c.kind != kString {
		return false
	}
	a, err := netip.ParseAddr(c.text)
	if err != nil {
		return false
	}
	return m.prefix.Contains(a.Unmap().WithZone(""))
}

// Comparison operators of the numeric modifiers.
const (
	opLT = iota
	opLTE
	opGT
	opGTE
)

// cmpMatcher is a numeric modifier (lt, lte, gt, gte): the candidate, a
// JSON number or a string holding one, compared with the rule's number.
type cmpMatcher struct {
	op int
	f  float64
}

func (m cmpMatcher) match(c *cand) bool {
	if c.kind != kNumber && c.kind != kString {
		return false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(c.text), 64)
	if err != nil || math.IsNaN(f) {
		return false
	}
	switch m.op {
	case opLT:
		return f < m.f
	case opLTE:
		return f <= m.f
	case opGT:
		return f > m.f
	default:
		return f >= m.f
	}
}

// Parts of a timestamp that the time modifiers extract.
const (
	partMinute = iota
	partHour
	partDay
	partWeek
	partMonth
	partYear
)

var timeParts = map[string]int{
	"minute": partMinute, "hour": partHour, "day": partDay,
	"week": partWeek, "month": partMonth, "year": partYear,
}

// timeMatcher is a time modifier (hour: 3): the candidate, a timestamp,
// has that value in that part. The modifiers appendix gives no time zone:
// CloudTrail's times are UTC, and so is the part.
type timeMatcher struct {
	part int
	n    int
}

func (m timeMatcher) match(c *cand) bool {
	if c.kind != kString {
		return false
	}
	t, ok := parseTime(c.text)
	if !ok {
		return false
	}
	t = t.UTC()
	var v int
	switch m.part {
	case partMinute:
		v = t.Minute()
	case partHour:
		v = t.Hour()
	case partDay:
		v = t.Day()
	case partWeek:
		_, v = t.ISOWeek()
	case partMonth:
		v = int(t.Month())
	default:
		v = t.Year()
	}
	return v == m.n
}

// parseTime reads the timestamp forms CloudTrail records hold: RFC 3339,
// with a space instead of the T, or without a zone (UTC).
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// refMode is how the fieldref modifier compares a field with the field it
// names: equal, or contains, starts with or ends with it.
type refMode uint8

const (
	refEqual refMode = iota
	refContains
	refPrefix
	refSuffix
)

// fieldRef is a value of the fieldref modifier.
type fieldRef struct {
	path  *fieldPath
	id    int // the path's id in its Set
	mode  refMode
	cased bool
}

// compare reports whether the text a relates to the text b as the mode says.
func (f *fieldRef) compare(a, b string) bool {
	if !f.cased {
		if !isASCII(a) || !isASCII(b) {
			a, b = strings.ToLower(a), strings.ToLower(b)
		} else {
			switch f.mode {
			case refEqual:
				return strings.EqualFold(a, b)
			case refPrefix:
				return len(a) >= len(b) && strings.EqualFold(a[:len(b)], b)
			case refSuffix:
				return len(a) >= len(b) && strings.EqualFold(a[len(a)-len(b):], b)
			}
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
	}
	switch f.mode {
	case refEqual:
		return a == b
	case refPrefix:
		return strings.HasPrefix(a, b)
	case refSuffix:
		return strings.HasSuffix(a, b)
	default:
		return strings.Contains(a, b)
	}
}
