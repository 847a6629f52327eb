package tests

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// The policy side of second factors (SPEC §13), end to end: step-up rules
// (`allow ... { mfa }`) in every reading of a request, `mfa required` for
// a group, and what the upstream sees of how the user logged in
// (X-Session-Amr, {http.session.amr}, the session matcher's amr, the
// assertion's amr claim).
//
// Until the second step exists (<prefix>/mfa proves a factor and logs in
// again with the amr extended), a session with a second factor is made
// here as that step will make it: a real password login, whose record in
// the shared Redis store is then given an amr (record version 3, written
// by sessionstore's own encoding), as session.Manager.Login writes it.
// The amr is in the store, never in anything the client sends. (The
// instance's Redis cache is off here: it learns of a write it did not
// make a moment later, and the second step makes a new session anyway.)

const mfaPolicyTemplate = `
[[.Site]] {
	session {
		store redis [[.Extra.redis]] {
			prefix [[.Extra.prefix]]
			cache off
		}
		secret [[.Extra.secret]]
		user alice [[.Extra.alice]] admin
		user bob [[.Extra.bob]] ops
		user carol [[.Extra.alice]]
		public {
			path /public/*
		}
		split_path .php
		assertion
		mfa [[.Extra.policy]]
		allow group admin {
			path /admin/*
			mfa
		}
		allow user alice bob {
			path /billing/*
		}
	}
	@strong session amr otp hwk
	request_header @strong X-Strong yes
	request_header X-Amr-Placeholder "{http.session.amr}"
	reverse_proxy [[.Upstream]]
}
`

// mfaSite is a Caddy with mfaPolicyTemplate and the Redis store it keeps
// its sessions in.
type mfaSite struct {
	*Caddy
	rdb    *redis.Client
	prefix string
}

func startMFASite(t *testing.T, policy string) *mfaSite {
	t.Helper()
	rdb, url := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, mfaPolicyTemplate,
		WithExtra("redis", url), WithExtra("prefix", prefix), WithExtra("policy", policy),
		WithExtra("secret", strings.Repeat("m", 32)), WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	return &mfaSite{Caddy: c, rdb: rdb, prefix: prefix}
}

// giveAmr sets the amr of every session of user in the store, as the
// second step records it.
func (s *mfaSite) giveAmr(t *testing.T, user string, amr ...string) {
	t.Helper()
	ctx := context.Background()
	keys, err := s.rdb.Keys(ctx, s.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if id := strings.TrimPrefix(k, s.prefix); len(id) != 64 || func() bool { _, err := hex.DecodeString(id); return err != nil }() {
			continue // the user index, not a session
		}
		raw, err := s.rdb.Get(ctx, k).Bytes()
		if err != nil {
			continue
		}
		var rec sessionstore.Record
		if rec.UnmarshalBinary(raw) != nil || rec.User != user {
			continue
		}
		rec.Amr = amr
		b, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 3 {
			t.Fatalf("a record with an amr is written as version %d, want 3", b[0])
		}
		if err := s.rdb.SetArgs(ctx, k, b, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no session of %s in the store", user)
	}
}

// stepUpPaths are spellings of /admin/... that an upstream reads as
// /admin/...: case, ;params, percent-encoding, the PHP split, fullwidth
// letters, a dotless ı, doubled slashes.
var stepUpPaths = []string{
	"/admin/x", "/admin/", "/ADMIN/x", "/Admin/x", "/admin;x=1/", "/admin;x=1/y", "/%61dmin/", "/%41DMIN/x",
	"/index.php/admin/", "/INDEX.PHP/admin/x", "/" + url.PathEscape("ａｄｍｉｎ") + "/x", "/adm%C4%B1n/x", "/admin//x",
}

func TestMFAPolicyStepUp(t *testing.T) {
	s := startMFASite(t, "")
	alice := NewClient(t, s.Site)
	alice.MustLogin("alice", alicePassword)

	// A password only: every reading of /admin asks for a second factor.
	for _, p := range stepUpPaths {
		r := alice.Get(p, "Accept: application/json")
		if r.StatusCode != 401 || !strings.Contains(string(r.Body), "second factor required") {
			t.Errorf("GET %s with a password only: %d %s, want 401 second factor required", p, r.StatusCode, r.Body)
		}
	}
	// A browser is sent to the second step, and back afterwards.
	r := alice.Get("/admin/x?y=1", "Accept: text/html", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Dest: document")
	if loc := r.Header.Get("Location"); r.StatusCode != 302 || loc != "/.session/mfa?redirect="+url.QueryEscape("/admin/x?y=1") {
		t.Errorf("a navigation to /admin/x: %d Location %q, want 302 to the second step", r.StatusCode, loc)
	}
	// Elsewhere the password is enough, and the upstream sees it.
	e := alice.Get("/app").Echo(t)
	if got := e.Headers["X-Session-Amr"]; !slices.Equal(got, []string{"pwd"}) {
		t.Errorf("X-Session-Amr %q, want pwd", got)
	}
	if e.Headers["X-Strong"] != nil {
		t.Errorf("session amr otp hwk matched a password session")
	}

	// With a second factor: every reading passes.
	s.giveAmr(t, "alice", "pwd", "otp", "mfa")
	for _, p := range stepUpPaths {
		if r := alice.Get(p); r.StatusCode != 200 {
			t.Errorf("GET %s with a second factor: %d %s, want the upstream", p, r.StatusCode, r.Body)
		}
	}
	e = alice.Get("/admin/x").Echo(t)
	if got := e.Headers["X-Session-Amr"]; !slices.Equal(got, []string{"pwd otp mfa"}) {
		t.Errorf("X-Session-Amr %q, want \"pwd otp mfa\"", got)
	}
	if got := e.Headers["X-Amr-Placeholder"]; !slices.Equal(got, []string{"pwd otp mfa"}) {
		t.Errorf("{http.session.amr} %q", got)
	}
	if got := e.Headers["X-Strong"]; !slices.Equal(got, []string{"yes"}) {
		t.Errorf("session amr otp hwk did not match an otp session: %q", got)
	}
	if claims := assertionClaims(t, e); !slices.Equal(claims.Amr, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("assertion amr %q", claims.Amr)
	}

	// A second factor lets in only whom the rule names.
	bob := NewClient(t, s.Site)
	bob.MustLogin("bob", bobPassword)
	s.giveAmr(t, "bob", "pwd", "hwk", "mfa")
	for _, p := range stepUpPaths {
		if r := bob.Get(p, "Accept: application/json"); r.StatusCode != 403 {
			t.Errorf("GET %s as bob (not admin) with a second factor: %d, want 403", p, r.StatusCode)
		}
	}
}

// TestMFAPolicyAmrIsNotTheClients: the amr comes from the store; a client
// that sends the header in any spelling a server or framework reads as
// X-Session-Amr reaches nothing with it.
func TestMFAPolicyAmrIsNotTheClients(t *testing.T) {
	s := startMFASite(t, "")
	c := NewClient(t, s.Site)
	c.MustLogin("alice", alicePassword)
	forged := []string{}
	for _, name := range []string{"X-Session-Amr", "x-session-amr", "X_Session_Amr", "x_session_amr", "X.Session.Amr", "x.session-amr", "X-SESSION-AMR"} {
		forged = append(forged, name+": pwd otp mfa")
	}
	for _, p := range []string{"/admin/x", "/ADMIN/x"} {
		if r := c.Get(p, append(forged, "Accept: application/json")...); r.StatusCode != 401 {
			t.Errorf("GET %s with a forged amr: %d, want 401 (second factor required)", p, r.StatusCode)
		}
	}
	for _, p := range []string{"/app", "/public/x"} {
		e := c.Get(p, forged...).Echo(t)
		for name, values := range e.Headers {
			n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
			if n == "x-session-amr" && !slices.Equal(values, []string{"pwd"}) {
				t.Errorf("GET %s: the upstream got %s %q", p, name, values)
			}
		}
		if e.Headers["X-Strong"] != nil {
			t.Errorf("GET %s: the matcher took the client's amr", p)
		}
	}
	// Anonymous: no amr at all.
	anon := NewClient(t, s.Site)
	e := anon.Get("/public/x", forged...).Echo(t)
	for name := range e.Headers {
		if strings.Contains(strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name)), "session-amr") {
			t.Errorf("anonymous: the upstream got %s", name)
		}
	}
}

