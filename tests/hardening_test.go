package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestPublicNeedsAPlainPath: a path that Caddy's matchers read as public
// once cleaned, but that an upstream routing on the raw path reads as
// another place, is never public (SPEC §2). Every spelling of the class:
// dot segments raw and encoded, encoded '/', '\' raw and encoded, ";params",
// double encoding.
func TestPublicNeedsAPlainPath(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	tricks := []string{
		"/admin/../public/x",
		"/public/../admin",
		"/public/./../admin",
		"/admin/%2e%2e/public/x",
		"/admin/%2E%2E/public/x",
		"/admin/.%2e/public/x",
		"/admin/%2e./public/x",
		"/public/%2e%2e/admin",
		"/public/..%2fadmin",
		"/public/..%2Fadmin",
		"/public%2f..%2fadmin",
		"/public/..%5cadmin",
		"/public/..%5Cadmin",
		"/public/..\\admin",
		"/public\\..\\admin",
		"/public/..;/admin",
		"/public/.;x/admin",
		"/public/%252e%252e/admin",
		"/public/%252fadmin",
		"/public/./x",
		"/public/%00/x",
	}
	for _, path := range tricks {
		t.Run(path, func(t *testing.T) {
			before := up.Requests.Load()
			r := rawGet(t, c.Site, path)
			if r.StatusCode != 401 && r.StatusCode != 400 {
				t.Errorf("anonymous GET %s: %d %s; want 401 (not public)", path, r.StatusCode, r.Body)
			}
			if up.Requests.Load() != before {
				t.Errorf("anonymous GET %s reached the upstream", path)
			}
		})
	}
	// The public path itself still works, and a logged-in user's odd paths
	// go on to the upstream, which decides what they mean.
	if r := rawGet(t, c.Site, "/public/x"); r.StatusCode != 200 {
		t.Fatalf("GET /public/x: %d %s", r.StatusCode, r.Body)
	}
	if r := rawGet(t, c.Site, "/public/a%20b"); r.StatusCode != 200 {
		t.Fatalf("GET /public/a%%20b: %d %s", r.StatusCode, r.Body)
	}
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cookie := "Cookie: caddy_session=" + cl.SessionCookie()
	if r := rawGet(t, c.Site, "/admin/../public/x", cookie); r.StatusCode != 200 {
		t.Fatalf("logged in, GET /admin/../public/x: %d %s", r.StatusCode, r.Body)
	}
}

// TestConnectionHeaderCannotDropTrustedHeaders: a client that names trusted
// headers in Connection must not make Caddy drop them as hop-by-hop.
func TestConnectionHeaderCannotDropTrustedHeaders(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "upstream_control on")
	cl := NewClient(t, c.Site)
	cl.MustLogin("bob", bobPassword)
	cl.Get("/private?h=X-Session-Set-Mfa:pending")
	cookie := "Cookie: caddy_session=" + cl.SessionCookie()
	for _, conn := range []string{
		"Connection: X-Session-User, Remote-User, X-Session-Data-Mfa",
		"Connection: x_session_user, remote_user, x-webauth-user, X-Session-Data-Mfa",
		"Connection: keep-alive, X-Session-User\r\nConnection: X-Webauth-User, x-session-data-mfa",
	} {
		r := rawGet(t, c.Site, "/private", cookie, conn)
		var e Echo
		if r.StatusCode != 200 || json.Unmarshal(r.Body, &e) != nil {
			t.Fatalf("%s: %d %s", conn, r.StatusCode, r.Body)
		}
		for _, name := range []string{"X-Session-User", "Remote-User", "X-Webauth-User"} {
			if got := e.Headers[name]; len(got) != 1 || got[0] != "bob" {
				t.Errorf("%s: the upstream got %s = %q, want bob", conn, name, got)
			}
		}
		if got := e.Headers["X-Session-Data-Mfa"]; len(got) != 1 || got[0] != "pending" {
			t.Errorf("%s: the upstream got X-Session-Data-Mfa = %q, want pending", conn, got)
		}
	}
}

