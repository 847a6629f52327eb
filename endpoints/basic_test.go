package endpoints

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/throttle"
)

// basicServer is a server with http_basic on, alice's password "secret",
// and a throttle of its own.
func basicServer(t *testing.T, failures int) *Server {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := password.Open([]password.User{{Name: "alice", Hash: string(hash)}}, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{
		Prefix:        "/.session",
		Users:         users,
		PasswordUsers: true,
		Throttle:      throttle.NewPrivate(throttle.Limit{Failures: failures, Window: time.Minute}, nil, 1000, zap.NewNop()),
		ThrottleScope: "test",
		HTTPBasic:     true,
		BasicRealm:    "DAV",
	})
}

// TestBeginBasicWaitsItsTurn: with as many attempts in flight as the
// limit, a Basic request waits for one of them to end, then gets through.
func TestBeginBasicWaitsItsTurn(t *testing.T) {
	s := basicServer(t, 2)
	ctx, now := context.Background(), time.Now()
	a1, _, _ := s.c.Throttle.Begin(ctx, s.c.ThrottleScope, "192.0.2.1", "alice", now)
	a2, _, _ := s.c.Throttle.Begin(ctx, s.c.ThrottleScope, "192.0.2.1", "alice", now)
	if a1 == nil || a2 == nil {
		t.Fatal("two attempts did not begin")
	}
	done := make(chan *throttle.Attempt)
	go func() {
		a, _, _ := s.beginBasic(ctx, "192.0.2.1", "alice")
		done <- a
	}()
	select {
	case a := <-done:
		t.Fatalf("began with the limit in flight: %v", a)
	case <-time.After(200 * time.Millisecond):
	}
	a1.End()
	if a := <-done; a == nil {
		t.Error("refused after an attempt in flight ended")
	} else {
		a.End()
	}
	a2.End()
}

func TestBasicCredentialsNeverReachUpstream(t *testing.T) {
	s := basicServer(t, 5)
	for _, auth := range [][]string{{"Basic YWxpY2U6c2VjcmV0"}, {"basic YWxpY2U6c2VjcmV0"}, {"Basic !!!"}, {"Bearer t", "Basic YWxpY2U6c2VjcmV0"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = auth
		s.TakeBasic(r)
		for _, v := range r.Header["Authorization"] {
			if strings.HasPrefix(strings.ToLower(v), "basic") {
				t.Errorf("%q: left %q", auth, r.Header["Authorization"])
			}
		}
	}
	// Off: Authorization is the app's.
	s = New(Config{Prefix: "/.session"})
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("alice", "secret")
	if s.TakeBasic(r).Given() || r.Header.Get("Authorization") == "" {
		t.Error("http_basic off took the Authorization header")
	}
}
