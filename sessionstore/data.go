package sessionstore

import "unicode/utf8"

// The rules of a session's data (Record.Data) as the parts of edgesession
// that write it keep them (upstream control, OIDC claims): a key can be the
// end of a header name, a value can be a header value.

// ValidDataKey reports whether k matches [a-z0-9-]{1,64}: a session data
// key, as the upstream gets it in X-Session-Data-<key>.
func ValidDataKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxDataValue bounds one data value, so that one header cannot grow a
// session without end.
const MaxDataValue = 4096

// ValidDataValue reports whether v is printable text (UTF-8, no control
// characters but tab) that can go in a header.
func ValidDataValue(v string) bool {
	if len(v) > MaxDataValue || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}
