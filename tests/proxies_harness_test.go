package tests

import (
	"bytes"
	"context"
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
)

// The real proxies in front of edgesession's auth endpoint (SPEC §14):
// nginx's auth_request, Traefik's ForwardAuth and Caddy's forward_auth.
// Their configurations are the files in testdata/proxies, the very text
// the README shows (proxies_docs_test.go holds the two together): each is
// a template whose [[.Name]] fields are the addresses, which the README
// fills with its own (proxyDocVars).

// proxyVars fill the templates in testdata/proxies.
type proxyVars struct {
	Listen   string // nginx's listen, Traefik's entry point address
	Site     string // the forward_auth Caddy's site address
	Dynamic  string // Traefik's dynamic configuration file
	Auth     string // the auth Caddy, host:port
	App      string // the app, host:port
	AuthPort string // the auth Caddy's port
	Alice    string // password hashes
	Bob      string
}

// proxyDocVars are the addresses the README's configurations name.
var proxyDocVars = proxyVars{
	Listen:   "80",
	Site:     "app.example.com",
	Dynamic:  "/etc/traefik/dynamic.yml",
	Auth:     "127.0.0.1:9000",
	App:      "127.0.0.1:3000",
	AuthPort: "9000",
	Alice:    "$argon2id$v=19$m=47104,t=1,p=1$A/zo8ePO4g0TOFfdJvP1LQ$C41tsR4THwbIdNu/ReWnlVbqXJ+4XGTyi87AfaSGbCg",
	Bob:      "$argon2id$v=19$m=47104,t=1,p=1$A/zo8ePO4g0TOFfdJvP1LQ$C41tsR4THwbIdNu/ReWnlVbqXJ+4XGTyi87AfaSGbCg",
}

// proxyDocVarsFor is proxyDocVars with Listen as the README shows it for
// the file (Traefik's entry point names a port with a colon).
func proxyDocVarsFor(file string) proxyVars {
	v := proxyDocVars
	if strings.HasPrefix(file, "traefik") {
		v.Listen = ":80"
	}
	return v
}

// proxyHost is the host name every proxy serves the app on; the test's
// client dials the proxy for it whatever the port.
const proxyHost = "app.example.com"

// renderProxyConfig fills testdata/proxies/<file> with v.
func renderProxyConfig(t testing.TB, file string, v proxyVars) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "proxies", file))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := template.New(file).Delims("[[", "]]").Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tp.Execute(&buf, v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// authSite is the Caddy with edgesession's auth endpoint, and the app.
type authSite struct {
	caddy *Caddy
	up    *Upstream
	addr  string // 127.0.0.1:port
}

// startAuthSite starts the app and the auth Caddy of auth.Caddyfile: its
// global options go to the harness's global block, its port is the
// harness's.
func startAuthSite(t *testing.T) *authSite {
	t.Helper()
	up := StartUpstream(t)
	text := renderProxyConfig(t, "auth.Caddyfile", proxyVars{AuthPort: "[[.SitePort]]", Alice: aliceHash, Bob: bobHash})
	rest, ok := strings.CutPrefix(text, "{\n")
	globals, site, ok2 := strings.Cut(rest, "\n}\n")
	if !ok || !ok2 {
		t.Fatal("testdata/proxies/auth.Caddyfile does not start with a global options block")
	}
	c := StartCaddy(t, up.Addr, site, WithGlobals(globals))
	return &authSite{caddy: c, up: up, addr: fmt.Sprintf("127.0.0.1:%d", c.SitePort)}
}

// proxyClient is a browser-like client (cookie jar, no redirects
// followed) of http://app.example.com, whose connections all go to the
// proxy at addr.
func proxyClient(t *testing.T, addr string) *Client {
	cl := NewClient(t, "http://"+proxyHost)
	var d net.Dialer
	cl.Client.Transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
		DisableKeepAlives: true,
	}
	return cl
}

