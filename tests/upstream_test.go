package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestUpstreamControl(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on")
		cl := NewClient(t, c.Site)

		// An anonymous visitor gets no session until the upstream writes one.
		if r := cl.Get("/public/a"); r.Header.Get("Set-Cookie") != "" || cl.SessionCookie() != "" {
			t.Fatal("an anonymous request got a session")
		}
		r := cl.Get("/public/a?h=X-Session-Set-Cart:apple&h=X-Session-Set-Theme:dark")
		if cl.SessionCookie() == "" {
			t.Fatal("the upstream's write gave no session")
		}
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-session") {
				t.Errorf("the client saw the control header %s", name)
			}
		}
		e := cl.Get("/public/b").Echo(t)
		if e.Headers["X-Session-Data-Cart"][0] != "apple" || e.Headers["X-Session-Data-Theme"][0] != "dark" {
			t.Fatalf("session data: %v", e.Headers)
		}
		if _, ok := e.Headers["X-Session-User"]; ok {
			t.Fatal("an anonymous session has a user")
		}
		// Still not logged in: protected routes refuse.
		if r := cl.Get("/private"); r.StatusCode != 401 {
			t.Fatalf("an anonymous session passed a protected route: %d", r.StatusCode)
		}

		// The app logs the user in itself (after checking a password of its own).
		anon := cl.SessionCookie()
		cl.Get("/public/app-login?h=X-Session-Login:carol")
		if cl.SessionCookie() == anon {
			t.Fatal("X-Session-Login kept the session ID")
		}
		e = cl.Get("/private").Echo(t)
		if e.Headers["X-Session-User"][0] != "carol" || e.Headers["X-Session-Data-Cart"][0] != "apple" {
			t.Fatalf("after the app's login: %v", e.Headers)
		}

		// Delete, with a list and odd spacing.
		cl.Get("/private?h=X-Session-Delete:cart,%20THEME")
		e = cl.Get("/private").Echo(t)
		if e.Headers["X-Session-Data-Cart"] != nil || e.Headers["X-Session-Data-Theme"] != nil {
			t.Fatalf("after delete: %v", e.Headers)
		}

		// Invalid keys and values are ignored, logged, and never reach a header.
		cl.Get("/private?h=X-Session-Set-Bad_Key:x&h=X-Session-Set-Ok:fine&h=X-Session-Set-" + strings.Repeat("k", 65) + ":x")
		e = cl.Get("/private").Echo(t)
		if e.Headers["X-Session-Data-Ok"][0] != "fine" || len(e.Headers) == 0 {
			t.Fatalf("valid key next to invalid ones: %v", e.Headers)
		}
		for name := range e.Headers {
			if strings.Contains(strings.ToLower(name), "bad") || strings.Contains(strings.ToLower(name), "kkkk") {
				t.Errorf("an invalid key reached the upstream as %s", name)
			}
		}
		if !strings.Contains(c.Logs(), "invalid session data key ignored") {
			t.Error("the invalid key was not logged")
		}

		// The app logs the user out.
		r = cl.Get("/private?h=X-Session-Logout:true")
		if !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("X-Session-Logout did not expire the cookie: %q", r.Header.Get("Set-Cookie"))
		}
		if code, _ := cl.Whoami(); code != 401 {
			t.Fatal("X-Session-Logout left the session")
		}
	})
}

func TestControlHeadersNeverReachClient(t *testing.T) {
	up := StartUpstream(t)
	for _, control := range []string{"off", "on"} {
		t.Run("upstream_control "+control, func(t *testing.T) {
			c := startSite(t, up, "memory", "upstream_control "+control)
			cl := NewClient(t, c.Site)
			cl.MustLogin("alice", alicePassword)
			r := cl.Get("/x?h=X-Session-User:mallory&h=x-session-remote:mallory&h=X-Session-Set-A:1&h=X-Session-Anything:1&h=X_Session_Odd:1&h=X-Other:kept")
			for name := range r.Header {
				if n := strings.ReplaceAll(strings.ToLower(name), "_", "-"); strings.HasPrefix(n, "x-session-") {
					t.Errorf("the client saw %s", name)
				}
			}
			if r.Header.Get("X-Other") != "kept" {
				t.Error("a header without the prefix was removed")
			}
			_, user := cl.Whoami()
			if user != "alice" {
				t.Fatalf("user after the upstream's headers: %q", user)
			}
			if control == "off" {
				if e := cl.Get("/y").Echo(t); e.Headers["X-Session-Data-A"] != nil {
					t.Fatal("upstream_control off wrote to the session")
				}
			}
		})
	}
}

