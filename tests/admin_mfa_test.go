package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// TestMFAResetCommand: two Caddy instances share Redis; `caddy session mfa
// reset alice` on one removes alice's second factors (and her passkey
// handle) from the shared store, so both see none; bob's stay. A browser
// page on another origin cannot ask for a reset.
func TestMFAResetCommand(t *testing.T) {
	client, url := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, prefix)
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)
	addrA := fmt.Sprintf("127.0.0.1:%d", a.AdminPort)

	// alice and bob enrolled, as the enrolment pages keep it: in the
	// store every instance shares.
	ctx := context.Background()
	vault := sessionstore.NewRedis(client, prefix)
	creds := &mfa.Store{Vault: vault}
	handle := bytes.Repeat([]byte{0x5a}, 32)
	handleName := fmt.Sprintf("mfa/handle/%x", handle)
	for _, user := range []string{"alice", "bob"} {
		_, err := creds.Update(ctx, user, func(c **mfa.Credentials) error {
			*c = &mfa.Credentials{TOTP: &mfa.TOTP{Sealed: []byte("sealed"), Created: time.Now()}}
			if user == "alice" {
				(*c).Handle = handle
				(*c).Passkeys = []mfa.Passkey{{Name: "YubiKey", Created: time.Now()}}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := vault.VaultSwap(ctx, handleName, nil, []byte("alice")); !ok || err != nil {
		t.Fatal(ok, err)
	}

	// Another origin's page posting to the admin API: Caddy refuses it
	// (its Origin is not the admin endpoint's); a body that is not
	// declared JSON is refused too. Nothing is reset.
	if code, body := a.AdminWith("POST", "/session/mfa/reset", `{"user":"bob"}`, "Origin: https://evil.example", "Content-Type: text/plain"); code != 403 {
		t.Fatalf("a cross-origin reset: %d %s, want 403", code, body)
	}
	if code, body := a.AdminWith("POST", "/session/mfa/reset", `{"user":"bob"}`, "Content-Type: text/plain"); code != 415 {
		t.Fatalf("a text/plain reset: %d %s, want 415", code, body)
	}
	if c, _ := creds.Load(ctx, "bob"); !c.Enrolled() {
		t.Fatal("a refused request reset bob")
	}

	out, err := sessionCmd(t, "mfa", "reset", "alice", "--address", addrA)
	if err != nil || strings.TrimSpace(out) != "reset the second factors of alice in 1 store" {
		t.Fatalf("caddy session mfa reset alice: %v\n%s", err, out)
	}
	if c, err := creds.Load(ctx, "alice"); c != nil || err != nil {
		t.Fatalf("alice's second factors after the reset: %+v, %v", c, err)
	}
	if v, _ := vault.VaultGet(ctx, handleName); v != nil {
		t.Fatalf("alice's passkey handle still leads to %q", v)
	}
	if c, _ := creds.Load(ctx, "bob"); !c.Enrolled() {
		t.Fatal("resetting alice reset bob")
	}
	// The other instance finds nothing left to reset: the store is shared.
	if code, body := b.Admin("POST", "/session/mfa/reset", `{"user":"alice"}`); code != 200 || !strings.Contains(string(body), `"reset":0`) {
		t.Fatalf("reset alice again on B: %d %s", code, body)
	}
	out, err = sessionCmd(t, "mfa", "reset", "alice", "--address", addrA)
	if err != nil || strings.TrimSpace(out) != "alice had no second factor enrolled: nothing to reset" {
		t.Fatalf("a second reset: %v\n%s", err, out)
	}
	if out, err := sessionCmd(t, "mfa", "reset", "..", "--address", addrA); err == nil || !strings.Contains(out, "no user can have this name") {
		t.Fatalf("caddy session mfa reset ..: %v\n%s", err, out)
	}
	if !strings.Contains(a.Logs(), `"msg":"second factors reset","user":"alice","reset":1`) || !strings.Contains(a.Logs(), `"remote_ip":"127.0.0.1"`) {
		t.Fatalf("the reset is not logged with its user and address:\n%s", a.Logs())
	}
	// Counted on the instance that did it.
	if code, body := a.Admin("GET", "/metrics"); code != 200 || !strings.Contains(string(body), `caddy_session_mfa_total{event="reset",method="all"}`) {
		t.Fatalf("metrics: %d\n%s", code, grepLines(string(body), "caddy_session"))
	}
}

// AdminWith sends one request with body and the given header lines
// ("Name: value") to c's admin API, and returns the status and body.
func (c *Caddy) AdminWith(method, path, body string, header ...string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", c.AdminPort, path), strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
