package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgesession/edgesession/sessionstore"
)

// adminFixture puts a memory and a bolt store in the pool, as two
// handlers' configs would, and returns them with the admin module.
func adminFixture(t *testing.T) (*AdminSessions, *observer.ObservedLogs, []sessionstore.Store) {
	t.Helper()
	var out []sessionstore.Store
	for _, key := range []string{"memory-admin-test", "bolt:" + filepath.Join(t.TempDir(), "s.db")} {
		p, err := loadStore(key, func() (pooledStore, error) {
			if key == "memory-admin-test" {
				s := sessionstore.NewMemory(0)
				return pooledStore{Store: s, close: s.Close}, nil
			}
			s, err := sessionstore.OpenBolt(key[len("bolt:"):], sessionstore.BoltOptions{})
			if err != nil {
				return pooledStore{}, err
			}
			return pooledStore{Store: s, close: s.Close}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stores.Delete(key) })
		out = append(out, p.Store)
	}
	a := new(AdminSessions)
	if err := a.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	a.logger = zap.New(core)
	return a, logs, out
}

// adminCall serves one admin request and returns the status and body, as
// Caddy's admin endpoint would write them.
func adminCall(t *testing.T, a *AdminSessions, method, path string, body ...string) (int, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, "http://localhost:2019"+path, strings.NewReader(strings.Join(body, "")))
	if err := a.serve(w, r); err != nil {
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s %s: %v is not an API error", method, path, err)
		}
		return apiErr.HTTPStatus, []byte(apiErr.Err.Error())
	}
	return w.Code, w.Body.Bytes()
}

