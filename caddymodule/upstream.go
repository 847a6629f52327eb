package caddymodule

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// responseWriter sits between the next handler and the client. When the
// response headers are about to go out, it applies upstream control (if
// on) and removes every header with the prefix. It never touches the body:
// writes, flushes and hijacks go straight through.
type responseWriter struct {
	caddyhttp.ResponseWriterWrapper
	h           *Handler
	r           *http.Request
	s           *session.Session
	control     bool // apply upstream control
	wroteHeader bool
}

// wrapResponse makes rw the writer of the next handler's response to w.
func (h *Handler) wrapResponse(rw *responseWriter, w http.ResponseWriter, r *http.Request, s *session.Session) {
	*rw = responseWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, h: h, r: r, s: s, control: h.UpstreamControl}
}

// WriteHeader implements http.ResponseWriter.
func (rw *responseWriter) WriteHeader(status int) {
	if rw.wroteHeader {
		rw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints): more headers follow.
		rw.h.removeControlHeaders(rw.Header())
		rw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	rw.finish()
	rw.ResponseWriterWrapper.WriteHeader(status)
}

// finish applies upstream control and removes the control headers, once,
// before the response headers go out. ServeHTTP calls it too after the
// next handler returns, for a handler that wrote nothing (Caddy then
// writes the headers itself, from the same header map).
func (rw *responseWriter) finish() {
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader = true
	if rw.control {
		rw.h.applyUpstreamControl(&rw.ResponseWriterWrapper, rw.r, rw.s)
	}
	rw.h.removeControlHeaders(rw.Header())
}