// TestMFAPolicyRequiredForAGroup: `mfa required { group ops }` makes a
// session of bob (ops) from before the policy no one's until bob proves a
// second factor: not public → second factor required; public → anonymous
// (nothing of the session reaches the upstream). alice, not in ops, is
// not concerned.
func TestMFAPolicyRequiredForAGroup(t *testing.T) {
	s := startMFASite(t, "")
	bob, alice := NewClient(t, s.Site), NewClient(t, s.Site)
	bob.MustLogin("bob", bobPassword)
	alice.MustLogin("alice", alicePassword)
	s.Extra["policy"] = "required {\n\t\t\tgroup ops\n\t\t}"
	s.Reload(mfaPolicyTemplate)

	for _, p := range []string{"/app", "/billing/1", "/admin/x"} {
		r := bob.Get(p, "Accept: application/json")
		if r.StatusCode != 401 || !strings.Contains(string(r.Body), "second factor required") {
			t.Errorf("GET %s as bob (ops, password only): %d %s, want 401 second factor required", p, r.StatusCode, r.Body)
		}
	}
	e := bob.Get("/public/x").Echo(t)
	for name := range e.Headers {
		if strings.HasPrefix(name, "X-Session-") || name == "X-Strong" {
			t.Errorf("public request of a session waiting for a second factor: the upstream got %s %q", name, e.Headers[name])
		}
	}
	if got := e.Headers["X-Amr-Placeholder"]; len(got) != 0 && got[0] != "" {
		t.Errorf("{http.session.amr} of a waiting session: %q", got)
	}
	// whoami is the handler's own: it may say who is waiting, but the
	// upstream never learns it.
	if e := alice.Get("/billing/1").Echo(t); !slices.Equal(e.Headers["X-Session-User"], []string{"alice"}) {
		t.Errorf("alice (not in ops): %q", e.Headers["X-Session-User"])
	}

	s.giveAmr(t, "bob", "pwd", "otp", "mfa")
	if e := bob.Get("/billing/1").Echo(t); !slices.Equal(e.Headers["X-Session-User"], []string{"bob"}) || !slices.Equal(e.Headers["X-Session-Amr"], []string{"pwd otp mfa"}) {
		t.Errorf("bob with a second factor: user %q amr %q", e.Headers["X-Session-User"], e.Headers["X-Session-Amr"])
	}
}

type assertionPayload struct {
	Sub string   `json:"sub"`
	Amr []string `json:"amr"`
}

// assertionClaims decodes (without verifying: tests/assertion_test.go
// verifies) the assertion the upstream got.
func assertionClaims(t *testing.T, e Echo) assertionPayload {
	t.Helper()
	tok := e.Headers["X-Session-Assertion"]
	if len(tok) != 1 {
		t.Fatalf("no assertion: %q", tok)
	}
	parts := strings.Split(tok[0], ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var p assertionPayload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(fmt.Errorf("%w: %s", err, b))
	}
	return p
}