// waitForProxy waits until the proxy at addr serves edgesession's login
// page for app.example.com (so its routes to the auth Caddy are up), or
// the process exits, or 60 s pass.
func waitForProxy(t *testing.T, name, addr string, exited <-chan struct{}, logs func() string) {
	t.Helper()
	cl := proxyClient(t, addr)
	cl.Timeout = 2 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited while starting:\n%s", name, logs())
		default:
		}
		req, _ := http.NewRequest("GET", cl.Base+"/.session/login", nil)
		req.Header.Set("Accept", "text/html")
		if resp, err := cl.Client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Contains(body, []byte("<form")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve the login page at %s after 60s:\n%s", name, addr, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startFront starts a proxy binary in a process group of its own, killed
// at cleanup, and waits for it as waitForProxy does.
func startFront(t *testing.T, name, addr string, cmd *exec.Cmd) {
	t.Helper()
	exited, log := startProcessGroup(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, log.String())
		}
	})
	waitForProxy(t, name, addr, exited, log.String)
}

// nginxBinary is Debian's nginx (package nginx; .ci/run installs it), with
// the auth_request module.
func nginxBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		missingTool(t, fmt.Sprintf("nginx not found (PATH, /usr/sbin/nginx): apt-get install nginx (%v)", err))
	}
	if !bytes.Contains(out, []byte("--with-http_auth_request_module")) {
		missingTool(t, bin+" lacks the auth_request module: install Debian's nginx")
	}
	return bin
}

// startNginx runs nginx (not the system service: a prefix, config and
// pid of its own, in the foreground) with nginx.conf's server block, and
// returns the address it listens on.
func startNginx(t *testing.T, auth *authSite) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	server := renderProxyConfig(t, "nginx.conf", proxyVars{Listen: addr, Auth: auth.addr, App: auth.up.Addr})
	writeFile(t, filepath.Join(dir, "server.conf"), server)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // the workers may then use the test's temp dir
	}
	main := fmt.Sprintf(`%sworker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events {
	worker_connections 128;
}
http {
	access_log %[2]s/access.log;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	include %[2]s/server.conf;
}
`, user, dir)
	writeFile(t, filepath.Join(dir, "nginx.conf"), main)
	if out, err := exec.Command(bin, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx's error.log:\n%s", b)
		}
	})
	startFront(t, "nginx", addr, cmd)
	return addr
}

// traefikVersion is the Traefik .ci/traefik.sh builds.
const traefikVersion = "v3.7.13"

// traefikBinary is $EDGESESSION_TRAEFIK (.ci/run sets it), else the one
// .ci/traefik.sh left in its cache.
func traefikBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("EDGESESSION_TRAEFIK")
	if bin == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		bin = filepath.Join(cache, "edgesession", "traefik-"+traefikVersion, "traefik")
	}
	if fi, err := os.Stat(bin); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return bin
	}
	missingTool(t, fmt.Sprintf("Traefik %s not found at %s: build it with .ci/traefik.sh (or set EDGESESSION_TRAEFIK)", traefikVersion, bin))
	return ""
}

// startTraefik runs Traefik with traefik-static.yml and the file
// provider's traefik.yml, and returns the address it listens on.
func startTraefik(t *testing.T, auth *authSite) string {
	t.Helper()
	bin := traefikBinary(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := proxyVars{Listen: addr, Dynamic: filepath.Join(dir, "dynamic.yml"), Auth: auth.addr, App: auth.up.Addr}
	writeFile(t, v.Dynamic, renderProxyConfig(t, "traefik.yml", v))
	static := filepath.Join(dir, "traefik.yml")
	writeFile(t, static, renderProxyConfig(t, "traefik-static.yml", v))
	cmd := exec.Command(bin, "--configFile="+static)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	startFront(t, "traefik", addr, cmd)
	return addr
}

// startForwardAuthCaddy runs a second Caddy with forward_auth.Caddyfile
// and returns the address it listens on.
func startForwardAuthCaddy(t *testing.T, auth *authSite) string {
	t.Helper()
	tmpl := renderProxyConfig(t, "forward_auth.Caddyfile", proxyVars{Site: "http://" + proxyHost + ":[[.SitePort]]", Auth: auth.addr, App: auth.up.Addr})
	c := StartCaddy(t, auth.up.Addr, tmpl)
	addr := fmt.Sprintf("127.0.0.1:%d", c.SitePort)
	waitForProxy(t, "caddy (forward_auth)", addr, make(chan struct{}), c.Logs)
	return addr
}

// untrustedClient talks to addr from 127.0.0.2, an address outside the
// auth Caddy's trusted_proxies.
func untrustedClient(t *testing.T, base string) *Client {
	cl := NewClient(t, base)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	cl.Client.Transport = &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	return cl
}
