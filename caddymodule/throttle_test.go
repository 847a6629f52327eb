package caddymodule

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// testThrottle is a throttle over a table of its own.
func testThrottle(failures int, window time.Duration, capacity int) *throttle {
	return &throttle{failures: failures, window: window, table: newThrottleTable(capacity), logger: zap.NewNop()}
}

// try makes one attempt that fails; it reports whether it was let through.
func try(t testing.TB, th *throttle, scope, ip, user string, now time.Time) bool {
	t.Helper()
	a, _, err := th.begin(context.Background(), scope, ip, user, now)
	if err != nil {
		t.Fatal(err)
	}
	if a == nil {
		return false
	}
	a.failed(context.Background(), now)
	return true
}

// checkTable checks that the list holds exactly the table's windows, in
// the order they started, and returns how many there are.
func checkTable(t testing.TB, tb *throttleTable) int {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	n := 0
	var prev *failureWindow
	for w := tb.oldest; w != nil; w = w.newer {
		if w.older != prev || tb.windows[w.key] != w {
			t.Fatalf("window %d: broken list", n)
		}
		if prev != nil && w.end.Before(prev.end) {
			t.Fatalf("window %d: out of order", n)
		}
		prev = w
		n++
	}
	if prev != tb.newest || n != len(tb.windows) {
		t.Fatalf("list has %d windows, map %d", n, len(tb.windows))
	}
	return n
}

