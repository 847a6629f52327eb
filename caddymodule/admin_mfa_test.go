package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/sessionstore"
)

// mfaHandler provisions a handler with second factors on, over a bolt file
// of its own (in the pool, as a config's handler would have it), and
// returns it with the admin module.
func mfaHandler(t *testing.T) (*Handler, *AdminSessions, *observer.ObservedLogs) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	path := filepath.Join(t.TempDir(), "s.db")
	h := &Handler{
		StoreRaw: json.RawMessage(fmt.Sprintf(`{"backend":"bolt","path":%q}`, path)),
		Secrets:  []string{strings.Repeat("s", 32)},
		Users:    []User{{Name: "alice", Hash: testHash}},
		MFA:      &MFA{},
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel) // cleans the store module up: its pool entry goes
	if h.mfa == nil || h.mfa.Store == nil || h.mfa.Count == nil {
		t.Fatalf("provisioned without second factors: %+v", h.mfa)
	}
	a := new(AdminSessions)
	if err := a.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	a.logger = zap.New(core)
	return h, a, logs
}

// enrol gives user a TOTP authenticator, recovery codes and (if handle is
// set) a passkey, as the enrolment pages would keep them.
func enrol(t *testing.T, s *mfa.Store, user string, handle []byte) {
	t.Helper()
	_, err := s.Update(context.Background(), user, func(c **mfa.Credentials) error {
		*c = &mfa.Credentials{TOTP: &mfa.TOTP{Sealed: []byte("sealed"), Created: time.Now()}, Recovery: []mfa.Recovery{{Hash: []byte("h")}}}
		if handle != nil {
			(*c).Handle = handle
			(*c).Passkeys = []mfa.Passkey{{Name: "key", Created: time.Now()}}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if handle != nil {
		if ok, err := s.Vault.VaultSwap(context.Background(), fmt.Sprintf("mfa/handle/%x", handle), nil, []byte(user)); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
}

// mfaAdminCall is adminCall with a JSON body, as the CLI sends it.
func mfaAdminCall(t *testing.T, a *AdminSessions, method, path, contentType, body string) (int, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, "http://localhost:2019"+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if err := a.serve(w, r); err != nil {
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s %s: %v is not an API error", method, path, err)
		}
		return apiErr.HTTPStatus, []byte(apiErr.Err.Error())
	}
	return w.Code, w.Body.Bytes()
}

// An operator resets a user's second factors through the admin API: the
// credentials and the passkey handle's entry are gone from the handler's
// store, other users' stay, the reset is logged and counted; a user with
// nothing enrolled is a 200 with reset 0.
func TestAdminMFAReset(t *testing.T) {
	h, a, logs := mfaHandler(t)
	ctx := context.Background()
	store := h.mfa.Store
	handle := bytes.Repeat([]byte{0xab}, 32)
	enrol(t, store, "alice", handle)
	for _, other := range []string{"bob", "alice2", "Alice", "corp:alice"} {
		enrol(t, store, other, nil)
	}
	counted := func() float64 { return counterValue(t, processMetrics.mfa.WithLabelValues("reset", "all")) }
	before := counted()

	code, body := mfaAdminCall(t, a, "POST", "/session/mfa/reset", "application/json", `{"user":"alice"}`)
	var out AdminMFAReset
	if code != 200 || json.Unmarshal(body, &out) != nil || out.User != "alice" || out.Reset != 1 || out.Stores < 1 {
		t.Fatalf("reset alice: %d %s", code, body)
	}
	if c, err := store.Load(ctx, "alice"); c != nil || err != nil {
		t.Fatalf("alice's credentials after the reset: %+v, %v", c, err)
	}
	if v, _ := store.Vault.VaultGet(ctx, fmt.Sprintf("mfa/handle/%x", handle)); v != nil {
		t.Fatalf("alice's passkey handle still leads to %q", v)
	}
	for _, other := range []string{"bob", "alice2", "Alice", "corp:alice"} {
		if c, _ := store.Load(ctx, other); !c.Enrolled() {
			t.Fatalf("resetting alice removed %s's second factors", other)
		}
	}
	if got := counted() - before; got != 1 {
		t.Fatalf("caddy_session_mfa_total{event=reset,method=all} went up by %v, want 1", got)
	}
	entries := logs.FilterMessage("second factors reset").All()
	if len(entries) != 1 || entries[0].Level != zapcore.InfoLevel {
		t.Fatalf("the reset is logged as %v", entries)
	}
	if f := entries[0].ContextMap(); f["user"] != "alice" || f["remote_ip"] != "192.0.2.1" || f["reset"] != int64(1) || f["by"] != "admin_api" {
		t.Fatalf("the reset is logged with %v", f)
	}

	// Again, and a user who never enrolled: 200, nothing reset, nothing
	// counted, and logged all the same.
	for _, user := range []string{"alice", "nobody"} {
		code, body := mfaAdminCall(t, a, "POST", "/session/mfa/reset", "application/json; charset=utf-8", `{"user":"`+user+`"}`)
		if code != 200 || !bytes.Contains(body, []byte(`"reset":0`)) {
			t.Fatalf("reset %s with nothing enrolled: %d %s", user, code, body)
		}
	}
	if got := counted() - before; got != 1 {
		t.Fatalf("a reset of nothing was counted (%v)", got)
	}
	if n := logs.FilterMessage("second factors reset").Len(); n != 3 {
		t.Fatalf("%d resets logged, want 3", n)
	}

	// A reset does not end the user's sessions, nor touch them.
	k := sessionstore.KeyOf(sessionstore.NewID())
	now := time.Now()
	underlyingStore(h.store).Create(ctx, k, sessionstore.Record{User: "bob", Amr: []string{"pwd", "otp", "mfa"}, Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	if code, _ := mfaAdminCall(t, a, "POST", "/session/mfa/reset", "application/json", `{"user":"bob"}`); code != 200 {
		t.Fatal(code)
	}
	if rec, found, _ := h.store.Find(ctx, k); !found || rec.User != "bob" {
		t.Fatal("resetting bob's second factors ended his session")
	}
}

// What is not a reset of one named user is refused, and removes nothing.
func TestAdminMFAResetRequests(t *testing.T) {
	h, a, logs := mfaHandler(t)
	enrol(t, h.mfa.Store, "bob", []byte("handle"))
	const json = "application/json"
	for _, tt := range []struct {
		method, path, contentType, body string
		code                            int
	}{
		// A browser cannot send application/json across origins without
		// a preflight; a form or text/plain is refused.
		{"POST", "/session/mfa/reset", "", `{"user":"bob"}`, 415},
		{"POST", "/session/mfa/reset", "text/plain", `{"user":"bob"}`, 415},
		{"POST", "/session/mfa/reset", "application/x-www-form-urlencoded", `user=bob`, 415},
		{"POST", "/session/mfa/reset", json, ``, 400},
		{"POST", "/session/mfa/reset", json, `not json`, 400},
		{"POST", "/session/mfa/reset", json, `{}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":null}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":["bob"]}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":1}`, 400},
		{"POST", "/session/mfa/reset", json, `["bob"]`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"bob","all":true}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"alice"}{"user":"bob"}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"alice"} x`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"bo` + strings.Repeat("b", 5000) + `"}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":""}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":".."}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"a/b"}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"bob\u0000"}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"bad provider:bob"}`, 400},
		{"POST", "/session/mfa/reset", json, `{"user":"\xff"}`, 400},
		{"GET", "/session/mfa/reset", "", ``, 405},
		{"DELETE", "/session/mfa/reset", json, `{"user":"bob"}`, 405},
		{"POST", "/session/mfa/reset/bob", json, `{"user":"bob"}`, 404},
		{"POST", "/session/mfa", json, `{"user":"bob"}`, 404},
		{"POST", "/session/mfa/", json, `{"user":"bob"}`, 404},
		{"POST", "/session/mfa%2Freset", json, `{"user":"bob"}`, 404},
		{"POST", "/session/mfa/reset%00", json, `{"user":"bob"}`, 404},
	} {
		if code, body := mfaAdminCall(t, a, tt.method, tt.path, tt.contentType, tt.body); code != tt.code {
			t.Errorf("%s %s [%s] %.60q = %d %s, want %d", tt.method, tt.path, tt.contentType, tt.body, code, body, tt.code)
		}
	}
	if c, _ := h.mfa.Store.Load(context.Background(), "bob"); !c.Enrolled() {
		t.Fatal("a refused request reset bob's second factors")
	}
	if n := logs.FilterMessage("second factors reset").Len(); n != 0 {
		t.Fatalf("%d refused requests logged as resets", n)
	}
	// And the request that is one works.
	if code, body := mfaAdminCall(t, a, "POST", "/session/mfa/reset", json, ` {"user": "bob"} `+"\n"); code != 200 || !bytes.Contains(body, []byte(`"reset":1`)) {
		t.Fatalf("reset bob: %d %s", code, body)
	}
}

// The handler's second-factor code counts its events through
// endpoints.MFA.Count, by event and method; a label no one defined is
// counted as "other", so the series cannot grow without bound.
func TestMFACountMetric(t *testing.T) {
	h, _, _ := mfaHandler(t)
	for _, c := range []struct{ event, method, wantEvent, wantMethod string }{
		{"verified", "totp", "verified", "totp"},
		{"replayed", "totp", "replayed", "totp"},
		{"enrolled", "passkey", "enrolled", "passkey"},
		{"failed", "recovery", "failed", "recovery"},
		{"throttled", "all", "throttled", "all"},
		{"nonsense", "sms", "other", "other"},
	} {
		series := processMetrics.mfa.WithLabelValues(c.wantEvent, c.wantMethod)
		before := counterValue(t, series)
		h.mfa.Count(c.event, c.method)
		if got := counterValue(t, series) - before; got != 1 {
			t.Errorf("Count(%s, %s): %s/%s went up by %v", c.event, c.method, c.wantEvent, c.wantMethod, got)
		}
	}
	desc := processMetrics.mfa.WithLabelValues("reset", "all").Desc().String()
	if !strings.Contains(desc, `"caddy_session_mfa_total"`) || !strings.Contains(desc, "event") || !strings.Contains(desc, "method") {
		t.Fatalf("the metric is %s", desc)
	}
}

// counterValue is c's count now.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
