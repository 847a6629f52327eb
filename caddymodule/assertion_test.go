package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/assertion"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

func testAsserter(t testing.TB, h *Handler) {
	h.Assertion = &Assertion{}
	h.HeaderPrefix = DefaultHeaderPrefix
	k := assertion.NewKeyring(&certmagic.FileStorage{Path: t.TempDir()}, "", 0, zap.NewNop())
	if err := k.Sync(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	h.assert = &asserter{header: "X-Session-Assertion", minter: assertion.NewMinter(k, "", nil, DefaultAssertionLifetime, h.PathPrefix), ring: k}
}

// TestAssertionCache: a session's token is reused, and signed again when
// its groups change or for another host. (That it is signed again near its
// end is assertion.TestMinterCache's.)
func TestAssertionCache(t *testing.T) {
	h := newTestHandler(t, nil)
	testAsserter(t, h)
	s := &session.Session{Rec: sessionstore.Record{User: "alice", Created: time.Now(), Site: "example.com"}}
	token := func(host string) string {
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		h.forwardAssertion(r, s)
		return r.Header.Get("X-Session-Assertion")
	}
	first := token("example.com")
	if first == "" || token("example.com") != first {
		t.Fatal("the token was not reused")
	}
	if token("other.example") == first {
		t.Fatal("another host got the same token (its aud is another)")
	}
	s.Groups = newGroupSet([]string{"admin"})
	withGroups := token("example.com")
	if withGroups == first {
		t.Fatal("new groups, same token")
	}
	jws, err := jose.ParseSigned(withGroups, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Issuer   string   `json:"iss"`
		Audience any      `json:"aud"`
		Subject  string   `json:"sub"`
		Groups   []string `json:"groups"`
		IssuedAt int64    `json:"iat"`
		Expiry   int64    `json:"exp"`
	}
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	if claims.Subject != "alice" || claims.Audience != "example.com" || claims.Issuer != "http://example.com/.session" ||
		len(claims.Groups) != 1 || claims.Groups[0] != "admin" || claims.Expiry-claims.IssuedAt != 300 {
		t.Errorf("claims %+v", claims)
	}
	// Anonymous: none.
	anon := &session.Session{Rec: sessionstore.Record{Data: map[string]string{"a": "b"}}}
	r := httptest.NewRequest("GET", "/", nil)
	h.forwardAssertion(r, anon)
	if _, ok := r.Header["X-Session-Assertion"]; ok {
		t.Fatal("an anonymous session got a token")
	}
}

func TestAssertionCaddyfile(t *testing.T) {
	if _, err := adapt(t, "assertion"); err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, "assertion {\nheader X-Jwt\nissuer https://id.example\naudience app api\nlifetime 2m\nrotate_every 720h\n}")
	if err != nil || !strings.Contains(out, `"assertion":{"audience":["app","api"],"header":"X-Jwt","issuer":"https://id.example","lifetime":120000000000,"rotate_every":2592000000000000}`) {
		t.Fatalf("%v %s", err, out)
	}
	for body, want := range map[string]string{
		"assertion on":                             "takes a block or nothing",
		"assertion {\nlifetime 2h\n}":              "want 30s to 1h0m0s",
		"assertion {\nrotate_every 10s\n}":         "at least 1m0s",
		"assertion {\nheader \"X Y\"\n}":           "not a valid header name",
		"assertion {\nfrob 1\n}":                   `unknown option "frob"`,
		"assertion {\nlifetime 1m\nlifetime 2m\n}": "lifetime given twice",
		"assertion\nassertion":                     "assertion given twice",
	} {
		if _, err := adapt(t, body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// BenchmarkServeHTTPAssertion is BenchmarkServeHTTP/memory with the
// assertion on: what a cached token adds per request, and under a mount
// (handle_path /wiki/*), whose prefix goes in the default iss and aud.
func BenchmarkServeHTTPAssertion(b *testing.B) {
	for _, name := range []string{"off", "on", "on mounted"} {
		on := name != "off"
		b.Run(name, func(b *testing.B) {
			h := newTestHandler(b, sessionstore.NewMemory(0))
			if on {
				testAsserter(b, h)
			}
			cookie := loggedIn(b, h, "alice")
			w := httptest.NewRecorder()
			template := http.Header{"Cookie": {cookie}, "Accept": {"text/html"}, "User-Agent": {"bench"}}
			r := httptest.NewRequest("GET", "/app/page?x=1", nil)
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			if name == "on mounted" {
				orig := *r.URL
				orig.Path = "/wiki" + orig.Path
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, http.Request{Method: "GET", URL: &orig}))
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Header = template.Clone()
				if err := h.ServeHTTP(w, r, okHandler); err != nil {
					b.Fatal(err)
				}
				if on && r.Header.Get("X-Session-Assertion") == "" {
					b.Fatal("no token")
				}
			}
		})
	}
}