func TestThrottleWindow(t *testing.T) {
	th := testThrottle(2, time.Minute, 100)
	now := time.Now()
	for i := range 2 {
		if !try(t, th, "s", "192.0.2.1", "alice", now) {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	if a, wait, _ := th.begin(context.Background(), "s", "192.0.2.1", "alice", now.Add(10*time.Second)); a != nil || wait != 50*time.Second {
		t.Fatalf("third attempt: let through=%v wait=%v, want refused for 50s", a != nil, wait)
	}
	if !try(t, th, "s", "198.51.100.1", "alice", now) {
		t.Fatal("another IP was refused")
	}
	if !try(t, th, "s", "192.0.2.1", "alice", now.Add(time.Minute)) {
		t.Fatal("still refused after the window")
	}
	// A success forgets the user's failures from that client.
	th = testThrottle(2, time.Minute, 100)
	try(t, th, "s", "192.0.2.1", "bob", now)
	a, _, _ := th.begin(context.Background(), "s", "192.0.2.1", "bob", now)
	a.succeeded(context.Background())
	if !try(t, th, "s", "192.0.2.1", "bob", now) || !try(t, th, "s", "192.0.2.1", "bob", now) {
		t.Fatal("a success did not clear the count")
	}
}

func TestThrottleCountsOnlyFailures(t *testing.T) {
	th := testThrottle(1, time.Minute, 100)
	now := time.Now()
	ctx := context.Background()
	// An office behind NAT: 50 users log in at once, and again.
	for range 2 {
		var attempts []*attempt
		for i := range 50 {
			a, _, _ := th.begin(ctx, "s", "192.0.2.1", fmt.Sprintf("user%d", i), now)
			if a == nil {
				t.Fatalf("user%d refused while 49 others log in", i)
			}
			attempts = append(attempts, a)
		}
		for _, a := range attempts {
			a.succeeded(ctx)
		}
	}
	if n := checkTable(t, th.table); n != 0 || len(th.table.inFlight) != 0 {
		t.Fatalf("successes left %d windows and %d in flight", n, len(th.table.inFlight))
	}

	// In flight: one user's parallel guesses stop at the limit, and one
	// client's logins at maxInFlight.
	th = testThrottle(3, time.Minute, 100)
	var guesses []*attempt
	for range 3 {
		a, _, _ := th.begin(ctx, "s", "192.0.2.1", "alice", now)
		guesses = append(guesses, a)
	}
	if a, wait, _ := th.begin(ctx, "s", "192.0.2.1", "alice", now); guesses[2] == nil || a != nil || wait != time.Second {
		t.Fatalf("4th parallel guess with 3 in flight: let through=%v wait=%v", a != nil, wait)
	}
	guesses[0].failed(ctx, now)
	guesses[1].end() // neither failed nor succeeded: only out of flight
	if a, _, _ := th.begin(ctx, "s", "192.0.2.1", "alice", now); a == nil {
		t.Fatal("refused with 1 failure and 1 in flight of 3")
	} else {
		a.end()
	}
	guesses[2].end()
	var many []*attempt
	for i := range maxInFlight {
		a, _, _ := th.begin(ctx, "s", "198.51.100.1", fmt.Sprint("u", i), now)
		if a == nil {
			t.Fatalf("login %d in flight refused", i+1)
		}
		many = append(many, a)
	}
	if a, _, _ := th.begin(ctx, "s", "198.51.100.1", "one-more", now); a != nil {
		t.Fatalf("login %d in flight from one client let through", maxInFlight+1)
	}
	for _, a := range many {
		a.end()
	}
	if len(th.table.inFlight) != 0 {
		t.Fatalf("%d keys still in flight", len(th.table.inFlight))
	}
}

func TestThrottleRefusalCreatesNothing(t *testing.T) {
	th := testThrottle(2, time.Minute, 1000)
	now := time.Now()
	for i := range 8 { // 4 × 2 failures: the client is locked out
		if !try(t, th, "s", "192.0.2.1", fmt.Sprint("name", i), now) {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	before := checkTable(t, th.table)
	for i := range 10_000 {
		if try(t, th, "s", "192.0.2.1", fmt.Sprint("other", i), now) {
			t.Fatal("a locked-out client was let through")
		}
	}
	if after := checkTable(t, th.table); after != before || len(th.table.inFlight) != 0 {
		t.Fatalf("refused attempts changed the table: %d → %d windows, %d in flight", before, after, len(th.table.inFlight))
	}
}

func TestThrottleBoundedUnderFlood(t *testing.T) {
	const capacity = 1000
	th := testThrottle(5, time.Minute, capacity)
	now := time.Now()
	// Distinct names from many clients, each under its own limits.
	for i := range 50_000 {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		try(t, th, "s", ip, fmt.Sprint("name", i), now.Add(time.Duration(i)*time.Microsecond))
		if len(th.table.windows) > capacity {
			t.Fatalf("%d windows after %d failures, capacity %d", len(th.table.windows), i+1, capacity)
		}
	}
	if n := checkTable(t, th.table); n != capacity {
		t.Fatalf("%d windows, want the table full (%d)", n, capacity)
	}
	// The latest failures are the ones kept.
	last := 49_999
	ip := fmt.Sprintf("10.%d.%d.%d", last>>16&255, last>>8&255, last&255)
	th.table.mu.Lock()
	got := th.table.count(keysFor("s", ip, fmt.Sprint("name", last)).user, now.Add(time.Second)).n
	th.table.mu.Unlock()
	if got != 1 {
		t.Fatalf("the newest failure is not counted: %d", got)
	}
	// Once their windows have ended, failures drop the old windows from
	// the front as they come.
	later := now.Add(2 * time.Minute)
	for i := range capacity / 4 {
		try(t, th, "s", fmt.Sprint("192.0.2.", i), "late", later)
	}
	if n := checkTable(t, th.table); n != capacity/2 {
		t.Fatalf("%d windows after %d new ones, want the ended ones dropped", n, capacity/2)
	}
}

func TestThrottleIPv6CountsPer64(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":        "2001:db8:1:2::/64",
		"fe80::1%eth0":              "fe80::/64",
		"192.0.2.1:4321":            "192.0.2.1",
		"[2001:db8:1:2::9]:443":     "2001:db8:1:2::/64",
		"not an address":            "not an address",
		"[::ffff:198.51.100.7]:443": "198.51.100.7",
	} {
		if got := clientNet(in); got != want {
			t.Errorf("clientNet(%q) = %q, want %q", in, got, want)
		}
	}

	th := testThrottle(2, time.Minute, 100)
	now := time.Now()
	try(t, th, "s", "2001:db8:1:2::1", "alice", now)
	try(t, th, "s", "2001:db8:1:2:ffff::2", "alice", now)
	if try(t, th, "s", "2001:db8:1:2::3", "alice", now) {
		t.Fatal("a new address in the same /64 got a new budget")
	}
	if !try(t, th, "s", "2001:db8:1:3::1", "alice", now) {
		t.Fatal("another /64 was refused")
	}
	try(t, th, "s", "192.0.2.1", "bob", now)
	try(t, th, "s", "192.0.2.1", "bob", now)
	if try(t, th, "s", "::ffff:192.0.2.1", "bob", now) {
		t.Fatal("an IPv4-mapped address got a budget of its own")
	}
}

func TestThrottleScopes(t *testing.T) {
	th := testThrottle(1, time.Minute, 100)
	now := time.Now()
	try(t, th, "a.example", "192.0.2.1", "alice", now)
	if try(t, th, "a.example", "192.0.2.1", "alice", now) {
		t.Fatal("not locked out")
	}
	if !try(t, th, "b.example", "192.0.2.1", "alice", now) {
		t.Fatal("a lockout on one site locked the same name out of another")
	}
	// The scope is the handler's config, never the request: the same
	// config (N instances) shares it, other users or a realm do not.
	scope := func(h Handler) string { return h.throttleScope() }
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

func TestThrottleSurvivesReload(t *testing.T) {
	// Each config's handler has a throttle of its own limits over the
	// process's table.
	old := newThrottle(&LoginLimit{Failures: 1, Window: caddy.Duration(time.Minute)}, &MemoryStore{}, zap.NewNop())
	scope := fmt.Sprint("reload-", time.Now().UnixNano())
	now := time.Now()
	try(t, old, scope, "192.0.2.1", "alice", now)
	reloaded := newThrottle(&LoginLimit{Failures: 1, Window: caddy.Duration(time.Minute)}, &MemoryStore{}, zap.NewNop())
	if try(t, reloaded, scope, "192.0.2.1", "alice", now) {
		t.Fatal("a reload wiped out a lockout")
	}
	raised := newThrottle(&LoginLimit{Failures: 2, Window: caddy.Duration(time.Minute)}, &MemoryStore{}, zap.NewNop())
	if !try(t, raised, scope, "192.0.2.1", "alice", now) {
		t.Fatal("the new config's limit was not used")
	}
}

// redisThrottle is a throttle whose failures are kept in Redis under
// prefix, over a table of its own (as if in a process of its own).
func redisThrottle(client redis.UniversalClient, prefix string, failures int) (*throttle, *observer.ObservedLogs) {
	th := testThrottle(failures, time.Minute, 100)
	th.redis = &redisFailures{client: client, prefix: prefix + "throttle:"}
	core, logs := observer.New(zap.DebugLevel)
	th.logger = zap.New(core)
	return th, logs
}

func TestThrottleRedisSharesOneBudget(t *testing.T) {
	client, _ := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	a, logsA := redisThrottle(client, prefix, 3)
	b, logsB := redisThrottle(client, prefix, 3)
	now := time.Now()
	try(t, a, "s", "192.0.2.1", "alice", now)
	try(t, b, "s", "192.0.2.1", "alice", now)
	try(t, a, "s", "192.0.2.1", "alice", now)
	for name, th := range map[string]*throttle{"a": a, "b": b} {
		at, wait, err := th.begin(context.Background(), "s", "192.0.2.1", "alice", now)
		if err != nil || at != nil || wait <= 50*time.Second || wait > time.Minute {
			t.Fatalf("%s after 3 failures on two instances: let through=%v wait=%v err=%v", name, at != nil, wait, err)
		}
	}
	keys, err := client.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %q, want the user's and the client's", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"throttle:{") || strings.Contains(k, "alice") || strings.Contains(k, "192.0.2.1") {
			t.Errorf("key %q: want a hash under the store's prefix", k)
		}
		if ttl := client.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("key %q has TTL %v, want the window", k, ttl)
		}
	}
	// A refusal writes nothing; a success deletes the user's count.
	for i := range 20 {
		try(t, a, "s", "192.0.2.1", fmt.Sprint("x", i), now) // 9 fail, then the client is locked out
	}
	if n := len(client.Keys(context.Background(), prefix+"*").Val()); n != 2+9 {
		t.Fatalf("%d keys after 9 failures and 11 refusals, want 11", n)
	}
	try(t, b, "s", "198.51.100.1", "bob", now)
	at, _, _ := b.begin(context.Background(), "s", "198.51.100.1", "bob", now)
	at.succeeded(context.Background())
	user, _ := b.redis.names(keysFor("s", "198.51.100.1", "bob"))
	if client.Exists(context.Background(), user).Val() != 0 {
		t.Fatal("a success left the user's count")
	}
	// A count that has lost its TTL gets one at the next failure.
	user, _ = a.redis.names(keysFor("s", "203.0.113.9", "carol"))
	client.Set(context.Background(), user, 1, 0)
	try(t, a, "s", "203.0.113.9", "carol", now)
	if ttl := client.PTTL(context.Background(), user).Val(); ttl <= 0 {
		t.Fatalf("a count without TTL kept none after a failure: %v", ttl)
	}
	for _, e := range append(logsA.All(), logsB.All()...) {
		t.Errorf("logged: %s %v", e.Message, e.ContextMap())
	}
}

func TestThrottleRedisDownFailsClosed(t *testing.T) {
	port := freeTCPPort(t)
	client := redis.NewClient(&redis.Options{Addr: port, DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer client.Close()
	th, _ := redisThrottle(client, "down:", 3)
	a, _, err := th.begin(context.Background(), "s", "192.0.2.1", "alice", time.Now())
	if err == nil || a != nil {
		t.Fatalf("begin with Redis down: let through=%v err=%v, want an error", a != nil, err)
	}
	if len(th.table.inFlight) != 0 {
		t.Fatal("a failed check left an attempt in flight")
	}
}

func freeTCPPort(t testing.TB) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
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
	h.cop = http.NewCrossOriginProtection()
	h.throttle, _ = redisThrottle(client, storetest.RedisPrefix(t), 5)
	var err error
	if h.users, err = newUserDB([]User{{Name: "alice", Hash: testHash}}, "", h.logger); err != nil {
		t.Fatal(err)
	}
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
	h.cop = http.NewCrossOriginProtection()
	h.throttle = testThrottle(2, time.Minute, 100)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if h.users, err = newUserDB([]User{{Name: "alice", Hash: string(hash)}, {Name: "bob", Hash: string(hash)}}, "", h.logger); err != nil {
		t.Fatal(err)
	}
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

// BenchmarkThrottleFlood is failed logins of distinct names from distinct
// clients against a full table: each one evicts the oldest windows.
// "refused" is the same flood from one locked-out client.
func BenchmarkThrottleFlood(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	names := make([]string, 1<<16)
	ips := make([]string, 1<<16)
	for i := range names {
		names[i] = fmt.Sprint("user", i)
		ips[i] = fmt.Sprintf("10.0.%d.%d", i>>8, i&255)
	}
	b.Run("failures", func(b *testing.B) {
		th := testThrottle(5, time.Hour, maxThrottleWindows)
		for i := range maxThrottleWindows {
			try(b, th, "s", fmt.Sprint("fill", i), "x", now)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := i.Add(1)
				a, _, _ := th.begin(ctx, "s", ips[n&0xffff], names[n>>16&0xffff], now)
				if a != nil {
					a.failed(ctx, now)
				}
			}
		})
		if len(th.table.windows) > maxThrottleWindows {
			b.Fatal("over capacity")
		}
	})
	b.Run("refused", func(b *testing.B) {
		th := testThrottle(5, time.Hour, maxThrottleWindows)
		for i := range 20 {
			try(b, th, "s", "192.0.2.1", fmt.Sprint("x", i), now)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if a, _, _ := th.begin(ctx, "s", "192.0.2.1", names[i.Add(1)&0xffff], now); a != nil {
					b.Fatal("let through")
				}
			}
		})
	})
}
