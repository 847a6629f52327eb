package authz

import (
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// TestDigitValue: every Unicode decimal digit reads as the ASCII digit
// NFKC gives it where NFKC gives one, and each script's digits run 0 to 9.
func TestDigitValue(t *testing.T) {
	n := 0
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if !unicode.Is(unicode.Nd, r) {
			continue
		}
		n++
		v := digitValue(r)
		if v < 0 || v > 9 {
			t.Fatalf("%U: %d", r, v)
		}
		if v > 0 && !unicode.Is(unicode.Nd, r-1) || v > 0 && digitValue(r-1) != v-1 {
			t.Errorf("%U is %d, but %U before it is not %d", r, v, r-1, v-1)
		}
		if k := norm.NFKC.String(string(r)); len(k) == 1 && k[0] != byte('0'+v) {
			t.Errorf("%U is %d, NFKC says %q", r, v, k)
		}
	}
	if n < 600 {
		t.Errorf("only %d non-ASCII decimal digits", n)
	}
	if got := asciiDigits("/r/١٢/۳/४/１"); got != "/r/12/3/4/1" {
		t.Errorf("asciiDigits: %q", got)
	}
}
