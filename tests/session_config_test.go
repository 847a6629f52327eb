// Session tests of configuration: placeholders, users files, hashes, logs, JSON config.

package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPlaceholdersAndAccessLog(t *testing.T) {
	up := StartUpstream(t)
	const tmpl = `
[[.Site]] {
	log {
		output file [[.Dir]]/access.log
		format json
	}
	session {
		store memory
		user alice [[.Extra.alice]]
		upstream_control on
	}
	reverse_proxy [[.Upstream]] {
		header_up X-From-Placeholders "{http.session.user}|{http.session.data.cart}|{http.auth.user.id}"
	}
}
`
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash))
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cl.Get("/add?h=X-Session-Set-Cart:pear")
	e := cl.Get("/page").Echo(t)
	if got := e.Headers["X-From-Placeholders"]; len(got) != 1 || got[0] != "alice|pear|alice" {
		t.Fatalf("placeholders gave %q", got)
	}
	waitFor(t, 5*time.Second, "the access log to show user_id", func() bool {
		return strings.Contains(readFile(t, c.Dir+"/access.log"), `"user_id":"alice"`)
	})
}

func TestUsersFileIsReadAgainWhenItChanges(t *testing.T) {
	up := StartUpstream(t)
	dir := t.TempDir()
	path := dir + "/users"
	writeFile(t, path, "# users\nbob:"+bobHash+"\n")
	const tmpl = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]]
		users_file [[.Extra.file]]
	}
	reverse_proxy [[.Upstream]]
}
`
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("file", path))
	if r := NewClient(t, c.Site).LoginJSON("bob", bobPassword); r.StatusCode != 200 {
		t.Fatalf("bob from users_file: %d", r.StatusCode)
	}
	// Carol is added and bob removed, with no reload of Caddy.
	time.Sleep(10 * time.Millisecond)
	writeFile(t, path, "carol:"+aliceHash+"\n\n")
	if r := NewClient(t, c.Site).LoginJSON("carol", alicePassword); r.StatusCode != 200 {
		t.Fatalf("carol after the file changed: %d", r.StatusCode)
	}
	if r := NewClient(t, c.Site).LoginJSON("bob", bobPassword); r.StatusCode != 401 {
		t.Fatalf("bob after removal from the file: %d", r.StatusCode)
	}
	// A broken file keeps the users read before, and says so in the log.
	writeFile(t, path, "carol:"+aliceHash+"\nthis line is broken\n")
	if r := NewClient(t, c.Site).LoginJSON("carol", alicePassword); r.StatusCode != 200 {
		t.Fatalf("carol after the file broke: %d", r.StatusCode)
	}
	if !strings.Contains(c.Logs(), "cannot read users file") {
		t.Error("a broken users file was not logged")
	}
	// Inline users are there throughout.
	if r := NewClient(t, c.Site).LoginJSON("alice", alicePassword); r.StatusCode != 200 {
		t.Fatalf("inline alice: %d", r.StatusCode)
	}
}

func TestArgon2idUser(t *testing.T) {
	up := StartUpstream(t)
	out := runCaddy(t, "hash-password", "--algorithm", "argon2id", "--plaintext", "argon-pass")
	c := StartCaddy(t, up.Addr, `
[[.Site]] {
	session {
		store memory
		user dora [[.Extra.hash]]
	}
	reverse_proxy [[.Upstream]]
}
`, WithExtra("hash", strings.TrimSpace(out)))
	cl := NewClient(t, c.Site)
	if r := cl.LoginJSON("dora", "wrong"); r.StatusCode != 401 {
		t.Fatalf("argon2id wrong password: %d", r.StatusCode)
	}
	cl.MustLogin("dora", "argon-pass")
	if _, user := cl.Whoami(); user != "dora" {
		t.Fatalf("whoami: %q", user)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	up := StartUpstream(t)
	const secret = "this-is-the-configured-secret-0123456789"
	c := startSite(t, up, "memory", "secret "+secret+"\nupstream_control on\nlog_marker_unused_line", WithExtra("more", "secret "+secret+"\nupstream_control on"))
	cl := NewClient(t, c.Site)
	cl.LoginJSON("alice", "a-wrong-password-xyz")
	cl.LoginJSON("ghost", "ghost-password-xyz")
	cl.MustLogin("alice", alicePassword)
	cookie := cl.SessionCookie()
	cl.Get("/x?h=X-Session-Set-K:v")
	cl.Post("/.session/logout", "application/x-www-form-urlencoded", "")
	logs := c.Logs()
	for _, leak := range []string{alicePassword, "a-wrong-password-xyz", "ghost-password-xyz", cookie, secret} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	for _, want := range []string{`"msg":"login","user":"alice","remote_ip":"127.0.0.1"`, `"msg":"login failed","user":"alice"`, `"msg":"logout","user":"alice"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

func TestJSONConfig(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, "[[.Site]] {\n\trespond \"replaced below\"\n}\n")
	cfg := fmt.Sprintf(`{
  "admin": {"listen": "127.0.0.1:%d"},
  "apps": {"http": {"servers": {"s": {
    "listen": ["127.0.0.1:%d"],
    "automatic_https": {"disable": true},
    "routes": [{"handle": [
      {"handler": "session",
       "store": {"backend": "memory"},
       "users": [{"name": "alice", "hash": %q}],
       "public": [{"path": ["/open"]}],
       "idle_timeout": "5m",
       "cookie": {"name": "json_session", "same_site": "strict"}},
      {"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
    ]}]
  }}}}
}`, c.AdminPort, c.SitePort, aliceHash, up.Addr)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/load", c.AdminPort), "application/json", strings.NewReader(cfg))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("loading JSON config: %v %v", err, resp)
	}
	cl := NewClient(t, c.Site)
	if r := cl.Get("/open"); r.StatusCode != 200 {
		t.Fatalf("public path in JSON config: %d", r.StatusCode)
	}
	r := cl.LoginJSON("alice", alicePassword)
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Set-Cookie"), "json_session=") || !strings.Contains(r.Header.Get("Set-Cookie"), "SameSite=Strict") {
		t.Fatalf("JSON-configured login: %d %q", r.StatusCode, r.Header.Get("Set-Cookie"))
	}
}
