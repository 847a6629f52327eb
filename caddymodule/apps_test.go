package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// sessionJSON adapts a Caddyfile session block and returns the handler's
// JSON as a map.
func sessionJSON(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	out, err := adapt(t, body)
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	h := findSessionHandler(cfg)
	if h == nil {
		t.Fatalf("no session handler in %s", out)
	}
	b, _ := json.Marshal(h)
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	return raw
}

func findSessionHandler(v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == "session" {
			return v
		}
		for _, e := range v {
			if h := findSessionHandler(e); h != nil {
				return h
			}
		}
	case []any:
		for _, e := range v {
			if h := findSessionHandler(e); h != nil {
				return h
			}
		}
	}
	return nil
}

func TestCaddyfileAppOptions(t *testing.T) {
	h := sessionJSON(t, `
		user alice `+testHash+`
		header X-Forwarded-Email data.email
		header User-Name user
		logout_cookies ttrss_sid {
			path / /tt-rss/
		}
		logout_cookies sessionid csrftoken {
			domain example.com
		}
		clear_site_data cookies storage
		http_basic on "My Calendar"`)
	want := map[string]string{
		"headers":         `{"User-Name":"user","X-Forwarded-Email":"data.email"}`,
		"logout_cookies":  `[{"name":"ttrss_sid","path":"/"},{"name":"ttrss_sid","path":"/tt-rss/"},{"domain":"example.com","name":"sessionid"},{"domain":"example.com","name":"csrftoken"}]`,
		"clear_site_data": `["cookies","storage"]`,
		"http_basic":      `{"realm":"My Calendar"}`,
	}
	for k, v := range want {
		if got := string(h[k]); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}

	h = sessionJSON(t, "user alice "+testHash+"\nhttp_basic on")
	if got := string(h["http_basic"]); got != `{}` {
		t.Errorf("http_basic on = %s, want {}", got)
	}
	h = sessionJSON(t, "user alice "+testHash+"\nhttp_basic off")
	if _, ok := h["http_basic"]; ok {
		t.Errorf("http_basic off = %s, want absent", h["http_basic"])
	}
}

func TestCaddyfileAppOptionErrors(t *testing.T) {
	assertCaddyfileErrors(t, []caddyfileError{
		{"header arity", "header X-Email", 3, "header needs a header name and what it carries"},
		{"header bad name", "header X:Email user", 3, "not a valid header name"},
		{"header bad source", "header X-Email email", 3, "want user or data.<key>"},
		{"header bad key", "header X-Email data.E_mail", 3, "session data key"},
		{"header given twice", "header X-Email user\nheader X-Email data.email", 4, `header "X-Email" given twice`},
		{"header twice in another spelling", "header X-Email user\nheader x_email data.email", 4, "the same name as header X-Email"},
		{"header is a user_header", "user_header Remote-User\nheader remote-user user", 4, "the same name as user_header Remote-User"},
		{"user_header is a header", "header Remote-User user\nuser_header Remote_User", 4, "the same name as user_header"},
		{"header under the prefix", "header X-Session-Email data.email", 3, "starts with the header prefix"},
		{"header under a later prefix", "header X-Auth-Email data.email\nheader_prefix X-Auth-", 3, `starts with the header prefix "X-Auth-"`},
		{"header reserved", "header Authorization user", 3, "HTTP or the proxy relies on this header"},
		{"header reserved, other spelling", "header x_forwarded_for user", 3, "HTTP or the proxy relies on this header"},
		{"user_header reserved", "user_header Cookie", 3, "HTTP or the proxy relies on this header"},
		{"logout_cookies without names", "logout_cookies", 3, "logout_cookies needs the names"},
		{"logout_cookies bad name", "logout_cookies a;b", 3, "not a valid cookie name"},
		{"logout_cookies session cookie", "logout_cookies caddy_session", 3, "is the session cookie"},
		{"logout_cookies signed-in marker", "logout_cookies caddy_session~signedin", 3, "signed-in marker"},
		{"logout_cookies signed-in marker on HTTPS", "logout_cookies __Host-caddy_session~signedin", 3, "signed-in marker"},
		{"logout_cookies signed-in marker on HTTPS with a domain", "logout_cookies __Secure-caddy_session~signedin", 3, "signed-in marker"},
		{"logout_cookies bad path", "logout_cookies sid {\npath tt-rss\n}", 5, "must start with /"},
		{"logout_cookies unknown option", "logout_cookies sid {\nsecure on\n}", 4, "unknown option"},
		{"logout_cookies twice", "logout_cookies sid\nlogout_cookies sid", 4, "given twice"},
		{"logout_cookies __Host- with path", "logout_cookies __Host-sid {\npath /app/\n}", 5, "__Host-"},
		{"clear_site_data empty", "clear_site_data", 3, "clear_site_data needs"},
		{"clear_site_data bad type", "clear_site_data everything", 3, `clear_site_data "everything"`},
		{"clear_site_data twice", "clear_site_data cookies cookies", 3, "given twice"},
		{"http_basic bad", "http_basic yes", 3, "http_basic needs on"},
		{"http_basic off with realm", "http_basic off Cal", 3, "http_basic needs on"},
		{"http_basic bad realm", `http_basic on "a\"b"`, 3, "http_basic realm"},
		{"http_basic twice", "http_basic on\nhttp_basic off", 4, "http_basic given twice"},
	})
}

