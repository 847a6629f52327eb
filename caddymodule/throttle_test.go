package caddymodule

// The throttle itself is tested in package throttle; these are the
// handler's part: its scope, and logins through ServeHTTP.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
	"github.com/edgesession/edgesession/throttle"
)

// TestThrottleScopes: the handler's scope (see throttle's TestThrottleScopes
// for what a scope does).
func TestThrottleScopes(t *testing.T) {
	// The scope is the handler's config, never the request: the same
	// config (N instances) shares it, other users or a realm do not.
	scope := func(h Handler) string { return throttleScope(h.Realm, h.Users, h.UsersFile) }
	a := Handler{Users: []User{{Name: "bob"}, {Name: "alice"}}}
	if scope(a) != scope(Handler{Users: []User{{Name: "alice"}, {Name: "bob"}}}) {
		t.Error("the same users in another order are another scope")
	}
	for name, other := range map[string]Handler{
		"other users": {Users: []User{{Name: "carol"}}},
		"users file":  {Users: a.Users, UsersFile: "/etc/users"},
		"realm":       {Users: a.Users, Realm: "app"},
	} {
		if scope(other) == scope(a) {
			t.Errorf("%s: same scope as the first handler", name)
		}
	}
}

// countingHook counts the commands a Redis client sends.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestThrottleRedisOnlyForLogins(t *testing.T) {
	_, url := storetest.RedisClient(t)
	opts, _ := redis.ParseURL(url)
	client := redis.NewClient(opts)
	defer client.Close()
	hook := &countingHook{}
	client.AddHook(hook)

	mem := sessionstore.NewMemory(0)
	defer mem.Close()
	h := newTestHandler(t, mem)
	// Failures in Redis, attempts in flight in a table of its own.
	h.throttle = throttle.NewPrivate(throttle.Limit{Failures: 5, Window: time.Minute}, &throttle.Redis{Client: client, Prefix: storetest.RedisPrefix(t)}, 100, zap.NewNop())
	var err error
	if h.users, err = newUserDB([]User{{Name: "alice", Hash: testHash}}, "", h.logger); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	cookie := loggedIn(t, h, "alice")
	for _, r := range []struct{ method, path, cookie string }{
		{"GET", "/app", cookie},
		{"GET", "/app", ""},
		{"GET", "/.session/whoami", cookie},
		{"POST", "/app", cookie},
	} {
		req := httptest.NewRequest(r.method, r.path, nil)
		if r.cookie != "" {
			req.Header.Set("Cookie", r.cookie)
		}
		if err := h.ServeHTTP(httptest.NewRecorder(), req, okHandler); err != nil {
			t.Fatal(err)
		}
	}
	if n := hook.n.Load(); n != 0 {
		t.Fatalf("requests that are not logins sent %d Redis commands", n)
	}
	req := httptest.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":"alice","password":"wrong"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req, okHandler)
	if w.Code != 401 || hook.n.Load() == 0 {
		t.Fatalf("a failed login: %d with %d Redis commands", w.Code, hook.n.Load())
	}
}

func TestThrottleLoginOfAClientThatHungUp(t *testing.T) {
	mem := sessionstore.NewMemory(0)
	defer mem.Close()
	h := newTestHandler(t, mem)
	core, logs := observer.New(zap.DebugLevel)
	h.logger = zap.New(core)
	h.setupSessions()
	h.throttle = throttle.NewPrivate(throttle.Limit{Failures: 2, Window: time.Minute}, nil, 100, zap.NewNop())
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if h.users, err = newUserDB([]User{{Name: "alice", Hash: string(hash)}, {Name: "bob", Hash: string(hash)}}, "", h.logger); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	cookie := loggedIn(t, h, "bob")
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	login := func(ctx context.Context, user, password string) int {
		r := httptest.NewRequestWithContext(ctx, "POST", "/.session/login", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r, okHandler)
		return w.Code
	}
	login(gone, "alice", "wrong")
	login(gone, "alice", "wrong")
	if code := login(context.Background(), "alice", "pw"); code != 429 {
		t.Fatalf("after 2 failures whose clients hung up: %d, want 429", code)
	}
	login(gone, "bob", "pw") // the session is looked up with a cancelled context
	if n := logs.FilterMessage("session store error").Len(); n != 0 {
		t.Fatalf("a client that hung up was logged as %d store errors", n)
	}
}
