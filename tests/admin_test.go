package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// adminSession is one session as GET /session/users/<user> lists it.
type adminSession struct {
	Handle    string    `json:"handle"`
	Site      string    `json:"site"`
	Source    string    `json:"source"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	ClientIP  string    `json:"client_ip"`
	UserAgent string    `json:"user_agent"`
	Store     string    `json:"store"`
}

// Admin sends one request to c's admin API and returns the status and body.
// A body, if given, is sent as JSON.
func (c *Caddy) Admin(method, path string, body ...string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", c.AdminPort, path), strings.NewReader(strings.Join(body, "")))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// adminList lists user's sessions through c's admin API.
func adminList(t *testing.T, c *Caddy, user string) []adminSession {
	t.Helper()
	code, body := c.Admin("GET", "/session/users/"+user)
	if code != 200 {
		t.Fatalf("GET /session/users/%s: %d %s", user, code, body)
	}
	var out struct {
		Sessions []adminSession `json:"sessions"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("list: %v: %s", err, body)
	}
	return out.Sessions
}

// cacheMaxAge is the Redis store's default cache max age: the bound SPEC §6
// gives for a revocation on one instance to be in force on another (the
// invalidation push usually makes it microseconds; on a loaded machine it
// may arrive after the next request).
const cacheMaxAge = time.Second

// refusedWithinMaxAge asserts that c's session, revoked elsewhere at
// revoked (when the revocation had returned), is refused by its instance
// within the cache's max age: every request sent later than that must be
// refused, and one is sent then at the latest.
func refusedWithinMaxAge(t *testing.T, what string, c *Client, revoked time.Time) {
	t.Helper()
	for {
		sent := time.Now()
		code, _ := c.Whoami()
		if code == 401 {
			return
		}
		if code != 200 {
			t.Fatalf("%s: whoami %d", what, code)
		}
		if late := sent.Sub(revoked); late > cacheMaxAge {
			t.Fatalf("%s: still accepted %v after the revocation, beyond the cache's max age of %v", what, late, cacheMaxAge)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAdminRevokeOnOneInstanceEndsTheSessionOnTheOther: two Caddy
// instances share Redis; a revocation through one's admin API is in
// force on the other within the cache's max age (SPEC §6), typically at
// its next request.
func TestAdminRevokeOnOneInstanceEndsTheSessionOnTheOther(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, storetest.RedisPrefix(t))
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)

	// alice on a laptop and a phone (both logged in through A), bob on B;
	// every cookie is then used on B.
	laptop, phone, bob := NewClient(t, a.Site), NewClient(t, a.Site), NewClient(t, b.Site)
	if r := laptop.LoginJSON("alice", alicePassword, "User-Agent: Laptop/1.0 (X11)"); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	if r := phone.LoginJSON("alice", alicePassword, "User-Agent: Phone/2.0 (Android)"); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	bob.MustLogin("bob", bobPassword)
	onB := func(c *Client) *Client {
		cl := NewClient(t, b.Site)
		cl.SetSessionCookie(c.SessionCookie())
		return cl
	}
	laptopB, phoneB := onB(laptop), onB(phone)
	for _, c := range []*Client{laptopB, phoneB, bob} {
		if code, _ := c.Whoami(); code != 200 {
			t.Fatal("a session is not valid on B")
		}
	}

	// Either instance lists the same sessions.
	sessions := adminList(t, b, "alice")
	if len(sessions) != 2 || !strings.HasPrefix(sessions[0].UserAgent, "Laptop/1.0") || sessions[1].UserAgent != "Phone/2.0 (Android)" ||
		sessions[0].ClientIP != "127.0.0.1" || sessions[0].Store != "redis" || sessions[0].Source == "" || sessions[0].Created.IsZero() {
		t.Fatalf("B lists alice's sessions as %+v", sessions)
	}
	if fmt.Sprint(adminList(t, a, "alice")) != fmt.Sprint(sessions) {
		t.Fatal("A and B list alice's sessions differently")
	}

	// One session, revoked on A: out on B; the other stays.
	if code, body := a.Admin("DELETE", "/session/users/alice/"+sessions[1].Handle); code != 200 || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoke the phone on A: %d %s", code, body)
	}
	refusedWithinMaxAge(t, "B, a session revoked on A", phoneB, time.Now())
	if code, _ := laptopB.Whoami(); code != 200 {
		t.Fatal("revoking one session ended another")
	}

	// All of alice's, revoked on B: out on A; bob stays.
	if code, body := b.Admin("DELETE", "/session/users/alice"); code != 200 || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoke alice on B: %d %s", code, body)
	}
	refusedWithinMaxAge(t, "A, alice after B revoked her", laptop, time.Now())
	if code, _ := bob.Whoami(); code != 200 {
		t.Fatal("revoking alice ended bob's session")
	}
	if s := adminList(t, a, "alice"); len(s) != 0 {
		t.Fatalf("after revocation A lists %+v", s)
	}

	// Everything, on A: bob is out on B.
	if code, body := a.Admin("POST", "/session/revoke-all", `{"confirm":"every session"}`); code != 200 || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoke all on A: %d %s", code, body)
	}
	refusedWithinMaxAge(t, "B, bob after every session was revoked on A", bob, time.Now())

	// Each revocation is logged where it was asked for, with its count.
	for c, want := range map[*Caddy][]string{a: {`"user":"alice","revoked":1`, `"msg":"every session revoked"`}, b: {`"user":"alice","revoked":1`}} {
		for _, w := range want {
			if !strings.Contains(c.Logs(), w) {
				t.Errorf("the log lacks %s", w)
			}
		}
	}
}

