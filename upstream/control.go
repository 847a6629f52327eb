package upstream

import (
	"net/http"
	"strings"

	"github.com/edgesession/edgesession/sessionstore"
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
			if !sessionstore.ValidDataKey(key) {
				warn("upstream control: invalid session data key ignored", zap.String("key", truncate(key)))
				continue
			}
			if !sessionstore.ValidDataValue(value) {
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
					if !sessionstore.ValidDataKey(key) {
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

func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
