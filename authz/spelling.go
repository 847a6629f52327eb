package authz

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// How upstreams spell a path or a method other than as it came: Unicode
// normalisation, case folding and digits, and ASCII case.

// unicodeReadings adds the readings of p, which has non-ASCII, by
// upstreams that normalise or fold it: NFKC (fullwidth letters and
// digits, "ſ" as "s", the Kelvin sign as "K"), case folding as
// cases.Fold does it and as upper- then lower-casing rune by rune does it
// (.NET's OrdinalIgnoreCase and ToUpperInvariant: "ı" is "I"), and every
// Unicode decimal digit as its ASCII digit (Python's int(), Werkzeug's
// <int:>, regexps with a Unicode \d). Upstreams apply any of these alone
// or together, so each combination is a reading. Each goes through
// resourcePath, as NFKC may make ';' or '/'.
func unicodeReadings(p string, add func(string) bool) bool {
	fold := cases.Fold()
	for _, nfkc := range [2]bool{false, true} {
		s := p
		if nfkc {
			s = norm.NFKC.String(s)
		}
		for casing := range 3 {
			t := s
			switch casing {
			case 1:
				t = fold.String(t)
			case 2:
				t = strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, t)
			}
			if !add(resourcePath(t)) || !add(resourcePath(asciiDigits(t))) {
				return false
			}
		}
	}
	return true
}

// asciiDigits is s with every Unicode decimal digit (category Nd) as its
// ASCII digit.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf && unicode.Is(unicode.Nd, r) {
			return '0' + digitValue(r)
		}
		return r
	}, s)
}

// digitValue is the value of the decimal digit r. Unicode encodes each
// script's decimal digits as one run from 0 to 9, and unicode.Nd's
// ranges each start at a 0 (a test checks it).
func digitValue(r rune) rune {
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return (r - rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return (r - rune(rg.Lo)) % 10
		}
	}
	return 0
}

// equalASCIIFold reports whether s is the lower-case lower in any ASCII
// case, as php_fastcgi compares split markers.
func equalASCIIFold(s, lower string) bool {
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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiLower is s with ASCII letters in lower case; s itself if it has
// none in upper case.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return mapASCII(s, 'A', 'Z', 'a'-'A')
		}
	}
	return s
}

// asciiUpper is s with ASCII letters in upper case; s itself if it has
// none in lower case.
func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return mapASCII(s, 'a', 'z', 'A'-'a')
		}
	}
	return s
}

func mapASCII(s string, lo, hi byte, delta int) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = byte(int(c) + delta)
		}
	}
	return string(b)
}
