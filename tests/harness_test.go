// Package tests runs edgesession end to end: a real Caddy binary built
// from this checkout, real upstreams, real stores, real clients.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/edgesession/edgesession/sessionstore/storetest"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// caddyBin is the Caddy binary with edgesession, built once by TestMain.
var caddyBin string

// Test users. Their bcrypt cost is the minimum, to keep tests quick; the
// hashes are real bcrypt all the same.
const (
	alicePassword = "wonderland-secret-1"
	bobPassword   = "builder-secret-2"
)

var aliceHash, bobHash string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgesession-tests-")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/caddy")...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	for _, p := range []struct {
		pw   string
		hash *string
	}{{alicePassword, &aliceHash}, {bobPassword, &bobHash}} {
		h, err := bcrypt.GenerateFromPassword([]byte(p.pw), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		*p.hash = string(h)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// What the tests wrote to the shared Redis goes with the run.
	if _, err := storetest.CleanRedis(); err != nil {
		fmt.Fprintf(os.Stderr, "removing the tests' keys (%s*) from %s: %v\n", storetest.RunPrefix(), storetest.RedisURL(), err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Caddy is one Caddy process under test.
type Caddy struct {
	t         testing.TB
	Dir       string // its home, data and config directory
	Site      string // base URL of the site, http://127.0.0.1:port
	SitePort  int
	AdminPort int
	Upstream  string // host:port of the upstream, for templates
	Extra     map[string]any

	cmd  *exec.Cmd
	done chan struct{}
	file string
}

// caddyConfig is what a Caddyfile template is given: [[.Site]],
// [[.Upstream]], [[.Dir]], [[.Extra.name]].
type caddyConfig struct {
	Site, Upstream, Dir string
	SitePort            int
	Extra               map[string]any
}

// globalOptions come first in every test Caddyfile.
const globalOptions = `{
	admin 127.0.0.1:[[.AdminPort]]
	auto_https off
	persist_config off
	[[.Globals]]
}
`

// StartCaddy starts Caddy with the Caddyfile template tmpl (delimiters
// [[ ]], so that Caddy's { } placeholders stay as they are) and waits
// until it is ready (see ready). If another process took one of its ports
// first, it starts it again on other ports, a few times.
func StartCaddy(t testing.TB, upstream, tmpl string, opts ...Option) *Caddy {
	t.Helper()
	c := &Caddy{t: t, Dir: t.TempDir(), Upstream: upstream, Extra: map[string]any{}}
	c.choosePorts()
	for _, o := range opts {
		o(c)
	}
	c.file = filepath.Join(c.Dir, "Caddyfile")
	t.Cleanup(c.Stop) // first, so that a failed start leaves no process
	for attempt := 1; ; attempt++ {
		c.writeConfig(tmpl)
		err := c.tryStart()
		if err == nil {
			return c
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("starting caddy (attempt %d): %v\n%s", attempt, err, c.Logs())
		}
		t.Logf("starting caddy (attempt %d): %v; trying other ports", attempt, err)
		c.choosePorts()
	}
}

// startAttempts bounds how often StartCaddy tries other ports.
const startAttempts = 5

// errPortTaken is why a start failed when another process holds, or
// shares, one of Caddy's ports.
var errPortTaken = errors.New("port taken by another process")

// choosePorts gives Caddy an admin and a site port of its own.
func (c *Caddy) choosePorts() {
	c.AdminPort, c.SitePort = freePort(c.t), freePort(c.t)
	c.Site = fmt.Sprintf("http://127.0.0.1:%d", c.SitePort)
}

// Option changes how StartCaddy starts Caddy.
type Option func(*Caddy)

// WithGlobals adds lines to the global options block.
func WithGlobals(lines string) Option { return func(c *Caddy) { c.Extra["globals"] = lines } }

// WithDir makes Caddy use dir as its home (to share a data directory).
func WithDir(dir string) Option { return func(c *Caddy) { c.Dir = dir } }

// WithExtra makes v available to the template as [[.Extra.name]].
func WithExtra(name string, v any) Option { return func(c *Caddy) { c.Extra[name] = v } }

func (c *Caddy) render(tmpl string) string {
	globals, _ := c.Extra["globals"].(string)
	full := strings.Replace(globalOptions, "[[.AdminPort]]", fmt.Sprint(c.AdminPort), 1)
	full = strings.Replace(full, "[[.Globals]]", globals, 1)
	tp, err := template.New("Caddyfile").Delims("[[", "]]").Option("missingkey=error").Parse(full + tmpl)
	if err != nil {
		c.t.Fatal(err)
	}
	var buf bytes.Buffer
	err = tp.Execute(&buf, caddyConfig{Site: c.Site, Upstream: c.Upstream, Dir: c.Dir, SitePort: c.SitePort, Extra: c.Extra})
	if err != nil {
		c.t.Fatal(err)
	}
	return buf.String()
}

func (c *Caddy) writeConfig(tmpl string) {
	if err := os.WriteFile(c.file, []byte(c.render(tmpl)), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Caddy) env() []string {
	env := []string{"HOME=" + c.Dir, "XDG_DATA_HOME=" + filepath.Join(c.Dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(c.Dir, "config"), "PATH=" + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EDGESESSION_") || strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// start starts Caddy on the ports it has, or fails the test.
func (c *Caddy) start() {
	c.t.Helper()
	if err := c.tryStart(); err != nil {
		c.t.Fatalf("starting caddy: %v\n%s", err, c.Logs())
	}
}

// tryStart starts Caddy and waits until it is ready; if it is not, it
// kills it and says why (errPortTaken if another process holds a port).
func (c *Caddy) tryStart() error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, "caddy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd) // this run's part of the log
	c.cmd = exec.Command(caddyBin, "run", "--config", c.file, "--adapter", "caddyfile")
	c.cmd.Env = c.env()
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); logf.Close(); close(c.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			if log := c.Logs(); int64(len(log)) >= logStart && strings.Contains(log[logStart:], "address already in use") {
				return fmt.Errorf("%w: caddy exited: address already in use", errPortTaken)
			}
			return errors.New("caddy exited while starting")
		default:
		}
		err := c.ready()
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			c.Kill()
			return err
		}
		if time.Now().After(deadline) {
			c.Kill()
			return fmt.Errorf("caddy not ready in 60s: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyClient asks Caddy's admin endpoint whether it is ready.
var readyClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// ready proves that the Caddy on the ports is this process, ready to
// serve: nobody else listens on its admin or site port (where the system
// shows that: Caddy listens with SO_REUSEPORT, so a second Caddy on the
// same port would share it without an error), its admin endpoint answers
// with a config that listens on the site's port (the admin endpoint
// answers only once that config runs), and the site port accepts
// connections.
func (c *Caddy) ready() error {
	if err := c.listensAlone(c.AdminPort); err != nil {
		return err
	}
	resp, err := readyClient.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", c.AdminPort))
	if err != nil {
		return err
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return fmt.Errorf("admin endpoint: GET /config/: %d %v", resp.StatusCode, err)
	}
	site := false
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, addr := range srv.Listen {
			site = site || strings.HasSuffix(addr, fmt.Sprintf(":%d", c.SitePort))
		}
	}
	if !site {
		return fmt.Errorf("the config at the admin endpoint does not listen on port %d", c.SitePort)
	}
	if err := c.listensAlone(c.SitePort); err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.SitePort), 5*time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// listensAlone checks that this Caddy, and no other process, listens on
// port (where the system lets us see it).
func (c *Caddy) listensAlone(port int) error {
	ours, others, known := portListeners(port, c.cmd.Process.Pid)
	switch {
	case !known:
		return nil
	case others > 0:
		return fmt.Errorf("%w: %d other sockets listen on port %d", errPortTaken, others, port)
	case ours == 0:
		return fmt.Errorf("caddy does not listen on port %d yet", port)
	}
	return nil
}

// Reload loads a new Caddyfile through the admin API, as `caddy reload`
// does, and returns how long it took.
func (c *Caddy) Reload(tmpl string) time.Duration {
	c.t.Helper()
	d, err := c.TryReload(tmpl)
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// TryReload is Reload that returns the error.
func (c *Caddy) TryReload(tmpl string) (time.Duration, error) {
	c.writeConfig(tmpl)
	start := time.Now()
	out, err := exec.Command(caddyBin, "reload", "--config", c.file, "--adapter", "caddyfile", "--address", fmt.Sprintf("127.0.0.1:%d", c.AdminPort), "--force").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("reload: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

// Kill stops Caddy with SIGKILL: no cleanup, as in a crash.
func (c *Caddy) Kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		<-c.done
	}
}

// Restart kills Caddy and starts it again with the same config,
// directories and ports (which freePort keeps reserved meanwhile).
func (c *Caddy) Restart() {
	c.Kill()
	c.start()
}

// Stop stops Caddy gracefully.
func (c *Caddy) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.Kill()
	}
	if raceEnabled && strings.Contains(c.Logs(), "WARNING: DATA RACE") {
		c.t.Errorf("the Caddy process reported a data race:\n%s", c.Logs())
	}
}

// Logs returns everything Caddy logged so far.
func (c *Caddy) Logs() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "caddy.log"))
	return string(b)
}

// Upstream is the app behind Caddy. It answers every request with a JSON
// echo of what it received and counts requests. Query parameters drive it:
// h=Name:Value adds a response header.
type Upstream struct {
	*http.Server
	Addr     string
	Requests atomic.Int64
	// Hold, if set, is waited on by /hold before answering.
	mu   sync.Mutex
	hold chan struct{}
	// Hooks serve paths of their own (SSE, websockets).
	Hooks map[string]http.HandlerFunc
}

// Echo is what the upstream answers.
type Echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
}

// StartUpstream starts an echo upstream on a free port.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{Addr: l.Addr().String(), Hooks: map[string]http.HandlerFunc{}}
	u.Server = &http.Server{Handler: http.HandlerFunc(u.serve)}
	go u.Serve(l)
	t.Cleanup(func() { u.Close() })
	return u
}

// HoldNext makes the next requests to /hold wait until release is called.
func (u *Upstream) HoldNext() (release func()) {
	ch := make(chan struct{})
	u.mu.Lock()
	u.hold = ch
	u.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.Requests.Add(1)
	if hook, ok := u.Hooks[r.URL.Path]; ok {
		hook(w, r)
		return
	}
	if r.URL.Path == "/hold" {
		u.mu.Lock()
		ch := u.hold
		u.mu.Unlock()
		if ch != nil {
			<-ch
		}
	}
	for _, h := range r.URL.Query()["h"] {
		name, value, _ := strings.Cut(h, ":")
		w.Header().Add(name, value)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Echo{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: r.Header})
}

// Client is a browser-like HTTP client with a cookie jar that does not
// follow redirects.
type Client struct {
	*http.Client
	t    testing.TB
	Base string
	// Allow5xx lets responses of 500 and above through; otherwise they
	// fail the test, as a 5xx is never an answer edgesession means to give
	// except 503 while its store is down.
	Allow5xx bool
}

// NewClient returns a client for the site at base.
func NewClient(t testing.TB, base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{
		t:    t,
		Base: base,
		Client: &http.Client{
			Jar:           jar,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Response is a response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// Echo decodes the upstream's echo; it fails the test if the response did
// not come from the upstream.
func (r *Response) Echo(t testing.TB) Echo {
	t.Helper()
	var e Echo
	if r.StatusCode != 200 || json.Unmarshal(r.Body, &e) != nil || e.Headers == nil {
		t.Fatalf("want the upstream's echo, got %d: %s", r.StatusCode, r.Body)
	}
	return e
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("want JSON, got %d %q: %v", r.StatusCode, r.Body, err)
	}
	return m
}

// Do sends req and reads the whole response.
func (c *Client) Do(req *http.Request) *Response {
	c.t.Helper()
	resp, err := c.Client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode >= 500 && !c.Allow5xx {
		c.t.Errorf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	return &Response{Response: resp, Body: body}
}

// NewRequest makes a request to the site; headers are "Name: value"
// strings, sent with the name exactly as written.
func (c *Client) NewRequest(method, path string, body io.Reader, headers ...string) *http.Request {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.Base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			c.t.Fatalf("bad header %q", h)
		}
		req.Header[name] = append(req.Header[name], strings.TrimSpace(value))
	}
	return req
}

// Get sends a GET.
func (c *Client) Get(path string, headers ...string) *Response {
	c.t.Helper()
	return c.Do(c.NewRequest("GET", path, nil, headers...))
}

// Post sends a POST with a body of the given content type.
func (c *Client) Post(path, contentType, body string, headers ...string) *Response {
	c.t.Helper()
	return c.Do(c.NewRequest("POST", path, strings.NewReader(body), append(headers, "Content-Type: "+contentType)...))
}

// LoginJSON logs in with the JSON API.
func (c *Client) LoginJSON(user, password string, headers ...string) *Response {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return c.Post("/.session/login", "application/json", string(b), headers...)
}

// MustLogin logs in and fails the test if that does not work.
func (c *Client) MustLogin(user, password string) {
	c.t.Helper()
	if r := c.LoginJSON(user, password); r.StatusCode != 200 {
		c.t.Fatalf("login as %s: %d %s", user, r.StatusCode, r.Body)
	}
}

// LoginForm logs in with the HTML form.
func (c *Client) LoginForm(user, password, redirect string, headers ...string) *Response {
	c.t.Helper()
	form := url.Values{"username": {user}, "password": {password}, "redirect": {redirect}}
	return c.Post("/.session/login", "application/x-www-form-urlencoded", form.Encode(), headers...)
}

// LogoutJSON logs out as a JSON client does (answered 204).
func (c *Client) LogoutJSON() *Response {
	c.t.Helper()
	return c.Post("/.session/logout", "application/json", "", "Accept: application/json")
}

// SessionCookie returns the session cookie's value in the jar, or "".
func (c *Client) SessionCookie() string {
	u, _ := url.Parse(c.Base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "caddy_session" {
			return ck.Value
		}
	}
	return ""
}

// SetSessionCookie puts value in the jar as the session cookie.
func (c *Client) SetSessionCookie(value string) {
	u, _ := url.Parse(c.Base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "caddy_session", Value: value, Path: "/"}})
}

// Whoami returns the status of <prefix>/whoami and the user it names.
func (c *Client) Whoami() (int, string) {
	c.t.Helper()
	r := c.Get("/.session/whoami")
	if r.StatusCode != 200 {
		return r.StatusCode, ""
	}
	user, _ := r.JSON(c.t)["user"].(string)
	return r.StatusCode, user
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
