package caddymodule

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ServeHTTP implements caddyhttp.MiddlewareHandler. No response header
// with the prefix leaves through this handler, on any path:
//   - the next handler's response goes through responseWriter, which
//     applies upstream control and removes them as the headers go out;
//   - the responses the handler writes itself (its endpoints, 401, 302,
//     503) go through guardWriter, which removes them without applying
//     them: they were put there by handlers before this one (such as
//     `header`), not by an upstream that answered this request;
//   - when an error comes back instead of a response, Caddy's error
//     routes (handle_errors) answer it, writing to the header map that
//     the handlers before them filled: the map is cleaned before the
//     error goes up. Upstream control found in the map by then (an
//     upstream's headers that reached it, e.g. with copy_response_headers
//     before `error`) has been applied, as on any other status: the
//     upstream answered, and the error only changes what the client sees.
//
// What is beyond any handler is what writes after it has returned:
// headers that the error routes add themselves (a reverse_proxy to the app
// in handle_errors; they are not applied either) and header operations
// deferred by a handler around this one. The README's security notes give
// the `header` lines such handle_errors routes need.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The guard and the upstream's response writer are allocated together.
	ws := &writers{guard: guardWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, h: h}}
	g := &ws.guard
	err := h.serve(g, r, next, &ws.upstream)
	if !g.wroteHeader {
		// An error for the error routes, or nothing written (Caddy then
		// writes an empty 200 from this map).
		h.removeControlHeaders(w.Header())
	}
	return err
}

// writers are a request's two response writers: the guard around
// everything, and the one the next handler writes to (see wrapResponse).
type writers struct {
	guard    guardWriter
	upstream responseWriter
}

// guardWriter removes the headers with the prefix just before the
// response headers go out.
type guardWriter struct {
	caddyhttp.ResponseWriterWrapper
	h           *Handler
	wroteHeader bool
}

// WriteHeader implements http.ResponseWriter.
func (g *guardWriter) WriteHeader(status int) {
	if !g.wroteHeader {
		g.h.removeControlHeaders(g.Header())
		// After an informational response (103), more headers follow.
		g.wroteHeader = status >= 200 || status == http.StatusSwitchingProtocols
	}
	g.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (g *guardWriter) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom, so that sendfile still works.
func (g *guardWriter) ReadFrom(r io.Reader) (int64, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.NewResponseController flush through this writer
// without the headers skipping it.
func (g *guardWriter) FlushError() error {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(g.ResponseWriterWrapper.ResponseWriter).Flush()
}