// TestJSONAppOptionsAreChecked: what the Caddyfile refuses, a JSON config
// cannot slip past Provision.
func TestJSONAppOptionsAreChecked(t *testing.T) {
	tests := map[string]func(h *Handler){
		"header under the prefix":     func(h *Handler) { h.Headers = map[string]string{"x-session-email": "data.email"} },
		"header twice in two cases":   func(h *Handler) { h.Headers = map[string]string{"X-Email": "user", "x-email": "user"} },
		"header bad source":           func(h *Handler) { h.Headers = map[string]string{"X-Email": "session.email"} },
		"logout cookie is ours":       func(h *Handler) { h.LogoutCookies = []AppCookie{{Name: "caddy_session"}} },
		"logout cookie bad domain":    func(h *Handler) { h.LogoutCookies = []AppCookie{{Name: "sid", Domain: "a;b"}} },
		"clear_site_data bad":         func(h *Handler) { h.ClearSiteData = []string{"Cookies"} },
		"http_basic without users":    func(h *Handler) { h.Users = nil; h.HTTPBasic = &HTTPBasic{} },
		"http_basic realm with quote": func(h *Handler) { h.HTTPBasic = &HTTPBasic{Realm: `a"b`} },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			h := &Handler{Users: []User{{Name: "alice", Hash: testHash}}}
			change(h)
			h.setDefaults()
			if err := h.validate(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	h := &Handler{Users: []User{{Name: "alice", Hash: testHash}}, Headers: map[string]string{"X-Forwarded-Email": "data.email", "User-Name": "user"},
		LogoutCookies: []AppCookie{{Name: "sessionid", Path: "/app/"}}, ClearSiteData: []string{"cookies", "cache"}, HTTPBasic: &HTTPBasic{Realm: "DAV"}}
	h.setDefaults()
	if err := h.validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}

func TestMappedHeadersAreStrippedAndForwarded(t *testing.T) {
	h := newTestHandler(t, nil)
	h.Headers = map[string]string{"User-Name": "user", "X-Forwarded-Email": "data.email", "X-WEBAUTH-ROLE": "data.role", "X-Missing": "data.missing"}
	h.prepareHeaders()
	for name, want := range map[string]bool{
		"user-name": true, "USER_NAME": true, "x_forwarded_email": true, "X-Webauth-Role": true, "x-missing": true,
		"X-Forwarded-Emai": false, "X-Forwarded-Email2": false, "User": false,
	} {
		if got := h.strip.Matches(name); got != want {
			t.Errorf("matches(%q) = %v, want %v", name, got, want)
		}
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"User_name": {"mallory"}, "X-Forwarded-Email": {"mallory@evil"}, "X-Missing": {"mallory"}, "Accept": {"*/*"},
		"Connection": {"x_forwarded_email, User-Name"}}
	r.Trailer = http.Header{"X-Webauth-Role": {"root"}}
	h.strip.StripRequest(r)
	if len(r.Trailer) != 0 {
		t.Errorf("trailers left: %v", r.Trailer)
	}
	s := &session.Session{Rec: sessionstore.Record{User: "alice", Data: map[string]string{"email": "alice@example.com", "role": "admin", "bad": "x\ny"}}}
	h.forward(r, s)
	want := http.Header{
		"Accept": {"*/*"}, "X-Session-User": {"alice"}, "Remote-User": {"alice"}, "User-Name": {"alice"},
		"X-Forwarded-Email": {"alice@example.com"}, "X-Webauth-Role": {"admin"},
		"X-Session-Data-Email": {"alice@example.com"}, "X-Session-Data-Role": {"admin"},
	}
	if len(r.Header) != len(want) {
		t.Errorf("headers %v, want %v", r.Header, want)
	}
	for name, v := range want {
		if got := r.Header[name]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	// No two headers share a value slice: adding to one changes no other.
	r.Header.Add("User-Name", "x")
	r.Header.Add("X-Forwarded-Email", "y")
	if r.Header.Get("Remote-User") != "alice" || len(r.Header["X-Webauth-Role"]) != 1 || len(r.Header["X-Session-User"]) != 1 {
		t.Errorf("headers share their values: %v", r.Header)
	}

	// Anonymous session with data: the data keys go, no user.
	r = httptest.NewRequest("GET", "/", nil)
	h.forward(r, &session.Session{Rec: sessionstore.Record{Data: map[string]string{"email": "anon@example.com"}}})
	if r.Header.Get("X-Forwarded-Email") != "anon@example.com" || r.Header.Get("User-Name") != "" {
		t.Errorf("anonymous: %v", r.Header)
	}
}

// TestSessionEndsReachTheApp: every way a session ends expires the app's
// cookies; a login that continues the same user's session does not.
func TestSessionEndsReachTheApp(t *testing.T) {
	store := sessionstore.NewMemory(0)
	t.Cleanup(func() { store.Close() })
	h := newTestHandler(t, store)
	h.LogoutCookies = []AppCookie{{Name: "app_sid"}}
	h.setupSessions()
	h.setupEndpoints()
	expires := func(w *httptest.ResponseRecorder) bool {
		for _, l := range w.Header()["Set-Cookie"] {
			if strings.HasPrefix(l, "app_sid=;") && strings.Contains(l, "Max-Age=0") {
				return true
			}
		}
		return false
	}
	request := func(method, target, cookie string) *http.Request {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("Cookie", cookie+"; app_sid=a")
		return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	}

	alice := loggedIn(t, h, "alice")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request("GET", "/", alice), okHandler)
	if w.Code != 200 || expires(w) {
		t.Fatalf("a live session: %d, expired app cookie: %v", w.Code, expires(w))
	}

	// Logout.
	w = httptest.NewRecorder()
	r := request("POST", "/.session/logout", alice)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	h.ServeHTTP(w, r, okHandler)
	if w.Code != http.StatusSeeOther || !expires(w) {
		t.Errorf("logout: %d, expired app cookie: %v", w.Code, expires(w))
	}
	// The ended session, replayed: found gone, so the app's cookie goes
	// too, and is kept out of the request.
	w = httptest.NewRecorder()
	r = request("GET", "/", alice)
	h.ServeHTTP(w, r, okHandler)
	if !expires(w) || strings.Contains(r.Header.Get("Cookie"), "app_sid") {
		t.Errorf("a revoked session: expired app cookie %v, request Cookie %q", expires(w), r.Header.Get("Cookie"))
	}

	// A login replacing another user's session, or no session.
	for _, old := range []string{loggedIn(t, h, "bob"), ""} {
		w = httptest.NewRecorder()
		r = request("GET", "/", old)
		s, _ := h.sessions.Load(w, r)
		if _, err := h.sessions.Login(context.Background(), w, r, s, identity.Identity{User: "alice", Source: identity.Upstream}, nil); err != nil {
			t.Fatal(err)
		}
		if !expires(w) {
			t.Errorf("login over %q did not expire the app's cookie", old)
		}
	}
	// The same user again: the app's session is the same user's.
	w = httptest.NewRecorder()
	r = request("GET", "/", loggedIn(t, h, "alice"))
	s, _ := h.sessions.Load(w, r)
	if _, err := h.sessions.Login(context.Background(), w, r, s, identity.Identity{User: "alice", Source: identity.Upstream}, nil); err != nil {
		t.Fatal(err)
	}
	if expires(w) {
		t.Error("a login continuing the same user's session expired the app's cookie")
	}
	marker := h.Cookie.Name + "~signedin"
	if got := strings.Join(w.Header()["Set-Cookie"], "\n"); !strings.Contains(got, marker+"=1; Path=/; Max-Age=34560000; HttpOnly; SameSite=Lax") {
		t.Errorf("a login did not set the signed-in marker: %s", got)
	}

	// The session ended unseen: without our cookie, the marker says this
	// browser signed in; with an undecodable one, that is enough. Both
	// expire the app's cookie (and set the marker to 0); a visitor who
	// never signed in keeps it, and so does one whose marker says 0: the
	// end was acted on already, and what keeps arriving is a cookie the
	// handler could not expire. Over HTTP, a marker with the __Host- prefix
	// is not the handler's.
	for _, tc := range []struct {
		cookie string
		want   bool
	}{
		{marker + "=1", true},
		{h.Cookie.Name + "=bm90LWEtY29va2llLW9mLW91cnM", true},
		{"", false},
		{"theme=dark", false},
		{marker + "=1; " + marker + "=0", false},
		{h.Cookie.Name + "=bm90LWEtY29va2llLW9mLW91cnM; " + marker + "=0", false},
		{"__Host-" + marker + "=0; " + marker + "=1", true},
		{"__Host-" + marker + "=1", false},
	} {
		w = httptest.NewRecorder()
		r = request("GET", "/", tc.cookie)
		h.ServeHTTP(w, r, okHandler)
		if expires(w) != tc.want {
			t.Errorf("Cookie %q: expired the app's cookie %v, want %v (%q)", tc.cookie, expires(w), tc.want, w.Header()["Set-Cookie"])
		}
		markerEnded := slices.ContainsFunc(w.Header()["Set-Cookie"], func(l string) bool { return strings.HasPrefix(l, marker+"=0;") })
		if markerEnded != tc.want {
			t.Errorf("Cookie %q: set the marker to 0 %v, want %v", tc.cookie, markerEnded, tc.want)
		}
	}

	// A live session: the marker does not reach the upstream.
	w = httptest.NewRecorder()
	r = request("GET", "/", loggedIn(t, h, "alice")+"; "+marker+"=1")
	var upstreamCookie string
	h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		upstreamCookie = r.Header.Get("Cookie")
		return nil
	}))
	if upstreamCookie != "app_sid=a" {
		t.Errorf("the upstream got Cookie %q", upstreamCookie)
	}
}
