package sigma

import (
	"regexp"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestPatternShortcuts compares the hand-written match with the
// equivalent regular expression, on text whose length or bytes beyond
// ASCII decide it: runes that fold to ASCII letters (the Kelvin sign, long
// s), invalid UTF-8, text as long as the pattern or one byte off.
func TestPatternShortcuts(t *testing.T) {
	patterns := []string{"kit", "Kit", "ssk", "AccessDenied*", "*Operation", "*k*s*", "a*b", "", "*", "K", "kkk", "ks"}
	texts := []string{"kit", "KIT", "\u212Ait", "\u212Ai", "ki\xff", "\xffit", "ki", "kitt", "\u212A", "k",
		"\u017f\u017fk", "s\u017fk", "ss\u212A", "ssk", "\u017fk", "accessdenied", "Acce\u017fsDenied", "AccessDenied\xff",
		"Unauthorized\u212Aperation", "UnauthorizedOperation", "Operation", "peration", "ab", "a\u212Ab", "a\xffb", "", "\xff",
		"\u212As", "\u212A\u017f", "k\u017f", "\u212A\u212A\u212A", "\u212A\u212Ak", "\u212A\u212A\u212Ax", "kkkk"}
	// matchText's bound: a rune that folds to an ASCII letter takes three
	// bytes at most.
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf && utf8.RuneLen(r) > 3 {
				t.Fatalf("%U folds to %q in %d bytes", r, f, utf8.RuneLen(r))
			}
		}
	}
	n := 0
	for _, cased := range []bool{false, true} {
		for _, ps := range patterns {
			s := parseSigmaString(ps)
			p := newPattern(s, cased)
			re := regexp.MustCompile(globRegexp(s, cased))
			for _, text := range texts {
				if got, want := p.match(text), re.MatchString(text); got != want {
					t.Errorf("pattern %q (cased %v) on %q: %v, the regular expression says %v", ps, cased, text, got, want)
				}
				if re.MatchString(text) {
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("nothing matched: nothing compared")
	}
}
