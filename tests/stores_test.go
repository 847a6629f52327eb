package tests

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/edgesession/edgesession/sessionstore/storetest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server process that the test owns, so that it
// can stop, pause and start it.
type RedisServer struct {
	t    testing.TB
	Port int
	proc *redisProcess
}

func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found (CI=true: tests may not skip)")
		}
		t.Skip("SKIP: redis-server not found")
	}
	r := &RedisServer{t: t}
	t.Cleanup(r.Stop)
	for attempt := 1; ; attempt++ {
		r.Port = freePort(t)
		err := r.tryStart()
		if err == nil {
			return r
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("starting redis-server (attempt %d): %v", attempt, err)
		}
	}
}

func (r *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts redis-server again on its port, with nothing kept on disk.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.tryStart(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
}

func (r *RedisServer) tryStart() (err error) {
	r.proc, err = startRedis(r.t, r.Port, "--port", fmt.Sprint(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	return err
}

// Stop kills redis-server.
func (r *RedisServer) Stop() {
	if r.proc != nil {
		r.proc.kill()
		r.proc = nil
	}
}

// Pause freezes redis-server (SIGSTOP): connections hang, as on a network
// partition. Resume thaws it.
func (r *RedisServer) Pause()  { r.proc.cmd.Process.Signal(syscall.SIGSTOP) }
func (r *RedisServer) Resume() { r.proc.cmd.Process.Signal(syscall.SIGCONT) }

// redisProcess is a redis-server that startRedis started.
type redisProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string // its output
}

// kill kills it (paused or not) and waits until it is gone.
func (p *redisProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Kill()
	<-p.done
}

// startRedis starts redis-server with args (which make it listen on port)
// in a directory of its own, and waits until the Redis answering on port
// is this process: INFO gives its process ID. If it exits because the
// port is in use, the error is errPortTaken. The caller kills it.
func startRedis(t testing.TB, port int, args ...string) (*redisProcess, error) {
	dir := t.TempDir()
	p := &redisProcess{cmd: exec.Command("redis-server", args...), done: make(chan struct{}), log: filepath.Join(dir, "redis.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			if strings.Contains(string(out), "already in use") {
				return nil, fmt.Errorf("%w: redis-server on port %d: %s", errPortTaken, port, lastLine(out))
			}
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, out)
		default:
		}
		pid, err := redisPID(port)
		switch {
		case err == nil && pid == p.cmd.Process.Pid:
			return p, nil
		case err == nil:
			p.kill()
			return nil, fmt.Errorf("%w: another Redis (pid %d) answers on port %d", errPortTaken, pid, port)
		case time.Now().After(deadline):
			p.kill()
			return nil, fmt.Errorf("redis-server on port %d not ready in 10s: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisPID asks the Redis on port for its process ID.
func redisPID(port int) (int, error) {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("INFO names no process_id")
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// redisSite is the store of a site whose every request asks Redis (no
// local cache), so that an outage shows at the very next request; the
// cached store's outage is TestRedisCacheOutageFailsClosed's.
func redisSite(url string) string {
	return fmt.Sprintf("redis %s {\n\t\t\tdial_timeout 300ms\n\t\t\tcache off\n\t\t}", url)
}

func TestRedisOutageFailsClosedAndRecovers(t *testing.T) {
	rs := StartRedisServer(t)
	up := StartUpstream(t)
	c := startSite(t, up, redisSite(rs.URL()), "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cl.Allow5xx = true

	checkDown := func(t *testing.T) {
		t.Helper()
		before := up.Requests.Load()
		if r := cl.Get("/private"); r.StatusCode != 503 {
			t.Fatalf("protected route with the store down: %d, want 503", r.StatusCode)
		}
		// Without a cookie the store is not asked: the answer is the
		// usual "log in" (and the login then gets 503).
		if r := NewClient(t, c.Site).Get("/private"); r.StatusCode != 401 {
			t.Fatalf("protected route, no cookie, store down: %d, want 401", r.StatusCode)
		}
		if up.Requests.Load() != before {
			t.Fatal("a protected request reached the upstream while the store was down")
		}
		r := cl.Get("/public/page")
		if r.StatusCode != 200 {
			t.Fatalf("public route with the store down: %d, want 200", r.StatusCode)
		}
		if _, ok := r.Echo(t).Headers["X-Session-User"]; ok {
			t.Fatal("a public route carried a user while the store was down")
		}
		other := NewClient(t, c.Site)
		other.Allow5xx = true
		if r := other.LoginJSON("bob", bobPassword); r.StatusCode != 503 || r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("login with the store down: %d %q, want 503 and no cookie", r.StatusCode, r.Header.Get("Set-Cookie"))
		}
		if r := cl.LogoutJSON(); r.StatusCode != 503 {
			t.Fatalf("logout with the store down: %d, want 503 (the session could not be deleted)", r.StatusCode)
		}
		if !strings.Contains(c.Logs(), `"msg":"session store error"`) {
			t.Fatal("the store failure was not logged")
		}
	}

	t.Run("paused (timeouts)", func(t *testing.T) {
		rs.Pause()
		checkDown(t)
		rs.Resume()
		// A timeout never deleted the session: it is there again.
		waitFor(t, 10*time.Second, "the session to come back", func() bool {
			code, _ := cl.Whoami()
			return code == 200
		})
	})
	t.Run("stopped and started", func(t *testing.T) {
		rs.Stop()
		checkDown(t)
		rs.Start() // an empty Redis: sessions are gone, logins work again
		waitFor(t, 10*time.Second, "logins to work again", func() bool {
			retry := NewClient(t, c.Site)
			retry.Allow5xx = true
			return retry.LoginJSON("bob", bobPassword).StatusCode == 200
		})
		cl2 := NewClient(t, c.Site)
		cl2.MustLogin("alice", alicePassword)
		if e := cl2.Get("/private").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
			t.Fatal("after recovery the upstream does not see the user")
		}
	})
}

func TestTwoCaddyInstancesShareRedis(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	// Without the local cache, every request asks Redis: a logout is seen
	// everywhere at the next request. (With the cache, the default, within
	// its max age: TestTwoCaddyInstancesShareRedisCache.)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t\tcache off\n\t\t}", url, storetest.RedisPrefix(t))
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)

	onA := NewClient(t, a.Site)
	onA.MustLogin("alice", alicePassword)
	cookie := onA.SessionCookie()

	onB := NewClient(t, b.Site)
	onB.SetSessionCookie(cookie)
	if e := onB.Get("/private").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
		t.Fatal("a login on A is not valid on B")
	}
	// Logout on B is effective on A at once.
	if r := onB.LogoutJSON(); r.StatusCode != 204 {
		t.Fatalf("logout on B: %d", r.StatusCode)
	}
	if r := onA.Get("/private"); r.StatusCode != 401 {
		t.Fatalf("A still accepts a session logged out on B: %d", r.StatusCode)
	}
}

func TestCookieStore(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "cookie", "upstream_control on")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cl.Get("/x?h=X-Session-Set-Cart:apple")
	if e := cl.Get("/x").Echo(t); e.Headers["X-Session-Data-Cart"][0] != "apple" {
		t.Fatal("the cookie store lost data")
	}
	if len(cl.SessionCookie()) < 100 {
		t.Fatal("the cookie does not carry the session")
	}

	t.Run("too large is an error, and the previous cookie stays", func(t *testing.T) {
		before := cl.SessionCookie()
		big := strings.Repeat("x", 3000)
		r := cl.Get("/x?h=X-Session-Set-A:" + big + "&h=X-Session-Set-B:" + big)
		if r.StatusCode != 200 {
			t.Fatalf("the response itself failed: %d", r.StatusCode)
		}
		if r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("a session too large for its cookie was set: %.80q", r.Header.Get("Set-Cookie"))
		}
		if cl.SessionCookie() != before {
			t.Fatal("the previous cookie was replaced")
		}
		if !strings.Contains(c.Logs(), "session does not fit in its cookie") {
			t.Fatal("the dropped write was not logged")
		}
		if e := cl.Get("/x").Echo(t); e.Headers["X-Session-Data-Cart"][0] != "apple" || e.Headers["X-Session-Data-A"] != nil {
			t.Fatal("the session changed")
		}
	})

	t.Run("logout cannot revoke a copied cookie (documented)", func(t *testing.T) {
		copied := cl.SessionCookie()
		cl.LogoutJSON()
		if code, _ := cl.Whoami(); code != 401 {
			t.Fatal("logout did not clear the browser's cookie")
		}
		thief := NewClient(t, c.Site)
		thief.SetSessionCookie(copied)
		if code, _ := thief.Whoami(); code != 200 {
			t.Fatalf("with the cookie store a copied cookie stays valid until it expires; got %d (update the README if this changed)", code)
		}
	})
}
