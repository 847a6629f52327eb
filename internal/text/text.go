// Package text holds the one text rule every part of edgesession shares:
// how a value from a client, a provider or an upstream is cut down before
// it is kept or logged.
package text

import (
	"strings"
	"unicode/utf8"
)

// Shorten cuts s to at most n bytes of valid UTF-8 without control
// characters.
func Shorten(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
