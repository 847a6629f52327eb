package caddymodule

import (
	"context"
	"maps"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/upstream"
)

// The auth endpoint's Caddy side (see endpoints.Auth): whether the
// caller is a trusted proxy, the original request as Caddy's matchers
// need it, the judge of the request path, and the trusted headers as
// response headers.

// authEndpoint is the endpoints.Auth of the handler; nil when
// auth_endpoint is off.
func (h *Handler) authEndpoint() *endpoints.Auth {
	if !h.AuthEndpoint {
		return nil
	}
	return &endpoints.Auth{
		Trusted: trustedProxy,
		Prepare: prepareOriginal,
		Judge: func(orig *http.Request, s *session.Session, storeErr error) (endpoints.Verdict, error) {
			var rd authz.Readings
			return h.judge(orig, s, storeErr, &rd)
		},
		Pass: h.authPass,
	}
}

// trustedProxy reports whether Caddy found r to come from one of the
// server's trusted_proxies.
func trustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// prepareOriginal makes orig a request as Caddy's matchers need it: its
// own variables (a copy of the auth request's: client IP, trusted
// proxy), itself as its original request (no rewrite happened to it, so
// no mount), and a replacer of its own, whose {http.request.*}
// placeholders are orig's, not the auth request's.
func prepareOriginal(orig *http.Request) *http.Request {
	ctx := orig.Context()
	vars, _ := ctx.Value(caddyhttp.VarsCtxKey).(map[string]any)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, maps.Clone(vars))
	o := *orig
	ou := *orig.URL
	o.URL = &ou
	orig = orig.WithContext(context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, o))
	caddyhttp.NewTestReplacer(orig) // despite its name: binds a new replacer to orig, in orig's context
	return orig
}

// authPass writes the auth endpoint's 200: the trusted headers of s for
// orig (none for an anonymous visitor of a public request).
func (h *Handler) authPass(w http.ResponseWriter, orig *http.Request, s *session.Session) {
	set := func(hdr http.Header) {
		if s == nil || s.Rec.User == "" {
			return
		}
		h.fwd.Forward(hdr, viewOf(s))
		h.putAssertion(hdr, orig, s)
	}
	if g, ok := w.(*upstream.Guard); ok {
		g.WriteTrusted(http.StatusOK, set)
		return
	}
	// Not through ServeHTTP (a test of the endpoint alone).
	h.strip.RemoveControl(w.Header())
	h.strip.RemoveFrom(w.Header())
	set(w.Header())
	w.WriteHeader(http.StatusOK)
}