func TestAdminSessions(t *testing.T) {
	a, logs, ss := adminFixture(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	type made struct {
		id  sessionstore.ID
		key sessionstore.Key
	}
	var alice []made
	create := func(s sessionstore.Store, realm, user, site string, age time.Duration) made {
		id := sessionstore.NewID()
		k := sessionstore.RealmKey(realm, id)
		rec := sessionstore.Record{
			User: user, Source: "password", Fingerprint: "secret-fingerprint", Site: site,
			ClientIP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
			Data:    map[string]string{"cart": "private-data"},
			Created: now.Add(-age), LastSeen: now, Expires: now.Add(time.Hour),
		}
		if err := s.Create(ctx, k, rec); err != nil {
			t.Fatal(err)
		}
		return made{id, k}
	}
	alice = append(alice,
		create(ss[0], "", "alice", "a.example", 3*time.Minute),
		create(ss[1], "realm-b", "alice", "b.example", 2*time.Minute),
		create(ss[1], "", "alice", "a.example", time.Minute))
	bob := create(ss[0], "", "bob", "a.example", time.Minute)
	create(ss[1], "", "", "a.example", time.Minute) // anonymous

	// List: every store, every realm, oldest first; what a person needs
	// to recognise a session, and nothing that leads to a cookie.
	code, body := adminCall(t, a, "GET", "/session/users/alice")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list AdminSessionList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if list.User != "alice" || len(list.Sessions) != 3 || list.Stores < 2 {
		t.Fatalf("list: %s", body)
	}
	for i, s := range list.Sessions {
		if s.Handle != alice[i].key.Handle().String() {
			t.Errorf("session %d: handle %s, want %s (oldest first)", i, s.Handle, alice[i].key.Handle())
		}
		if s.ClientIP != "192.0.2.7" || s.UserAgent == "" || s.Source != "password" || s.Created.IsZero() || s.LastSeen.IsZero() {
			t.Errorf("session %d: %+v", i, s)
		}
	}
	if list.Sessions[1].Site != "b.example" || list.Sessions[0].Store != "memory-admin-test" || list.Sessions[1].Store != "bolt" {
		t.Errorf("sites and stores: %s", body)
	}
	for _, m := range append(alice, bob) {
		for _, secret := range []string{hex.EncodeToString(m.id[:]), base64.RawURLEncoding.EncodeToString(m.id[:]), m.key.String(), "secret-fingerprint", "private-data"} {
			if bytes.Contains(body, []byte(secret)) {
				t.Fatalf("the list shows %q", secret)
			}
		}
	}
	if code, body := adminCall(t, a, "GET", "/session/users/nobody"); code != 200 || !bytes.Contains(body, []byte(`"sessions":[]`)) {
		t.Fatalf("list of a user with no sessions: %d %s", code, body)
	}

	// A socket handed over under one of alice's sessions ends with it.
	server, client := net.Pipe()
	defer client.Close()
	hijackedConns.Track(alice[1].key, server)

	// Revoke one.
	code, body = adminCall(t, a, "DELETE", "/session/users/alice/"+alice[1].key.Handle().String())
	if code != 200 || !bytes.Contains(body, []byte(`"revoked":1`)) {
		t.Fatalf("revoke one: %d %s", code, body)
	}
	if _, found, _ := ss[1].Find(ctx, alice[1].key); found {
		t.Fatal("the revoked session is still there")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the socket of a revoked session stays open")
	}
	if code, _ := adminCall(t, a, "DELETE", "/session/users/alice/"+alice[1].key.Handle().String()); code != 404 {
		t.Fatalf("revoking a session that is gone: %d, want 404", code)
	}
	if code, _ := adminCall(t, a, "DELETE", "/session/users/alice/"+bob.key.Handle().String()); code != 404 {
		t.Fatalf("revoking bob's session as alice's: %d, want 404", code)
	}
	if _, found, _ := ss[0].Find(ctx, bob.key); !found {
		t.Fatal("bob's session was revoked through alice's name")
	}

	// Revoke all of alice's.
	code, body = adminCall(t, a, "DELETE", "/session/users/alice")
	if code != 200 || !bytes.Contains(body, []byte(`"revoked":2`)) {
		t.Fatalf("revoke all of alice's: %d %s", code, body)
	}
	if _, found, _ := ss[0].Find(ctx, bob.key); !found {
		t.Fatal("revoking alice revoked bob")
	}
	var infos []string
	for _, e := range logs.FilterMessage("sessions revoked").All() {
		f := e.ContextMap()
		if f["user"] != "alice" || f["by"] != "admin_api" || f["remote_ip"] == "" {
			t.Errorf("revocation logged as %v", f)
		}
		infos = append(infos, e.Level.String())
		if e.Level != zapcore.InfoLevel {
			t.Errorf("revocation logged at %v", e.Level)
		}
	}
	if len(infos) != 4 { // one, gone, bob's as alice's, all
		t.Fatalf("%d revocations logged, want 4", len(infos))
	}
	if logs.FilterMessage("sessions revoked").FilterField(zap.Int("revoked", 2)).Len() != 1 {
		t.Error("the count of revoked sessions is not logged")
	}

	// Revoke everything.
	code, body = adminCall(t, a, "POST", "/session/revoke-all", `{"confirm":"every session"}`)
	if code != 200 || !bytes.Contains(body, []byte(`"revoked":2`)) { // bob and the anonymous one
		t.Fatalf("revoke all: %d %s", code, body)
	}
	if logs.FilterMessage("every session revoked").FilterField(zap.Int("revoked", 2)).Len() != 1 {
		t.Error("revoking everything is not logged with its count")
	}
	if _, found, _ := ss[0].Find(ctx, bob.key); found {
		t.Fatal("bob's session survived revoking everything")
	}
}

func TestAdminSessionsRequests(t *testing.T) {
	a, _, ss := adminFixture(t)
	now := time.Now()
	k := sessionstore.KeyOf(sessionstore.NewID())
	ss[0].Create(context.Background(), k, sessionstore.Record{User: "a?b c", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	for _, tt := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/session/users/a%3Fb%20c", "", 200},
		{"GET", "/session/users/", "", 400},
		{"GET", "/session/users/alice/", "", 400},
		{"GET", "/session/users/alice/" + k.Handle().String(), "", 405},
		{"DELETE", "/session/users/alice/" + k.String(), "", 400},
		{"DELETE", "/session/users/alice/not-a-handle", "", 400},
		{"POST", "/session/users/alice", "", 405},
		{"DELETE", "/session/users", "", 404},
		{"DELETE", "/session/", "", 404},
		{"DELETE", "/session/everything", "", 404},
		{"DELETE", "/session/users/a/b/c", "", 404},
		// A provider's user is named as X-Session-User names her.
		{"GET", "/session/users/corp:alice", "", 200},
		{"DELETE", "/session/users/corp%3Aalice", "", 200},
		// Names no source can issue, above all those a path cleans away.
		{"GET", "/session/users/%2E%2E", "", 400},
		{"DELETE", "/session/users/%2e", "", 400},
		{"DELETE", "/session/users/..", "", 400},
		{"DELETE", "/session/users/a%2Fb", "", 400},
		{"DELETE", "/session/users/a%25b", "", 400},
		{"DELETE", "/session/users/a%5Cb", "", 400},
		{"GET", "/session/users/bad%20provider:alice", "", 400},
		// Revoking everything is a POST to its own path, with a body that
		// says so; what a cleaned per-user path could become is not it.
		{"DELETE", "/session/all", "", 404},
		{"DELETE", "/session/all", `{"confirm":"every session"}`, 404},
		{"DELETE", "/session/revoke-all", `{"confirm":"every session"}`, 405},
		{"GET", "/session/revoke-all", "", 405},
		{"POST", "/session/revoke-all", "", 400},
		{"POST", "/session/revoke-all", `{}`, 400},
		{"POST", "/session/revoke-all", `{"confirm":"yes"}`, 400},
		{"POST", "/session/revoke-all", `not json`, 400},
	} {
		if code, body := adminCall(t, a, tt.method, tt.path, tt.body); code != tt.code {
			t.Errorf("%s %s %s = %d %s, want %d", tt.method, tt.path, tt.body, code, body, tt.code)
		}
	}
	if _, found, _ := ss[0].Find(context.Background(), k); !found {
		t.Fatal("a refused request revoked a session")
	}
	code, body := adminCall(t, a, "GET", "/session/users/a%3Fb%20c")
	if code != 200 || !bytes.Contains(body, []byte(k.Handle().String())) {
		t.Fatalf("a user whose name needs escaping: %d %s", code, body)
	}
}
