// Package tests runs edgesession end to end: a real Caddy binary built
// from this checkout, real upstreams, real stores, real clients.
package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/edgesession/edgesession/sessionstore/storetest"

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
