package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/upstream"
)

// ServeHTTP implements caddyhttp.MiddlewareHandler. No response header
// with the prefix leaves through this handler, on any path:
//   - the next handler's response goes through upstream.Writer, which
//     applies upstream control and removes them as the headers go out;
//   - the responses the handler writes itself (its endpoints, 401, 302,
//     503) go through upstream.Guard, which removes them without applying
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
	ws := &writers{h: h}
	ws.guard.Reset(w, &h.strip)
	err := h.serve(&ws.guard, r, next, ws)
	if !ws.guard.WroteHeader() {
		// An error for the error routes, or nothing written (Caddy then
		// writes an empty 200 from this map).
		h.strip.RemoveControl(w.Header())
	}
	return err
}

// writers are a request's two response writers: the guard around
// everything, and the one the next handler writes to (see wrapResponse);
// and, for the latter, the session they were made for: writers is its
// upstream.Controller.
type writers struct {
	guard    upstream.Guard
	upstream upstream.Writer
	h        *Handler
	r        *http.Request
	s        *session.Session
}

// wrapResponse makes ws.upstream the writer of the next handler's
// response to w, for session s (nil for none). control is whether the
// upstream's control headers are applied.
func (h *Handler) wrapResponse(ws *writers, w http.ResponseWriter, r *http.Request, s *session.Session, control bool) {
	ws.r, ws.s = r, s
	ws.upstream.Reset(w, &h.strip, ws, control)
}

// ApplyControl implements upstream.Controller.
func (ws *writers) ApplyControl(w http.ResponseWriter) {
	ws.h.applyUpstreamControl(w, ws.r, ws.s)
}

var _ upstream.Controller = (*writers)(nil)
