package upstream

import (
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Controller is the session's side of the upstream's response: what the
// upstream's control headers change, and where a hijacked connection is
// kept. The caller implements it (it knows the session and the store).
type Controller interface {
	// ApplyControl is called once, when the response headers are about to
	// go out, if upstream control is on. w's header holds what the
	// upstream set (ParseControl reads it); ApplyControl may add headers
	// (cookies) to it before it is written.
	ApplyControl(w http.ResponseWriter)
	// Hijacked is called with a connection the next handler took over; it
	// returns the connection to hand on (see Conns.Track).
	Hijacked(conn net.Conn) net.Conn
}

// Writer sits between the next handler and the client. When the response
// headers are about to go out, it applies upstream control (if on) and
// removes every header with the prefix. It never touches the body:
// writes, flushes and hijacks go straight through.
type Writer struct {
	caddyhttp.ResponseWriterWrapper
	names       *Trusted
	ctl         Controller
	control     bool // apply upstream control
	wroteHeader bool
}

// Reset makes rw the writer of the next handler's response to w. The
// prefix is names'; ctl applies upstream control when control is true,
// and is told of hijacked connections either way.
func (rw *Writer) Reset(w http.ResponseWriter, names *Trusted, ctl Controller, control bool) {
	*rw = Writer{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, names: names, ctl: ctl, control: control}
}

// WriteHeader implements http.ResponseWriter.
func (rw *Writer) WriteHeader(status int) {
	if rw.wroteHeader {
		rw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints): more headers follow.
		rw.names.RemoveControl(rw.Header())
		rw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	rw.Finish()
	rw.ResponseWriterWrapper.WriteHeader(status)
}

// Finish applies upstream control and removes the control headers, once,
// before the response headers go out. The caller calls it too after the
// next handler returns, for a handler that wrote nothing (Caddy then
// writes the headers itself, from the same header map).
func (rw *Writer) Finish() {
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader = true
	if rw.control {
		rw.ctl.ApplyControl(&rw.ResponseWriterWrapper)
	}
	rw.names.RemoveControl(rw.Header())
}

// Write implements http.ResponseWriter.
func (rw *Writer) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom, so that sendfile still works.
func (rw *Writer) ReadFrom(r io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.NewResponseController flush through this writer
// without the headers skipping it.
func (rw *Writer) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// StripTrailers removes response trailers with the prefix, once the next
// handler has returned and before net/http writes the trailers: those set
// after the header under an announced name, and those set with
// http.TrailerPrefix (as reverse_proxy does for unannounced ones).
func (rw *Writer) StripTrailers() {
	hdr := rw.Header()
	for name := range hdr {
		if rw.names.MatchesPrefix(strings.TrimPrefix(name, http.TrailerPrefix)) {
			delete(hdr, name)
		}
	}
}

// Guard removes the headers with the prefix just before the response
// headers go out, without applying them: it is around the responses the
// handler writes itself.
type Guard struct {
	caddyhttp.ResponseWriterWrapper
	names       *Trusted
	wroteHeader bool
}

// Reset makes g the guard of w, removing names' prefix.
func (g *Guard) Reset(w http.ResponseWriter, names *Trusted) {
	*g = Guard{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, names: names}
}

// WroteHeader reports whether the final response headers went out
// through g.
func (g *Guard) WroteHeader() bool { return g.wroteHeader }

// WriteHeader implements http.ResponseWriter.
func (g *Guard) WriteHeader(status int) {
	if !g.wroteHeader {
		g.names.RemoveControl(g.Header())
		// After an informational response (103), more headers follow.
		g.wroteHeader = status >= 200 || status == http.StatusSwitchingProtocols
	}
	g.ResponseWriterWrapper.WriteHeader(status)
}

// WriteTrusted writes the response header with status, the one answer
// of the handler's own that carries trusted headers (the auth endpoint's
// 200): it removes every trusted name from the header (what handlers
// before put there) and then lets set add the handler's own.
func (g *Guard) WriteTrusted(status int, set func(http.Header)) {
	if g.wroteHeader {
		return
	}
	hdr := g.Header()
	g.names.RemoveControl(hdr)
	g.names.RemoveFrom(hdr)
	set(hdr)
	g.wroteHeader = true
	g.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (g *Guard) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom, so that sendfile still works.
func (g *Guard) ReadFrom(r io.Reader) (int64, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.NewResponseController flush through this writer
// without the headers skipping it.
func (g *Guard) FlushError() error {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(g.ResponseWriterWrapper.ResponseWriter).Flush()
}
