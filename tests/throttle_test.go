package tests

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

func TestThrottleLetsAnOfficeBehindNATLogIn(t *testing.T) {
	// 50 users log in at the same moment from one IP, with the default
	// limit (5 failures, 20 per IP): none has failed, so all get in.
	const users = 50
	var file strings.Builder
	for i := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprint("password-", i)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&file, "user%d:%s\n", i, h)
	}
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, file.String())
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "users_file "+path)

	start := make(chan struct{})
	codes := make([]int, users)
	var wg sync.WaitGroup
	for i := range users {
		cl := NewClient(t, c.Site)
		wg.Go(func() {
			<-start
			codes[i] = cl.LoginJSON(fmt.Sprint("user", i), fmt.Sprint("password-", i)).StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Errorf("user%d: %d, want 200", i, code)
		}
	}
}

// hangUpLogin sends a login and closes the connection as soon as the
// request is written, without waiting for the answer. The request carries
// the session cookie after many stale ones, each of which costs the
// server an HMAC: the hang-up reaches the server before the session would
// be looked up, whenever that is.
func hangUpLogin(t *testing.T, c *Caddy, cookie, user, password string) {
	t.Helper()
	stale := "caddy_session=" + base64.URLEncoding.EncodeToString([]byte("1|a|b")) + "; "
	cookie = strings.Repeat(stale, 600) + "caddy_session=" + cookie
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.SitePort))
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(conn, "POST /.session/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nCookie: %s\r\nContent-Length: %d\r\n\r\n%s",
		c.SitePort, cookie, len(body), body)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
}

func TestThrottleKeepsTheCountOfAClientThatHangsUp(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 5 1m")
	// A browser with a session (the store is asked for it) guesses
	// alice's password and hangs up on each answer.
	cl := NewClient(t, c.Site)
	cl.MustLogin("bob", bobPassword)
	for range 5 {
		hangUpLogin(t, c, cl.SessionCookie(), "alice", "wrong")
	}
	waitFor(t, 10*time.Second, "the 5 attempts to be answered", func() bool {
		logs := c.Logs()
		return strings.Count(logs, `"msg":"login failed"`)+strings.Count(logs, `"msg":"session store error"`) >= 5
	})
	if r := cl.LoginJSON("alice", alicePassword); r.StatusCode != 429 {
		t.Fatalf("after 5 failures whose clients hung up: %d, want 429", r.StatusCode)
	}
	if strings.Contains(c.Logs(), `"msg":"session store error"`) {
		t.Error("a client that hung up was logged as a store error")
	}
}

func TestThrottleSharedByInstancesThroughRedis(t *testing.T) {
	client, url := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, prefix)
	const secret = "secret shared-by-both-instances-0123456789"
	up := StartUpstream(t)
	a := startSite(t, up, store, secret+"\nlogin_limit 3 1m")
	b := startSite(t, up, store, secret+"\nlogin_limit 3 1m")
	onA, onB := NewClient(t, a.Site), NewClient(t, b.Site)

	for i, cl := range []*Client{onA, onB, onA} {
		if r := cl.LoginJSON("alice", "wrong"); r.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i+1, r.StatusCode)
		}
	}
	for name, cl := range map[string]*Client{"A": onA, "B": onB} {
		if r := cl.LoginJSON("alice", alicePassword); r.StatusCode != 429 {
			t.Fatalf("on %s after 3 failures over two instances: %d, want 429", name, r.StatusCode)
		}
	}
	if r := onB.LoginJSON("bob", bobPassword); r.StatusCode != 200 {
		t.Fatalf("bob from the same IP: %d", r.StatusCode)
	}
	keys, err := client.Keys(context.Background(), prefix+"throttle:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no throttle keys under the store's prefix: %v %v", keys, err)
	}
	for _, k := range keys {
		if ttl := client.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("%s: TTL %v, want at most the window", k, ttl)
		}
	}
}

func TestThrottleSitesDoNotShareLockouts(t *testing.T) {
	up := StartUpstream(t)
	site := `
http://[[.Extra.host]]:[[.SitePort]] {
	session {
		store memory
		user alice [[.Extra.alice]]
		login_limit 2 1m
	}
	reverse_proxy [[.Upstream]]
}
`
	// Two sites whose alice is not the same person (another password). Sites
	// with the very same credentials share one budget: a guess on one is a
	// guess on the other.
	tmpl := strings.ReplaceAll(site, "[[.Extra.host]]", "a.test") +
		strings.ReplaceAll(strings.ReplaceAll(site, "[[.Extra.host]]", "b.test"), "[[.Extra.alice]]", "[[.Extra.bob]]")
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	cl := NewClient(t, c.Site)
	login := func(host, password string) int {
		req := cl.NewRequest("POST", "/.session/login", strings.NewReader(fmt.Sprintf(`{"username":"alice","password":%q}`, password)), "Content-Type: application/json")
		req.Host = fmt.Sprintf("%s:%d", host, c.SitePort)
		return cl.Do(req).StatusCode
	}
	login("a.test", "wrong")
	login("a.test", "wrong")
	if code := login("a.test", alicePassword); code != 429 {
		t.Fatalf("alice on a.test after 2 failures: %d, want 429", code)
	}
	if code := login("b.test", bobPassword); code != 200 {
		t.Fatalf("alice on b.test, locked out of a.test only: %d, want 200", code)
	}
}
