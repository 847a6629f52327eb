package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// newTestHandler is a provisioned-enough Handler over store (nil: the
// cookie store), for unit tests and benchmarks of the request path.
func newTestHandler(t testing.TB, store sessionstore.Store) *Handler {
	t.Helper()
	h := &Handler{}
	h.setDefaults()
	h.logger = zap.NewNop()
	h.metrics = registerMetrics(nil, h.logger)
	if store != nil {
		h.store = instrument(store, h.metrics)
	}
	codec, err := cookie.NewCodec(h.Cookie.Name, "", [][]byte{[]byte(strings.Repeat("k", 32))}, h.lifetime)
	if err != nil {
		t.Fatal(err)
	}
	h.codec = codec
	h.UserHeaders = []string{"Remote-User"}
	h.prepareHeaders()
	// Sessions are logged in as an upstream would log them in.
	h.sources = map[string]identity.Source{identity.Upstream: identity.UpstreamSource{}}
	h.setupSessions()
	h.setupEndpoints()
	return h
}

// loggedIn creates a session for user through the handler and returns the
// Cookie header that carries it.
func loggedIn(t testing.TB, h *Handler, user string) string {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := h.sessions.Login(context.Background(), w, r, nil, identity.Identity{User: user, Source: identity.Upstream}, map[string]string{"cart": "apple;pear", "role": "admin"}); err != nil {
		t.Fatal(err)
	}
	return strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
}

var okHandler = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
})