// TestTrailersCarryNoTrustedHeaders: request trailers cannot carry a
// trusted header to the upstream, and response trailers with the prefix
// never reach the client.
func TestTrailersCarryNoTrustedHeaders(t *testing.T) {
	up := StartUpstream(t)
	up.Hooks["/trailers"] = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "trailers": r.Trailer})
	}
	up.Hooks["/respond-trailers"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Session-Set-Role, X-Checksum")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Session-Set-Role", "admin")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Session-Login", "mallory")
		w.Header().Set(http.TrailerPrefix+"X-Other", "kept")
	}
	c := StartCaddy(t, up.Addr, `
[[.Site]] {
	session {
		store memory
		user bob [[.Extra.bob]]
		user_header Remote-User
		public {
			path /trailers /respond-trailers
		}
		upstream_control on
	}
	reverse_proxy [[.Upstream]]
}
`, WithExtra("bob", bobHash))

	for _, who := range []string{"anonymous", "bob"} {
		t.Run(who, func(t *testing.T) {
			cookie := ""
			if who == "bob" {
				cl := NewClient(t, c.Site)
				cl.MustLogin("bob", bobPassword)
				cookie = "Cookie: caddy_session=" + cl.SessionCookie() + "\r\n"
			}
			req := "POST /trailers HTTP/1.1\r\nHost: " + strings.TrimPrefix(c.Site, "http://") + "\r\nConnection: close\r\n" + cookie +
				"Transfer-Encoding: chunked\r\nTrailer: X-Session-User, Remote-User, X-Checksum\r\n\r\n" +
				"5\r\nhello\r\n0\r\nX-Session-User: mallory\r\nRemote-User: mallory\r\nx_session_data_role: admin\r\nX-Checksum: abc\r\n\r\n"
			r := rawRequest(t, c.Site, req)
			var got struct{ Headers, Trailers http.Header }
			if r.StatusCode != 200 || json.Unmarshal(r.Body, &got) != nil {
				t.Fatalf("%d %s %v", r.StatusCode, r.Body, r.Header)
			}
			for _, h := range []http.Header{got.Headers, got.Trailers} {
				for name, values := range h {
					if strings.Contains(fmt.Sprint(values), "mallory") || strings.Contains(fmt.Sprint(values), "admin") {
						t.Errorf("the upstream got the client's %s: %q", name, values)
					}
				}
			}
			if got.Trailers.Get("X-Checksum") != "abc" {
				t.Errorf("an ordinary trailer was lost: %v", got.Trailers)
			}
			if who == "bob" && got.Headers.Get("X-Session-User") != "bob" {
				t.Errorf("X-Session-User = %q, want bob", got.Headers.Get("X-Session-User"))
			}
		})
	}

	t.Run("response trailers", func(t *testing.T) {
		resp, err := http.Get(c.Site + "/respond-trailers")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, h := range []http.Header{resp.Header, resp.Trailer} {
			for name := range h {
				if strings.HasPrefix(strings.ToLower(name), "x-session-") {
					t.Errorf("the client got %s", name)
				}
			}
		}
		if strings.Contains(strings.ToLower(resp.Header.Get("Trailer")), "x-session") {
			t.Errorf("the client was told of the trailer %q", resp.Header.Get("Trailer"))
		}
		if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Other") != "kept" {
			t.Errorf("ordinary trailers were lost: %v", resp.Trailer)
		}
		if r := NewClient(t, c.Site).Get("/respond-trailers"); r.Header.Get("Set-Cookie") != "" {
			t.Errorf("a trailer changed the session: Set-Cookie %q", r.Header.Get("Set-Cookie"))
		}
	})
}

// TestPrefixedCookieNamesAreAlwaysSecure: browsers refuse a __Host- or
// __Secure- cookie without Secure, so such a cookie always has it, even
// over plain HTTP behind a TLS-terminating proxy.
func TestPrefixedCookieNamesAreAlwaysSecure(t *testing.T) {
	up := StartUpstream(t)
	for _, name := range []string{"__Host-sid", "__Secure-sid"} {
		t.Run(name, func(t *testing.T) {
			c := startSite(t, up, "memory", "cookie {\n\t\t\tname "+name+"\n\t\t}")
			cl := NewClient(t, c.Site)
			r := cl.LoginJSON("alice", alicePassword)
			sc := r.Header.Get("Set-Cookie")
			if r.StatusCode != 200 || !strings.HasPrefix(sc, name+"=") || !strings.Contains(sc, "; Secure") {
				t.Fatalf("%d: Set-Cookie %q; want %s with Secure", r.StatusCode, sc, name)
			}
		})
	}
	t.Run("auto behind a trusted TLS proxy", func(t *testing.T) {
		c := startSite(t, up, "memory", "", WithGlobals("servers {\n\t\ttrusted_proxies static 127.0.0.0/8\n\t}"))
		cl := NewClient(t, c.Site)
		if sc := cl.LoginJSON("alice", alicePassword, "X-Forwarded-Proto: https").Header.Get("Set-Cookie"); !strings.Contains(sc, "; Secure") {
			t.Errorf("Set-Cookie %q lacks Secure behind a trusted proxy that says https", sc)
		}
		if sc := NewClient(t, c.Site).LoginJSON("alice", alicePassword).Header.Get("Set-Cookie"); strings.Contains(sc, "; Secure") {
			t.Errorf("Set-Cookie %q is Secure over plain HTTP", sc)
		}
	})
	t.Run("auto ignores an untrusted X-Forwarded-Proto", func(t *testing.T) {
		c := startSite(t, up, "memory", "")
		if sc := NewClient(t, c.Site).LoginJSON("alice", alicePassword, "X-Forwarded-Proto: https").Header.Get("Set-Cookie"); strings.Contains(sc, "; Secure") {
			t.Errorf("Set-Cookie %q: an untrusted client made the cookie Secure", sc)
		}
	})
}

