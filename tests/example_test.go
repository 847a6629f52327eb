package tests

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestCaddyfileExample runs the demo of the README, Caddyfile.example, as
// it is but for its ports and the cost of its password hashes, and walks
// through it as a user would.
func TestCaddyfileExample(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	c := &Caddy{t: t, Dir: t.TempDir(), AdminPort: freePort(t), SitePort: freePort(t), Extra: map[string]any{}}
	appPort := freePort(t)
	c.Site = fmt.Sprintf("http://localhost:%d", c.SitePort)
	cfg := strings.NewReplacer(
		"admin localhost:2019", fmt.Sprintf("admin 127.0.0.1:%d", c.AdminPort),
		"http://localhost:8080", c.Site,
		"127.0.0.1:8081", fmt.Sprintf("127.0.0.1:%d", appPort),
		"http://:8081", fmt.Sprintf("http://:%d", appPort),
	).Replace(string(src))
	if strings.Contains(cfg, "8080") || strings.Contains(cfg, "8081") || strings.Contains(cfg, "2019") {
		t.Fatal("a port of the example was not replaced; update this test")
	}
	cfg = cheaperHashes(t, cfg, map[string]string{"alice": "wonderland", "bob": "builder"})
	c.file = c.Dir + "/Caddyfile"
	writeFile(t, c.file, cfg)
	t.Cleanup(c.Stop)
	c.start()

	cl := NewClient(t, c.Site)
	r := cl.Get("/", "Accept: text/html")
	if r.StatusCode != 302 || !strings.HasPrefix(r.Header.Get("Location"), "/.session/login") {
		t.Fatalf("the demo's front page without login: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := cl.LoginForm("alice", "wonderland", "/"); r.StatusCode != 303 {
		t.Fatalf("alice / wonderland: %d", r.StatusCode)
	}
	page := string(cl.Get("/").Body)
	if !strings.Contains(page, "Hello, alice") || !strings.Contains(page, "Remote-User: alice") {
		t.Fatalf("the app does not greet alice:\n%s", page)
	}
	cl.Get("/cart/add?item=apple")
	cl.Get("/cart/add?item=pear")
	if page := string(cl.Get("/").Body); !strings.Contains(page, `<output id="cart">apple;pear;</output>`) {
		t.Fatalf("the cart kept in the session:\n%s", page)
	}
	if r := cl.Get("/public/x"); !strings.Contains(string(r.Body), "user: 'alice'") {
		t.Fatalf("the public page: %s", r.Body)
	}

	// The app's own login, through upstream control.
	app := NewClient(t, c.Site)
	req := app.NewRequest("GET", "/app-login", nil)
	req.SetBasicAuth("bob", "wrong")
	if r := app.Do(req); r.StatusCode != 401 || app.SessionCookie() != "" {
		t.Fatalf("the app's login with a wrong password: %d", r.StatusCode)
	}
	req = app.NewRequest("GET", "/app-login", nil)
	req.SetBasicAuth("bob", "builder")
	if r := app.Do(req); r.StatusCode != 303 || app.SessionCookie() == "" {
		t.Fatalf("the app's login: %d", r.StatusCode)
	}
	if page := string(app.Get("/").Body); !strings.Contains(page, "Hello, bob") {
		t.Fatalf("after the app's login:\n%s", page)
	}
	if r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", ""); r.StatusCode != 303 {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	if r := cl.Get("/", "Accept: text/html"); r.StatusCode != 302 {
		t.Fatalf("after logout: %d", r.StatusCode)
	}
}

// cheaperHashes replaces each bcrypt hash in cfg, the word after a user's
// name, with a hash of the same password at the lowest cost. The example's
// cost 14 takes over 20 s per login in a Caddy built with -race on a busy
// machine, near the client's timeout.
func cheaperHashes(t *testing.T, cfg string, passwords map[string]string) string {
	t.Helper()
	hash := regexp.MustCompile(`(\S+)\s+(\$2[aby]\$\d\d\$[./A-Za-z0-9]{53})`)
	return hash.ReplaceAllStringFunc(cfg, func(m string) string {
		parts := hash.FindStringSubmatch(m)
		pw, ok := passwords[parts[1]]
		if !ok {
			t.Fatalf("the example has a hash for %q, whose password this test does not know", parts[1])
		}
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Replace(m, parts[2], string(h), 1)
	})
}