// sessionCmd runs `caddy session args...` and returns what it printed:
// its standard output, and its log (standard error) too if it failed.
func sessionCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(caddyBin, append([]string{"session"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// TestSessionCommand drives `caddy session` against a running Caddy.
func TestSessionCommand(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "bolt", "")
	addr := fmt.Sprintf("127.0.0.1:%d", c.AdminPort)
	laptop, phone, bob := NewClient(t, c.Site), NewClient(t, c.Site), NewClient(t, c.Site)
	laptop.LoginJSON("alice", alicePassword, "User-Agent: Laptop/1.0 (X11)")
	phone.LoginJSON("alice", alicePassword, "User-Agent: Phone/2.0 (Android)")
	bob.MustLogin("bob", bobPassword)
	cookies := []string{laptop.SessionCookie(), phone.SessionCookie(), bob.SessionCookie()}

	// list, with the address from --address and from the config.
	out, err := sessionCmd(t, "list", "alice", "--address", addr)
	if err != nil {
		t.Fatalf("caddy session list: %v\n%s", err, out)
	}
	fromConfig, err := sessionCmd(t, "list", "alice", "--config", c.file, "--adapter", "caddyfile")
	if err != nil || fromConfig != out {
		t.Fatalf("caddy session list --config: %v\n%s", err, fromConfig)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	today := time.Now().Format("2006-01-02 ")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "HANDLE") || !strings.Contains(lines[0], "LAST SEEN") ||
		!strings.Contains(lines[1], "Laptop/1.0 (X11)") || !strings.Contains(lines[2], "Phone/2.0 (Android)") ||
		!strings.Contains(lines[1], "127.0.0.1") || strings.Count(lines[1], today) != 2 || lines[3] != "alice: 2 sessions" {
		t.Fatalf("caddy session list alice:\n%s", out)
	}
	handle := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, l := range lines[1:3] {
		if !handle.MatchString(strings.Fields(l)[0]) {
			t.Fatalf("a session is not named by a handle: %q", l)
		}
	}
	jsonOut, err := sessionCmd(t, "list", "alice", "--address", addr, "--json")
	if err != nil || !strings.Contains(jsonOut, `"last_seen"`) {
		t.Fatalf("caddy session list --json: %v\n%s", err, jsonOut)
	}
	// Nothing printed leads to a cookie: no cookie value, and no string
	// long enough to be a session ID or key in any encoding.
	long := regexp.MustCompile(`[A-Za-z0-9_\-+/=]{40,}`)
	for _, printed := range []string{out, jsonOut} {
		for _, ck := range cookies {
			if strings.Contains(printed, ck) || strings.Contains(printed, ck[:20]) {
				t.Fatal("the output shows a cookie")
			}
		}
		if m := long.FindString(printed); m != "" {
			t.Fatalf("the output shows %q", m)
		}
	}

	// revoke one by its handle: that client is out, the other is not.
	phoneHandle := strings.Fields(lines[2])[0]
	if out, err := sessionCmd(t, "revoke", "alice", phoneHandle, "--address", addr); err != nil || strings.TrimSpace(out) != "revoked 1 session of alice" {
		t.Fatalf("caddy session revoke alice <handle>: %v\n%s", err, out)
	}
	if code, _ := phone.Whoami(); code != 401 {
		t.Fatal("the revoked session still works")
	}
	if code, _ := laptop.Whoami(); code != 200 {
		t.Fatal("revoking one session ended another")
	}
	if out, err := sessionCmd(t, "revoke", "alice", phoneHandle, "--address", addr); err == nil || !strings.Contains(out, "404") {
		t.Fatalf("revoking a session twice: %v\n%s", err, out)
	}
	if out, err := sessionCmd(t, "revoke", "alice", "not-a-handle", "--address", addr); err == nil || !strings.Contains(out, "caddy session list alice") {
		t.Fatalf("revoke with a bad handle: %v\n%s", err, out)
	}

	// revoke all of a user's.
	if out, err := sessionCmd(t, "revoke", "alice", "--address", addr); err != nil || strings.TrimSpace(out) != "revoked 1 session of alice" {
		t.Fatalf("caddy session revoke alice: %v\n%s", err, out)
	}
	if code, _ := laptop.Whoami(); code != 401 {
		t.Fatal("alice is still signed in")
	}
	if out, _ := sessionCmd(t, "list", "alice", "--address", addr); strings.TrimSpace(out) != "alice has no live sessions" {
		t.Fatalf("list after revocation:\n%s", out)
	}

	// revoke-all wants --yes, then signs everyone out.
	if out, err := sessionCmd(t, "revoke-all", "--address", addr); err == nil || !strings.Contains(out, "--yes") {
		t.Fatalf("revoke-all without --yes: %v\n%s", err, out)
	}
	if code, _ := bob.Whoami(); code != 200 {
		t.Fatal("revoke-all without --yes revoked something")
	}
	if out, err := sessionCmd(t, "revoke-all", "--yes", "--address", addr); err != nil || !strings.HasPrefix(out, "revoked 1 session in ") {
		t.Fatalf("caddy session revoke-all --yes: %v\n%s", err, out)
	}
	if code, _ := bob.Whoami(); code != 401 {
		t.Fatal("bob is still signed in after revoke-all")
	}
	if n := strings.Count(c.Logs(), `"logger":"admin.api.session"`); n < 4 {
		t.Fatalf("%d revocations logged, want at least 4:\n%s", n, c.Logs())
	}
}

// TestUserPageRevokesEverywhereElse: on <prefix>/sessions a user sees
// their sessions (this one marked) and signs out the others, which are
// out on another instance sharing Redis within the cache's max age.
func TestUserPageRevokesEverywhereElse(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, storetest.RedisPrefix(t))
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)
	here, phone, tablet := NewClient(t, a.Site), NewClient(t, b.Site), NewClient(t, b.Site)
	here.LoginJSON("alice", alicePassword, "User-Agent: Laptop/1.0")
	phone.LoginJSON("alice", alicePassword, "User-Agent: Phone/2.0")
	tablet.LoginJSON("alice", alicePassword, "User-Agent: Tablet/3.0")

	r := here.Get("/.session/sessions", "Accept: text/html")
	page := string(r.Body)
	if r.StatusCode != 200 || strings.Count(page, "data-handle=") != 3 || strings.Count(page, `aria-current="true"`) != 1 ||
		!strings.Contains(page, "Phone/2.0") || !strings.Contains(page, "Sign out everywhere else") {
		t.Fatalf("the page: %d\n%s", r.StatusCode, page)
	}
	var list struct {
		Sessions []struct {
			Handle    string `json:"handle"`
			Current   bool   `json:"current"`
			UserAgent string `json:"user_agent"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(here.Get("/.session/sessions", "Accept: application/json").Body, &list); err != nil || len(list.Sessions) != 3 {
		t.Fatalf("the list: %v %+v", err, list)
	}
	// Sign out the tablet alone, from the phone's instance.
	for _, s := range list.Sessions {
		if s.UserAgent == "Tablet/3.0" {
			r := phone.Post("/.session/sessions", "application/x-www-form-urlencoded", "handle="+s.Handle, "Origin: "+b.Site)
			if r.StatusCode != 303 {
				t.Fatalf("sign out the tablet: %d %s", r.StatusCode, r.Body)
			}
		}
	}
	if code, _ := tablet.Whoami(); code != 401 {
		t.Fatal("the tablet is still signed in")
	}
	// Everywhere else, from A: the phone, on B, is out.
	r = here.Post("/.session/sessions", "application/x-www-form-urlencoded", "others=1", "Origin: "+a.Site)
	if r.StatusCode != 303 || r.Header.Get("Location") != "/.session/sessions?signed-out=1" {
		t.Fatalf("sign out everywhere else: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	refusedWithinMaxAge(t, "the phone on B, signed out from A", phone, time.Now())
	if code, _ := here.Whoami(); code != 200 {
		t.Fatal("signing out everywhere else signed this browser out")
	}
	// A form from another site is refused.
	if r := here.Post("/.session/sessions", "application/x-www-form-urlencoded", "handle="+list.Sessions[0].Handle, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site"); r.StatusCode != 403 {
		t.Fatalf("a cross-site form: %d", r.StatusCode)
	}
	if !strings.Contains(a.Logs(), `"by":"user"`) {
		t.Error("the user's revocation is not logged")
	}
}
