package upstream

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Control is what the upstream asked for in its response headers
// (<prefix>Set-<Key>, <prefix>Delete, <prefix>Login, <prefix>Logout).
type Control struct {
	Set     map[string]string // data keys to set
	Delete  []string          // data keys to delete
	Login   string            // the user to log in, "" for none
	Logout  bool              // end the session
	Changed bool              // any of the above
}

// ParseControl reads the control headers in hdr, a response's header.
// Bad keys, values and login names (those validLogin refuses) are left
// out and logged at warn with remoteIP; they never reach a header.
func (m Trusted) ParseControl(hdr http.Header, validLogin func(string) error, logger *zap.Logger, remoteIP string) Control {
	var c Control
	warn := func(msg string, fields ...zap.Field) {
		logger.Warn(msg, append(fields, zap.String("remote_ip", remoteIP))...)
	}
	prefix := m.prefix
	for name, values := range hdr {
		if !m.MatchesPrefix(name) || len(values) == 0 {
			continue
		}
		rest := name[len(prefix):]
		verb := normalizeHeaderName(rest)
		value := values[len(values)-1]
		switch {
		case strings.HasPrefix(verb, "set-"):
			// The key is only lower-cased: "Bad_Key" is not "bad-key".
			key := strings.ToLower(rest[len("set-"):])
			if !ValidDataKey(key) {
				warn("upstream control: invalid session data key ignored", zap.String("key", truncate(key)))
				continue
			}
			if !ValidDataValue(value) {
				warn("upstream control: invalid session data value ignored", zap.String("key", key))
				continue
			}
			if c.Set == nil {
				c.Set = map[string]string{}
			}
			c.Set[key] = value
			c.Changed = true
		case verb == "delete":
			for _, v := range values {
				for key := range strings.SplitSeq(v, ",") {
					key = strings.ToLower(strings.TrimSpace(key))
					if !ValidDataKey(key) {
						warn("upstream control: invalid session data key ignored", zap.String("key", truncate(key)))
						continue
					}
					c.Delete = append(c.Delete, key)
					c.Changed = true
				}
			}
		case verb == "login":
			if err := validLogin(value); err != nil {
				warn("upstream control: invalid login name ignored", zap.Error(err))
				continue
			}
			c.Login = value
			c.Changed = true
		case verb == "logout":
			if strings.EqualFold(strings.TrimSpace(value), "true") {
				c.Logout = true
				c.Changed = true
			}
		}
	}
	return c
}

// RemoveControl removes from a response's header every header with the
// prefix, and the prefix's names from the list of announced trailers.
func (m Trusted) RemoveControl(hdr http.Header) {
	for name := range hdr {
		if m.MatchesPrefix(name) {
			delete(hdr, name)
		}
	}
	if announced, ok := hdr["Trailer"]; ok {
		m.prefixOnly().removeFromList(hdr, "Trailer", announced)
	}
}

// ValidDataKey reports whether k matches [a-z0-9-]{1,64}.
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

func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