// TestPlaceholdersWithoutValueAreEmpty: `{http.session.user}` and friends
// are the empty string for an anonymous visitor or a missing key, never
// their own literal text, which an app would take for a user name.
func TestPlaceholdersWithoutValueAreEmpty(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]]
		public {
			path /public/*
		}
	}
	reverse_proxy [[.Upstream]] {
		header_up X-Forwarded-User {http.session.user}
		header_up X-Role "r={http.session.data.role}"
		header_up X-Id "id={http.auth.user.id}"
	}
}
`, WithExtra("alice", aliceHash))
	check := func(e Echo, wantUser string) {
		t.Helper()
		for name, values := range e.Headers {
			if strings.Contains(fmt.Sprint(values), "{") {
				t.Errorf("the upstream got %s = %q", name, values)
			}
		}
		if got := e.Headers["X-Forwarded-User"]; wantUser != "" && (len(got) != 1 || got[0] != wantUser) || wantUser == "" && len(got) > 0 && got[0] != "" {
			t.Errorf("X-Forwarded-User = %q, want %q", got, wantUser)
		}
		if got := e.Headers["X-Role"]; len(got) != 1 || got[0] != "r=" {
			t.Errorf("X-Role = %q, want r=", got)
		}
		if got := e.Headers["X-Id"]; len(got) != 1 || got[0] != "id="+wantUser {
			t.Errorf("X-Id = %q, want id=%s", got, wantUser)
		}
	}
	cl := NewClient(t, c.Site)
	check(cl.Get("/public/x").Echo(t), "")
	cl.MustLogin("alice", alicePassword)
	check(cl.Get("/private").Echo(t), "alice")
}

// TestHTTP2ClientsForgeNothing: over HTTP/2 (h2c here), header names are
// lower case, there is no Connection header, and trailers come in a frame
// of their own; none of it carries a trusted header to the upstream.
func TestHTTP2ClientsForgeNothing(t *testing.T) {
	up := StartUpstream(t)
	up.Hooks["/public/trailers"] = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"proto": r.Proto, "headers": r.Header, "trailers": r.Trailer})
	}
	c := startSite(t, up, "memory", "", WithGlobals("servers {\n\t\tprotocols h1 h2c\n\t}"))
	h2 := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	cl := NewClient(t, c.Site)
	cl.MustLogin("bob", bobPassword)
	for _, who := range []string{"anonymous", "bob"} {
		t.Run(who, func(t *testing.T) {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", c.Site+"/public/trailers", pr)
			for _, name := range spoofedHeaders {
				req.Header[strings.ToLower(name)] = []string{"mallory"}
			}
			if who == "bob" {
				req.Header.Set("Cookie", "caddy_session="+cl.SessionCookie())
			}
			req.Trailer = http.Header{"X-Session-User": nil, "Remote-User": nil, "X-Checksum": nil}
			go func() {
				io.WriteString(pw, "hello")
				req.Trailer.Set("X-Session-User", "mallory")
				req.Trailer.Set("Remote-User", "mallory")
				req.Trailer.Set("X-Checksum", "abc")
				pw.Close()
			}()
			resp, err := h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Proto             string
				Headers, Trailers http.Header
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.ProtoMajor != 2 {
				t.Fatalf("%s %d: %v", resp.Proto, resp.StatusCode, err)
			}
			for _, h := range []http.Header{got.Headers, got.Trailers} {
				for name, values := range h {
					if strings.Contains(fmt.Sprint(values), "mallory") {
						t.Errorf("the upstream got the client's %s: %q", name, values)
					}
				}
			}
			if got.Trailers.Get("X-Checksum") != "abc" {
				t.Errorf("an ordinary trailer was lost: %v", got.Trailers)
			}
			want := ""
			if who == "bob" {
				want = "bob"
			}
			if got.Headers.Get("X-Session-User") != want || got.Headers.Get("Remote-User") != want {
				t.Errorf("X-Session-User %q, Remote-User %q; want %q", got.Headers.Get("X-Session-User"), got.Headers.Get("Remote-User"), want)
			}
		})
	}
}