// Write implements http.ResponseWriter.
func (rw *responseWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom, so that sendfile still works.
func (rw *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.NewResponseController flush through this writer
// without the headers skipping it.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// removeControlHeaders removes every header with the prefix, and the
// prefix's names from the list of announced trailers.
func (h *Handler) removeControlHeaders(hdr http.Header) {
	for name := range hdr {
		if h.strip.matchesPrefix(name) {
			delete(hdr, name)
		}
	}
	if announced, ok := hdr["Trailer"]; ok {
		h.strip.prefixOnly().removeFromList(hdr, "Trailer", announced)
	}
}

// stripTrailers removes response trailers with the prefix, once the next
// handler has returned and before net/http writes the trailers: those set
// after the header under an announced name, and those set with
// http.TrailerPrefix (as reverse_proxy does for unannounced ones).
func (rw *responseWriter) stripTrailers() {
	hdr := rw.Header()
	for name := range hdr {
		if rw.h.strip.matchesPrefix(strings.TrimPrefix(name, http.TrailerPrefix)) {
			delete(hdr, name)
		}
	}
}

// control is what the upstream asked for in its response headers.
type control struct {
	set     map[string]string
	delete  []string
	login   string
	logout  bool
	changed bool
}

// parseControl reads the control headers. Bad keys, values and names are
// left out and logged at warn; they never reach a header.
func (h *Handler) parseControl(hdr http.Header, r *http.Request) control {
	var c control
	warn := func(msg string, fields ...zap.Field) {
		h.logger.Warn(msg, append(fields, zap.String("remote_ip", clientIP(r)))...)
	}
	prefix := h.strip.prefix
	for name, values := range hdr {
		if !h.strip.matchesPrefix(name) || len(values) == 0 {
			continue
		}
		rest := name[len(prefix):]
		verb := normalizeHeaderName(rest)
		value := values[len(values)-1]
		switch {
		case strings.HasPrefix(verb, "set-"):
			// The key is only lower-cased: "Bad_Key" is not "bad-key".
			key := strings.ToLower(rest[len("set-"):])
			if !validDataKey(key) {
				warn("upstream control: invalid session data key ignored", zap.String("key", truncate(key)))
				continue
			}
			if !validDataValue(value) {
				warn("upstream control: invalid session data value ignored", zap.String("key", key))
				continue
			}
			if c.set == nil {
				c.set = map[string]string{}
			}
			c.set[key] = value
			c.changed = true
		case verb == "delete":
			for _, v := range values {
				for key := range strings.SplitSeq(v, ",") {
					key = strings.ToLower(strings.TrimSpace(key))
					if !validDataKey(key) {
						warn("upstream control: invalid session data key ignored", zap.String("key", truncate(key)))
						continue
					}
					c.delete = append(c.delete, key)
					c.changed = true
				}
			}
		case verb == "login":
			if err := identity.ValidUsername(value); err != nil {
				warn("upstream control: invalid login name ignored", zap.Error(err))
				continue
			}
			c.login = value
			c.changed = true
		case verb == "logout":
			if strings.EqualFold(strings.TrimSpace(value), "true") {
				c.logout = true
				c.changed = true
			}
		}
	}
	return c
}

// applyUpstreamControl changes the session as the upstream asked, saving
// it and setting the cookie in w's headers, before they are written.
func (h *Handler) applyUpstreamControl(w http.ResponseWriter, r *http.Request, s *session.Session) {
	c := h.parseControl(w.Header(), r)
	if !c.changed {
		return
	}
	// The upstream has answered; a client that hangs up now must not lose
	// what the upstream wrote.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()

	if c.logout {
		if err := h.sessions.Destroy(ctx, w, r, s); err != nil {
			h.sessions.LogStoreError(r, "upstream logout", err)
			return
		}
		if c.login == "" {
			// Not with a login: "cookies" would clear the new session's.
			h.sessions.ClearSiteData(w)
		}
		if s != nil && s.Rec.User != "" {
			h.metrics.logouts.Inc()
			h.logger.Info("logout", zap.String("user", s.Rec.User), zap.String("remote_ip", clientIP(r)), zap.String("by", "upstream"))
		}
		s = nil
	}
	if c.login == "" && len(c.set) == 0 && (s == nil || len(c.delete) == 0) {
		return // nothing to write; deleting from no session creates none
	}

	ch := sessionstore.Change{Delete: c.delete, Set: c.set}
	if c.login != "" {
		id := identity.Identity{User: c.login, Source: identity.Upstream}
		data := sessionstore.Record{Data: session.CarriedData(s, id)}.Apply(ch).Data
		if _, err := h.sessions.Login(ctx, w, r, s, id, data); err != nil {
			h.logSaveError(r, "upstream login", err)
			return
		}
		h.metrics.logins.WithLabelValues("success").Inc()
		h.logger.Info("login", zap.String("user", c.login), zap.String("remote_ip", clientIP(r)), zap.String("by", "upstream"))
		return
	}
	if s == nil {
		s = h.sessions.NewFor(r)
	}
	// What the store will do, done to this request's copy too: a new
	// session is created from it, and the cookie store keeps all of it.
	s.Rec = s.Rec.Apply(ch)
	if err := h.sessions.Save(ctx, w, r, s, ch); err != nil {
		h.logSaveError(r, "upstream session write", err)
	}
}

func (h *Handler) logSaveError(r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, session.ErrGone):
		h.logger.Warn("session was logged out meanwhile; not written back", zap.String("op", what), zap.String("remote_ip", clientIP(r)))
	case errors.Is(err, sessionstore.ErrTooLarge):
		h.metrics.storeErrors.Inc()
		h.logger.Error("session does not fit in its cookie; previous cookie kept", zap.String("op", what), zap.String("remote_ip", clientIP(r)), zap.Error(err))
	default:
		h.sessions.LogStoreError(r, what, err)
	}
}

// validDataKey reports whether k matches [a-z0-9-]{1,64}.
func validDataKey(k string) bool {
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

// maxDataValue bounds one data value, so that one header cannot grow a
// session without end.
const maxDataValue = 4096

// validDataValue reports whether v is printable text (UTF-8, no control
// characters but tab) that can go in a header.
func validDataValue(v string) bool {
	if len(v) > maxDataValue || !utf8.ValidString(v) {
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
