// A real Flask app behind the session handler.

package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// flaskSite is edgesession in front of testdata/flaskapp.py as a legacy
// app would be: no login of its own, its own session cookie, trusting the
// proxy's headers.
const flaskSite = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]]
		user bob [[.Extra.bob]]
		public {
			path /public/* /healthz
		}
		upstream_control on
		header X-Forwarded-Email data.email
		header User-Name user
		http_basic on "Flask app"
		[[.Extra.logout]]
	}
	reverse_proxy [[.Upstream]]
}
`

// TestFlaskAppBehindSession puts a real packaged app (Debian's
// python3-flask) behind edgesession: login, the user and mapped headers in
// the app, logout reaching the app's own session, a Basic client.
func TestFlaskAppBehindSession(t *testing.T) {
	app := startFlaskApp(t)
	start := func(logout string) *Caddy {
		return StartCaddy(t, app, flaskSite, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("logout", logout))
	}
	c := start("logout_cookies app_session")
	me := func(cl *Client, path string, headers ...string) map[string]any {
		t.Helper()
		r := cl.Get(path, headers...)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
		}
		return r.JSON(t)
	}

	cl := NewClient(t, c.Site)
	r := cl.Get("/", "Accept: text/html")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/.session/login") {
		t.Fatalf("a browser without a session: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := cl.LoginForm("alice", alicePassword, "/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	r = cl.Get("/", "Accept: text/html")
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), "Hello, alice.") {
		t.Fatalf("the app's page: %d %s", r.StatusCode, r.Body)
	}
	if r.Header.Get("X-Session-Set-Email") != "" {
		t.Error("the app's control header reached the browser")
	}
	if !jarHas(cl, "/", "app_session") {
		t.Fatal("the app kept no session of its own")
	}
	got := me(cl, "/api/me", "X-Forwarded-Email: mallory@evil", "user_name: mallory")
	want := map[string]any{"header_user": "alice", "user_name": "alice", "email": "alice@example.test", "session_user": "alice", "authorization": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the app saw %s = %v, want %v", k, got[k], v)
		}
	}

	// Logout ends the app's session too: afterwards the app's public page
	// knows no one.
	r = cl.Post("/.session/logout", "application/x-www-form-urlencoded", "redirect=/")
	if r.StatusCode != http.StatusSeeOther || !expiresCookie(r.Response, "app_session", "/", "") {
		t.Fatalf("logout: %d, Set-Cookie %q", r.StatusCode, r.Header["Set-Cookie"])
	}
	if jarHas(cl, "/", "app_session") {
		t.Error("the browser kept the app's session cookie")
	}
	if got := me(cl, "/public/whoami"); got["session_user"] != nil {
		t.Errorf("after logout the app still thinks it talks to %v", got["session_user"])
	}

	// The app's own sign-out link (X-Session-Logout) ends both sessions.
	cl.MustLogin("bob", bobPassword)
	me(cl, "/api/me")
	r = cl.Get("/bye")
	if !expiresCookie(r.Response, "caddy_session", "/", "") {
		t.Errorf("the app's logout did not end our session: %q", r.Header["Set-Cookie"])
	}
	if code, _ := cl.Whoami(); code != 401 {
		t.Errorf("after the app's logout whoami says %d", code)
	}
	if got := me(cl, "/public/whoami"); got["session_user"] != nil {
		t.Errorf("after the app's logout the app still thinks it talks to %v", got["session_user"])
	}

	// A browser restart drops our (non-persistent) session cookie and
	// keeps the app's: the app's session ends on the next request, here
	// a public page.
	cl.MustLogin("alice", alicePassword)
	me(cl, "/api/me")
	if !jarHas(cl, "/", "app_session") {
		t.Fatal("the app kept no session of its own")
	}
	u, _ := url.Parse(c.Site)
	cl.Jar.SetCookies(u, []*http.Cookie{{Name: "caddy_session", Path: "/", MaxAge: -1}})
	if got := me(cl, "/public/whoami"); got["session_user"] != nil {
		t.Errorf("after our session cookie was gone the app still thinks it talks to %v", got["session_user"])
	}

	// A script with HTTP Basic: the app sees the user, never the password.
	script := NewClient(t, c.Site)
	script.Jar = nil
	req := script.NewRequest("GET", "/api/me", nil)
	req.SetBasicAuth("alice", alicePassword)
	r = script.Do(req)
	if r.StatusCode != 200 {
		t.Fatalf("Basic: %d %s", r.StatusCode, r.Body)
	}
	got = r.JSON(t)
	if got["header_user"] != "alice" || got["user_name"] != "alice" || got["authorization"] != nil {
		t.Errorf("the app saw %v", got)
	}
	for _, line := range r.Header["Set-Cookie"] {
		if strings.HasPrefix(line, "caddy_session=") {
			t.Errorf("a Basic request got a session: %q", line)
		}
	}
	if r := script.Get("/api/me"); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="Flask app", charset="UTF-8"` {
		t.Errorf("a script without credentials: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}

	// Without logout_cookies, the app's session outlives ours: what the
	// feature is for.
	plain := start("")
	cl = NewClient(t, plain.Site)
	cl.MustLogin("alice", alicePassword)
	me(cl, "/api/me")
	cl.LogoutJSON()
	if got := me(cl, "/public/whoami"); got["session_user"] != "alice" {
		t.Errorf("control: without logout_cookies the app's session was %v, want alice's (is the app still persistent?)", got["session_user"])
	}
}

// startFlaskApp starts testdata/flaskapp.py on a free port, stops it at
// cleanup, and returns its address. It waits for the app's own answer on
// /healthz, so that a port taken meanwhile by another process is noticed
// (and another port tried) instead of testing that process.
func startFlaskApp(t *testing.T) string {
	t.Helper()
	py := flaskPython(t)
	var lastLog string
	for range 3 {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(py, "testdata/flaskapp.py", strconv.Itoa(port))
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
		var log syncBuffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		if waitForFlask(addr, done) {
			return addr
		}
		cmd.Process.Kill()
		<-done
		lastLog = log.String()
	}
	t.Fatalf("the Flask app did not start:\n%s", lastLog)
	return ""
}

// waitForFlask polls the app's /healthz for up to 30 s; false if the
// process exits first or never answers as the app.
func waitForFlask(addr string, exited <-chan struct{}) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) == "edgesession-flask-test-app" {
				return true
			}
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// flaskPython is a python3 that can import Flask: Debian's, where
// python3-flask installs (.ci/run installs it), else the first on PATH.
// Without one the test skips, except under CI=true, where no test may.
func flaskPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import flask").Run() == nil {
			return py
		}
	}
	msg := fmt.Sprintf("no python3 that can import flask (tried %s): apt-get install python3-flask", strings.Join(candidates, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; tests may not skip under CI=true")
	}
	t.Skip("SKIP: " + msg)
	return ""
}
