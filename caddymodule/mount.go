package caddymodule

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/pages"
)

// findMount is the path prefix that Caddy stripped from the request
// before it reached the handler, as `handle_path /app/*` or
// `uri strip_prefix /app` do: "/app", in the escaped form the browser
// uses, or "" when nothing was stripped. The handler's own URLs (the login
// page, the forms' actions, the default landing page) are the paths the
// browser sees, so they keep this prefix in front.
//
// It is the original request's path, cleaned as strip_prefix cleans it,
// less the current path, and only when that is a true prefix strip: the
// original path ends with the current one and what is left is a plain
// local path of whole segments. Anything else (another kind of rewrite,
// a path a client shaped to look like a host) is no mount: "". The client
// controls the original path, so the prefix is checked as strictly as a
// redirect target, and whatever is built from it goes through
// the endpoints' redirect rules too (endpoints.LocalPath).
//
// sure is false when the mount cannot be known: Caddy's path matchers
// route on the decoded, cleaned path, strip_prefix cuts the escaped one,
// and the two disagree on a path that is not plain (see authz.PlainPath).
// "/x/..%2fwiki/y" is routed to `handle_path /wiki/*` and not stripped;
// "/wiki%2fy" is stripped to "%2fy". The handler there cannot tell itself
// from one at the site's root: it must not use the mount (see
// refuseUnknownMount). The endpoints are only served when sure is true
// (serve checks it first).
func findMount(r *http.Request) (mount string, sure bool) {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return "", true
	}
	mount, stripped := strippedPrefix(orig.URL.EscapedPath(), r.URL.EscapedPath())
	if stripped {
		return mount, mount != ""
	}
	// Nothing stripped (or another rewrite): no mount, if Caddy's
	// matchers and strip_prefix read the path alike.
	return "", authz.PlainPath(orig.URL)
}

// strippedPrefix is findMount on escaped paths: the prefix of the
// original path origPath that was stripped to give current. stripped
// reports whether a prefix was cut at all; prefix is "" when it was not,
// or when what was cut is not a mount to trust (not whole segments, not
// a plain local path: "/wiki%2fy" cut to "%2fy").
func strippedPrefix(origPath, current string) (prefix string, stripped bool) {
	if origPath == current {
		return "", false
	}
	cleaned := caddyhttp.CleanPath(origPath, true)
	prefix, ok := strings.CutSuffix(cleaned, current)
	if !ok || prefix == "" {
		return "", false // another rewrite, or only cleaned
	}
	if current == "" || current[0] != '/' || !validMount(prefix) {
		return "", true
	}
	return prefix, true
}

// refuseUnknownMount answers a request whose mount the handler needs and
// cannot know (see findMount): 400. A browser never sends such a path
// (it resolves dot segments and does not encode the '/' of a path it
// navigates to); a link or a client that does gets neither the handler's
// pages (whose forms would post to another app's endpoints) nor a login
// redirect nor an assertion that would name another app.
func (h *Handler) refuseUnknownMount(w http.ResponseWriter, r *http.Request, what string) error {
	orig := r.URL.EscapedPath()
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && o.URL != nil {
		orig = o.URL.EscapedPath()
	}
	h.logger.Warn("request refused: its path does not tell under which path this handler is mounted",
		zapRemoteIP(r), zap.String("original_path", orig), zap.String("path", r.URL.EscapedPath()), zap.String("for", what))
	w.Header().Set("Cache-Control", "no-store")
	return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "ambiguous path: dot segments, or an encoded '/' or '\\'"})
}

// validMount reports whether prefix (escaped) can stand in front of a
// local path: "/" and at least one segment, no empty, "." or ".."
// segment however encoded, no encoded '/' or '\', no '\', '?', '#' or
// control character, and valid percent-encoding.
func validMount(prefix string) bool {
	if len(prefix) < 2 || prefix[0] != '/' || len(prefix) > 1024 {
		return false
	}
	if strings.ContainsAny(prefix, "?#\\") || strings.Contains(prefix, "%2f") || strings.Contains(prefix, "%2F") || strings.Contains(prefix, "%5c") || strings.Contains(prefix, "%5C") {
		return false
	}
	decoded, err := url.PathUnescape(prefix)
	if err != nil {
		return false
	}
	if strings.ContainsFunc(decoded, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	for seg := range strings.SplitSeq(decoded[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
