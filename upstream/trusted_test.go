package upstream

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/edgesession/edgesession/sessionstore"
)

func TestHeaderMatcher(t *testing.T) {
	m := NewTrusted("X-Session-", []string{"Remote-User", "X_Webauth_User"})
	for name, want := range map[string]bool{
		"X-Session-User": true, "x-session-user": true, "X_SESSION_USER": true, "X-Session-": true,
		"X-Session-Data-Cart": true, "Remote-User": true, "remote_user": true, "X-Webauth-User": true,
		"X-Sessionx": false, "X-Session": false, "Remote-User2": false, "Remote-Use": false, "Accept": false, "": false,
	} {
		if got := m.Matches(name); got != want {
			t.Errorf("matches(%q) = %v, want %v", name, got, want)
		}
	}
	h := http.Header{"X_session_user": {"x"}, "Accept": {"a"}, "Remote-User": {"r"}}
	m.RemoveFrom(h)
	if len(h) != 1 || h.Get("Accept") != "a" {
		t.Errorf("removeFrom left %v", h)
	}
}

func TestDataValidation(t *testing.T) {
	for k, want := range map[string]bool{"cart": true, "a-1": true, "": false, "Cart": false, "a_b": false, "a.b": false, strings.Repeat("k", 64): true, strings.Repeat("k", 65): false} {
		if sessionstore.ValidDataKey(k) != want {
			t.Errorf("sessionstore.ValidDataKey(%q) != %v", k, want)
		}
	}
	for v, want := range map[string]bool{"": true, "héllo ✓\tx": true, "a\r\nb": false, "a\x00": false, "\xff": false, "a\x7f": false, strings.Repeat("v", sessionstore.MaxDataValue+1): false} {
		if sessionstore.ValidDataValue(v) != want {
			t.Errorf("sessionstore.ValidDataValue(%q) != %v", v, want)
		}
	}
}

func TestCanonicalKeyTail(t *testing.T) {
	for _, k := range []string{"cart", "a-b", "9-lives", "x--y", "-lead", "trail-", "abc-def-ghi"} {
		if got, want := canonicalKeyTail(k), http.CanonicalHeaderKey(k); got != want {
			t.Errorf("canonicalKeyTail(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestStripPathOverrideHeaders: X-Original-URL and X-Rewrite-URL (Zend
// Framework 1 and old Symfony route on them) never reach the upstream, in
// any spelling a CGI reader takes for them, in the header or a trailer.
func TestStripPathOverrideHeaders(t *testing.T) {
	m := NewTrusted("X-Session-", nil)
	r := httptest.NewRequest("GET", "/public/x.css", nil)
	r.Header = http.Header{
		"X-Original-Url": {"/admin/keys"}, "X-Rewrite-Url": {"/admin/keys"}, "X_original_url": {"/admin/keys"},
		"x-rewrite.url": {"/admin/keys"}, "X-ORIGINAL-URL": {"/admin/keys"},
		"Accept": {"text/css"}, "X-Original-Urls": {"kept"}, "X-Original": {"kept"},
	}
	r.Trailer = http.Header{"X-Original-Url": {"/admin/keys"}, "Etag": {"x"}}
	m.StripRequest(r)
	if want := (http.Header{"Accept": {"text/css"}, "X-Original-Urls": {"kept"}, "X-Original": {"kept"}}); !reflect.DeepEqual(r.Header, want) {
		t.Errorf("header after strip: %v, want %v", r.Header, want)
	}
	if len(r.Trailer) != 1 || r.Trailer.Get("Etag") != "x" {
		t.Errorf("trailer after strip: %v", r.Trailer)
	}
}