func TestServerSentEventsStream(t *testing.T) {
	up := StartUpstream(t)
	next := make(chan struct{})
	up.Hooks["/events"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Session-Set-Seen", "events")
		w.WriteHeader(200)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}
	c := startSite(t, up, "memory", "upstream_control on")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	req := cl.NewRequest("GET", "/events", nil, "Accept: text/event-stream")
	resp, err := cl.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Session-Set-Seen") != "" {
		t.Fatal("a control header reached the client")
	}
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		got := make(chan string)
		go func() {
			line, _ := br.ReadString('\n')
			br.ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if line != fmt.Sprintf("data: event %d\n", i) {
				t.Fatalf("event %d: %q", i, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive while the upstream was still writing", i)
		}
		next <- struct{}{}
	}
	// The session write made before the stream began is there.
	if e := cl.Get("/x").Echo(t); e.Headers["X-Session-Data-Seen"][0] != "events" {
		t.Fatal("the session write of a streaming response was lost")
	}
}

func TestWebsocketThroughSession(t *testing.T) {
	up := StartUpstream(t)
	up.Hooks["/ws"] = websocket.Handler(func(ws *websocket.Conn) {
		user := ws.Request().Header.Get("X-Session-User")
		io.WriteString(ws, "hello "+user)
		io.Copy(ws, ws)
	}).ServeHTTP
	c := startSite(t, up, "memory", "upstream_control on")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)

	wsURL := strings.Replace(c.Site, "http://", "ws://", 1) + "/ws"
	dial := func(cookie string) (*websocket.Conn, error) {
		cfg, err := websocket.NewConfig(wsURL, c.Site)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			cfg.Header.Set("Cookie", "caddy_session="+cookie)
		}
		cfg.Header.Set("X-Session-User", "mallory")
		return websocket.DialConfig(cfg)
	}
	if _, err := dial(""); err == nil {
		t.Fatal("a websocket without a session was let through")
	}
	ws, err := dial(cl.SessionCookie())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := ws.Read(buf)
	if err != nil || string(buf[:n]) != "hello alice" {
		t.Fatalf("greeting: %q %v", buf[:n], err)
	}
	for _, msg := range []string{"ping", "ünïcode ✓", strings.Repeat("z", 40)} {
		if _, err := io.WriteString(ws, msg); err != nil {
			t.Fatal(err)
		}
		n, err := ws.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("echo of %q: %q %v", msg, buf[:n], err)
		}
	}
}

func TestMetricsOnAdminEndpoint(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "bolt", "")
	cl := NewClient(t, c.Site)
	cl.LoginJSON("alice", "wrong")
	cl.MustLogin("alice", alicePassword)
	cl.Get("/x")
	cl.LogoutJSON()
	NewClient(t, c.Site).Get("/x")
	bad := NewClient(t, c.Site)
	bad.SetSessionCookie("garbage")
	bad.Get("/x")

	metrics := func() string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.AdminPort))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := []string{
		`caddy_session_logins_total{result="success"} 1`,
		`caddy_session_logins_total{result="failure"} 1`,
		`caddy_session_logouts_total 1`,
		`caddy_session_requests_total{state="valid"}`,
		`caddy_session_requests_total{state="none"}`,
		`caddy_session_requests_total{state="invalid"} 1`,
		`caddy_session_store_operation_seconds_count{op="create"} 1`,
		`caddy_session_store_operation_seconds_count{op="delete"} 1`,
		`caddy_session_store_errors_total 0`,
	}
	m := metrics()
	for _, w := range want {
		if !strings.Contains(m, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	// A reload registers them on the new config's registry; counts go on.
	c.Reload(strings.Replace(siteTemplate, "[[.Extra.more]]", "idle_timeout 20m", 1))
	if m := metrics(); !strings.Contains(m, `caddy_session_logins_total{result="success"} 1`) {
		t.Error("after a reload the session metrics are gone")
	}
}

func TestControlHeadersFromAHandlerThatWritesNothing(t *testing.T) {
	// No responder: Caddy answers an empty 200 itself, from the same header
	// map. Control headers set on the way must still be applied and removed.
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]]
		upstream_control on
	}
	header /silent X-Session-Set-Flag yes
	header /silent X-Session-Internal secret
	reverse_proxy /proxied [[.Upstream]]
}
`, WithExtra("alice", aliceHash))
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	r := cl.Get("/silent")
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-session") {
			t.Errorf("the client saw %s", name)
		}
	}
	if e := cl.Get("/proxied").Echo(t); e.Headers["X-Session-Data-Flag"][0] != "yes" {
		t.Fatal("the control header of a response with no body was not applied")
	}
}
