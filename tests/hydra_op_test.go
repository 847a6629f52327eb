package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Ory Hydra (OpenID Certified) as the provider, for the interoperability
// tests in hydra_test.go: the real server, built from its module by
// .ci/hydra.sh, run in memory, with a login and consent app of ours that
// talks to Hydra's admin API over plain HTTP and JSON, as any Hydra
// deployment's login app does.

// hydraVersion is the Hydra the tests run; .ci/hydra.sh builds it.
const hydraVersion = "v2.3.0"

// hydraBinary is the Hydra binary: $EDGESESSION_HYDRA (.ci/run sets it),
// else the one .ci/hydra.sh left in its cache. Without one the test fails
// under CI=true, and is skipped (saying how to build it) otherwise.
func hydraBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("EDGESESSION_HYDRA")
	if bin == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		bin = filepath.Join(cache, "edgesession", "hydra-"+hydraVersion, "hydra")
	}
	if fi, err := os.Stat(bin); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return bin
	}
	msg := fmt.Sprintf("Ory Hydra %s not found at %s: build it with .ci/hydra.sh (or set EDGESESSION_HYDRA)", hydraVersion, bin)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// hydraUser is a user of the login app.
type hydraUser struct {
	password string
	claims   map[string]any // into the ID token (and userinfo)
}

var hydraUsers = map[string]hydraUser{
	// The subject is not the user name: the name comes from
	// preferred_username, as edgesession's default username_claim says.
	"u-1001": {"alice-pw", map[string]any{"preferred_username": "alice", "name": "Alice Liddell",
		"email": "alice@example.com", "email_verified": true, "groups": []string{"staff", "ops"}}},
	"u-1002": {"bob-pw", map[string]any{"preferred_username": "bob", "name": "Bob Builder",
		"email": "bob@example.com", "email_verified": true, "groups": []string{"guests"}}},
}

// Hydra is a running Hydra with its login and consent app.
type Hydra struct {
	t      *testing.T
	Issuer string // the public endpoint, http://127.0.0.1:port
	Admin  string // the admin endpoint
	app    *httptest.Server
	log    string // Hydra's log file

	mu      sync.Mutex
	forms   int               // login forms shown; guarded by mu
	sids    map[string]string // subject → login session ID of its last consent; guarded by mu
	logouts int               // logout requests accepted; guarded by mu
}

// StartHydra starts the login app and Hydra (in memory, dev mode: plain
// HTTP on 127.0.0.1), and waits until Hydra is ready.
func StartHydra(t *testing.T) *Hydra {
	t.Helper()
	bin := hydraBinary(t)
	h := &Hydra{t: t, sids: map[string]string{}}
	h.app = httptest.NewServer(http.HandlerFunc(h.serveApp))
	t.Cleanup(h.app.Close)

	public, admin := freePort(t), freePort(t)
	h.Issuer = fmt.Sprintf("http://127.0.0.1:%d", public)
	h.Admin = fmt.Sprintf("http://127.0.0.1:%d", admin)
	dir := t.TempDir()
	h.log = filepath.Join(dir, "hydra.log")
	logf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{
		"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"DSN=memory",
		"SQA_OPT_OUT=true", // no usage reports: the tests have no network
		"LOG_LEVEL=warn",
		"SECRETS_SYSTEM=" + rand.Text() + rand.Text(),
		"SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_PUBLIC_PORT=%d", public),
		"SERVE_ADMIN_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", admin),
		"URLS_SELF_ISSUER=" + h.Issuer,
		"URLS_LOGIN=" + h.app.URL + "/login",
		"URLS_CONSENT=" + h.app.URL + "/consent",
		"URLS_LOGOUT=" + h.app.URL + "/logout",
		"URLS_ERROR=" + h.app.URL + "/error",
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting hydra: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("hydra's log:\n%s", h.Logs())
		}
	})

	// Ready when the admin endpoint says so and discovery answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("hydra exited at start:\n%s", h.Logs())
		default:
		}
		if h.ready() {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready after a minute:\n%s", h.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *Hydra) ready() bool {
	for _, u := range []string{h.Admin + "/health/ready", h.Issuer + "/.well-known/openid-configuration"} {
		resp, err := readyClient.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// Logs is what Hydra wrote so far.
func (h *Hydra) Logs() string {
	b, _ := os.ReadFile(h.log)
	return string(b)
}

// admin calls Hydra's admin API from the test: body (if not nil) as JSON,
// the answer into out (if not nil); any status but want fails the test.
func (h *Hydra) admin(method, path string, body, out any, want int) {
	h.t.Helper()
	if err := h.call(method, path, body, out, want); err != nil {
		h.t.Fatal(err)
	}
}

// call calls Hydra's admin API, as admin does, and says what went wrong.
func (h *Hydra) call(method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.Admin+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("hydra admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("hydra admin %s %s: %d %s; want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("hydra admin %s %s: %v in %s", method, path, err, b)
		}
	}
	return nil
}

// appCall is call for the login app's handlers: a failure fails the test
// (from the handler's goroutine: Errorf, not Fatal) and answers 502.
func (h *Hydra) appCall(w http.ResponseWriter, method, path string, body, out any) bool {
	if err := h.call(method, path, body, out, http.StatusOK); err != nil {
		h.t.Errorf("login app: %v", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return false
	}
	return true
}

// HydraClient is an OAuth2 client registered with Hydra.
type HydraClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// CreateClient registers a confidential client of a Caddy site at site
// (http://127.0.0.1:port) for its provider name: the site's callback, its
// root as the post-logout redirect, and backchannel as its back-channel
// logout URI (with sid required).
func (h *Hydra) CreateClient(site, name, backchannel string) HydraClient {
	h.t.Helper()
	var c HydraClient
	h.admin("POST", "/admin/clients", map[string]any{
		"client_name":                         "edgesession " + site,
		"grant_types":                         []string{"authorization_code", "refresh_token"},
		"response_types":                      []string{"code"},
		"scope":                               "openid offline_access email profile",
		"redirect_uris":                       []string{site + "/.session/oidc/" + name + "/callback"},
		"post_logout_redirect_uris":           []string{site + "/"},
		"token_endpoint_auth_method":          "client_secret_basic",
		"backchannel_logout_uri":              backchannel,
		"backchannel_logout_session_required": true,
	}, &c, http.StatusCreated)
	if c.ID == "" || c.Secret == "" {
		h.t.Fatalf("hydra created a client without id or secret: %+v", c)
	}
	return c
}

// Logouts is how many logout requests the app accepted.
func (h *Hydra) Logouts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logouts
}

// LoginForms is how many times the login app showed its form: a login
// that Hydra's session answered shows none.
func (h *Hydra) LoginForms() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.forms
}

// SessionOf is the login session ID (the ID token's sid) of subject's
// last consent.
func (h *Hydra) SessionOf(subject string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sids[subject]
}

// RevokeSession ends the login session sid at Hydra through its admin API,
// which sends back-channel logouts to the clients of that session.
func (h *Hydra) RevokeSession(sid string) {
	h.t.Helper()
	h.admin("DELETE", "/admin/oauth2/auth/sessions/login?sid="+url.QueryEscape(sid), nil, nil, http.StatusNoContent)
}