func benchStores(b *testing.B) map[string]func() sessionstore.Store {
	return map[string]func() sessionstore.Store{
		"memory": func() sessionstore.Store {
			m := sessionstore.NewMemory(0)
			b.Cleanup(func() { m.Close() })
			return m
		},
		"bolt": func() sessionstore.Store {
			s, err := sessionstore.OpenBolt(filepath.Join(b.TempDir(), "s.db"), sessionstore.BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"cookie": func() sessionstore.Store { return nil },
	}
}

// benchRequests returns a function that makes each request of a benchmark
// as Caddy would hand it to the handler: headers reset from a template
// (the handler changes them), and a fresh replacer (Caddy makes one per
// request; the handler adds a provider to it) with a vars map.
// BenchmarkRequestSetup measures this, to subtract.
func benchRequests(cookie string) func() *http.Request {
	template := http.Header{
		"Cookie": {cookie + "; theme=dark"}, "Accept": {"text/html"}, "X-Session-User": {"mallory"},
		"User-Agent": {"bench"}, "Accept-Encoding": {"gzip"},
	}
	r := httptest.NewRequest("GET", "/app/page?x=1", nil)
	ctx := r.Context()
	return func() *http.Request {
		c := context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer())
		// Caddy's server has set these by the time a handler runs.
		c = context.WithValue(c, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1", caddyhttp.TrustedProxyVarKey: false})
		r := r.WithContext(c)
		r.Header = template.Clone()
		return r
	}
}

// BenchmarkServeHTTP is the whole handler on a request with a valid
// session: strip, decode, find, forward, wrap; the next handler does
// nothing. Each request is made as benchRequests says.
func BenchmarkServeHTTP(b *testing.B) {
	for name, open := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			h := newTestHandler(b, open())
			cookie := loggedIn(b, h, "alice")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := httptest.NewRecorder()
				next := benchRequests(cookie)
				for pb.Next() {
					r := next()
					if err := h.ServeHTTP(w, r, okHandler); err != nil {
						b.Fatal(err)
					}
					if r.Header.Get("X-Session-User") != "alice" {
						b.Fatal("no session")
					}
				}
			})
		})
	}
	// With the rules of testRules and `public { path /public/* *.css }`:
	// the request (GET /app/page) is judged by every rule, in every
	// reading the upstream may make of it.
	b.Run("rules and public", func(b *testing.B) {
		h := newTestHandler(b, sessionstore.NewMemory(0))
		h.rules = testRules(b)
		h.public = caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/public/*", "*.css"}}}
		cookie := loggedIn(b, h, "alice")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := httptest.NewRecorder()
			next := benchRequests(cookie)
			for pb.Next() {
				r := next()
				if err := h.ServeHTTP(w, r, okHandler); err != nil {
					b.Fatal(err)
				}
				if r.Header.Get("X-Session-User") != "alice" {
					b.Fatal("no session")
				}
			}
		})
	})
	// The same with the first rule saying mfa (`allow group admin {
	// path /admin/*; mfa }`), for alice in group admin: with a second
	// factor (every rule lets her in: no reading is judged; her amr is
	// forwarded) and with a password only, where GET /admin/x is judged
	// in every reading and answered 401.
	mfaRules := func(b *testing.B, stepUp bool) (*Handler, func(amr ...string) string) {
		h := newTestHandler(b, sessionstore.NewMemory(0))
		h.rules = testRules(b)
		h.rules[0].MFA = stepUp
		h.public = caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/public/*", "*.css"}}}
		return h, func(amr ...string) string {
			w := httptest.NewRecorder()
			id := identity.Identity{User: "alice", Source: identity.Upstream, Groups: []string{"admin"}, Amr: amr}
			if _, err := h.sessions.Login(context.Background(), w, httptest.NewRequest("GET", "/", nil), nil, id, map[string]string{"cart": "apple;pear", "role": "admin"}); err != nil {
				b.Fatal(err)
			}
			return strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
		}
	}
	b.Run("rules, admin session (to compare)", func(b *testing.B) {
		h, login := mfaRules(b, false)
		cookie := login()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := httptest.NewRecorder()
			next := benchRequests(cookie)
			for pb.Next() {
				r := next()
				if err := h.ServeHTTP(w, r, okHandler); err != nil {
					b.Fatal(err)
				}
				if r.Header.Get("X-Session-User") != "alice" {
					b.Fatal("no session")
				}
			}
		})
	})
	b.Run("rules with mfa, session with mfa", func(b *testing.B) {
		h, login := mfaRules(b, true)
		cookie := login("pwd", "otp", "mfa")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := httptest.NewRecorder()
			next := benchRequests(cookie)
			for pb.Next() {
				r := next()
				if err := h.ServeHTTP(w, r, okHandler); err != nil {
					b.Fatal(err)
				}
				if r.Header.Get("X-Session-Amr") != "pwd otp mfa" {
					b.Fatal("no amr")
				}
			}
		})
	})
	b.Run("rules with mfa, step-up (401)", func(b *testing.B) {
		h, login := mfaRules(b, true)
		h.pages, _ = pages.Load("")
		h.setupEndpoints()
		cookie := login()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			next := benchRequests(cookie)
			for pb.Next() {
				r := next()
				r.URL.Path, r.RequestURI = "/admin/x", "/admin/x"
				r.Header["Accept"] = []string{"application/json"}
				w := httptest.NewRecorder()
				if err := h.ServeHTTP(w, r, okHandler); err != nil || w.Code != 401 {
					b.Fatal(w.Code, err)
				}
			}
		})
	})
	b.Run("no cookie (401)", func(b *testing.B) {
		h := newTestHandler(b, sessionstore.NewMemory(0))
		r := httptest.NewRequest("GET", "/app", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r, okHandler)
			if w.Code != 401 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkRequestSetup is what BenchmarkServeHTTP spends making each
// request (benchRequests), to subtract from it.
func BenchmarkRequestSetup(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		next := benchRequests("caddy_session=0123456789012345678901234567890123456789")
		for pb.Next() {
			_ = next()
		}
	})
}

func BenchmarkCookieDecode(b *testing.B) {
	h := newTestHandler(b, sessionstore.NewMemory(0))
	value := strings.TrimPrefix(loggedIn(b, h, "alice"), "caddy_session=")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.codec.Decode(value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.codec.Verify(value); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStripAndForward is the request path's header work. With
// "mapped headers", three more names are stripped and forwarded (the user
// and two data keys under names the app trusts).
func BenchmarkStripAndForward(b *testing.B) {
	for _, mapped := range []bool{false, true} {
		name := "default"
		if mapped {
			name = "mapped headers"
		}
		b.Run(name, func(b *testing.B) {
			h := newTestHandler(b, nil)
			s := &session.Session{Rec: sessionstore.Record{User: "alice", Data: map[string]string{"cart": "apple", "role": "admin"}}}
			if mapped {
				h.Headers = map[string]string{"User-Name": "user", "X-Forwarded-Email": "data.email", "X-Webauth-Role": "data.role"}
				h.prepareHeaders()
				s.Rec.Data["email"] = "alice@example.com"
			}
			base := http.Header{
				"Accept": {"text/html"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench"},
				"Cookie": {"caddy_session=xyz; theme=dark"}, "X-Session-User": {"mallory"}, "X_session_data_role": {"root"},
				"Remote-User": {"mallory"}, "Referer": {"https://example.com/"}, "Accept-Language": {"en"},
			}
			r := httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				r.Header = base.Clone()
				h.strip.RemoveFrom(r.Header)
				h.forward(r, s)
				cookie.Remove(r.Header, h.Cookie.Name)
			}
		})
	}
}

// BenchmarkStore is each store's find and write-back (Update).
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	rec := sessionstore.Record{User: "alice", Data: map[string]string{"cart": "apple"}, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}
	stores := benchStores(b)
	delete(stores, "cookie")
	stores["redis"] = func() sessionstore.Store {
		client, _ := storetest.RedisClient(b)
		return sessionstore.NewRedis(client, "edgesession-bench:")
	}
	for name, open := range stores {
		store := open()
		key := sessionstore.KeyOf(sessionstore.NewID())
		store.Create(ctx, key, rec)
		b.Run(name+"/find", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := store.Find(ctx, key); !found || err != nil {
					b.Fatal(found, err)
				}
			}
		})
		b.Run(name+"/update", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := store.Update(ctx, key, sessionstore.Change{Seen: time.Now(), Expires: time.Now().Add(time.Hour)}); !found || err != nil {
					b.Fatal(found, err)
				}
			}
		})
	}
}

// countingStore counts the writes that reach a real store.
type countingStore struct {
	sessionstore.Store
	writes atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, key sessionstore.Key, ch sessionstore.Change) (sessionstore.Record, bool, error) {
	c.writes.Add(1)
	return c.Store.Update(ctx, key, ch)
}

func (c *countingStore) Create(ctx context.Context, key sessionstore.Key, rec sessionstore.Record) error {
	c.writes.Add(1)
	return c.Store.Create(ctx, key, rec)
}

// TestNoWritesInsideWriteBackInterval: repeated requests of one session
// inside 1/20 of the idle timeout write nothing to the store; the first
// request after it writes once.
func TestNoWritesInsideWriteBackInterval(t *testing.T) {
	store := &countingStore{Store: sessionstore.NewMemory(0)}
	h := newTestHandler(t, store)
	h.idle = time.Hour
	h.touchEvery = h.idle / 20 // 3m: no run of this test comes near it
	h.setupSessions()
	cookie := loggedIn(t, h, "alice")
	store.writes.Store(0)
	serve := func() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookie)
		h.ServeHTTP(w, r, okHandler)
		if w.Code != 200 {
			t.Fatalf("request: %d", w.Code)
		}
	}
	for range 1000 {
		serve()
	}
	if n := store.writes.Load(); n != 0 {
		t.Fatalf("1000 requests inside the write-back interval wrote %d times", n)
	}
	// The session was last seen longer ago than the interval: set it so in
	// the store, rather than wait for the clock.
	id, err := h.codec.Verify(strings.TrimPrefix(cookie, h.Cookie.Name+"="))
	if err != nil {
		t.Fatal(err)
	}
	key := h.sessions.Key(sessionstore.ID(id))
	rec, _, _ := store.Find(context.Background(), key)
	rec.LastSeen = time.Now().Add(-h.touchEvery - time.Second)
	store.Store.Create(context.Background(), key, rec)
	for range 1000 {
		serve()
	}
	if n := store.writes.Load(); n != 1 {
		t.Fatalf("1000 requests after the interval wrote %d times, want 1", n)
	}
}

// findCountingStore counts lookups.
type findCountingStore struct {
	sessionstore.Store
	finds atomic.Int64
}

func (c *findCountingStore) Find(ctx context.Context, key sessionstore.Key) (sessionstore.Record, bool, error) {
	c.finds.Add(1)
	return c.Store.Find(ctx, key)
}

// TestManySessionCookiesAreBounded: a request with many validly signed but
// dead session cookies costs at most session.MaxCookies lookups, and a live
// one among the first of them still wins over the dead ones before it.
func TestManySessionCookiesAreBounded(t *testing.T) {
	store := &findCountingStore{Store: sessionstore.NewMemory(0)}
	h := newTestHandler(t, store)
	dead := loggedIn(t, h, "mallory")
	live := loggedIn(t, h, "alice")
	// Logging alice in again would delete nothing: end mallory's directly.
	deadID, _ := h.codec.Verify(strings.TrimPrefix(dead, h.Cookie.Name+"="))
	store.Delete(context.Background(), h.sessions.Key(sessionstore.ID(deadID)))

	serve := func(cookie string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookie)
		h.ServeHTTP(w, r, okHandler)
		return w
	}
	store.finds.Store(0)
	if w := serve(strings.Repeat(dead+"; ", 100) + live); w.Code == 200 {
		t.Fatal("the 101st session cookie was looked at")
	}
	if n := store.finds.Load(); n != session.MaxCookies {
		t.Fatalf("%d lookups for 101 session cookies, want %d", n, session.MaxCookies)
	}
	if w := serve(strings.Repeat(dead+"; ", session.MaxCookies-1) + live); w.Code != 200 {
		t.Fatalf("a live session after %d dead ones: %d", session.MaxCookies-1, w.Code)
	}
}

// BenchmarkAuthEndpoint is a proxy's subrequest to <prefix>/auth for a
// request with a valid session, with the rules of testRules and `public
// { path /public/* *.css }`: the cost per request of the auth endpoint,
// beside BenchmarkServeHTTP's "rules and public".
func BenchmarkAuthEndpoint(b *testing.B) {
	h := authHandler(b)
	cookie := loggedIn(b, h, "alice")
	template := http.Header{
		"Cookie": {cookie + "; theme=dark"}, "Accept": {"text/html"}, "X-Session-User": {"mallory"},
		"User-Agent": {"bench"}, "Accept-Encoding": {"gzip"},
		"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/app/page?x=1"}, "X-Forwarded-Host": {"example.com"}, "X-Forwarded-Proto": {"https"},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		base := withCaddyContext(httptest.NewRequest("GET", "/.session/auth", nil), true)
		for pb.Next() {
			r := withCaddyContext(base, true)
			r.Header = template.Clone()
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, okHandler); err != nil || w.Code != 200 || w.Header().Get("X-Session-User") != "alice" {
				b.Fatal(w.Code, err)
			}
		}
	})
}
