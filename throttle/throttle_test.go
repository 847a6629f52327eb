package throttle

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// testThrottle is a throttle over a table of its own.
func testThrottle(failures int, window time.Duration, capacity int) *Throttle {
	return NewPrivate(Limit{Failures: failures, Window: window}, nil, capacity, zap.NewNop())
}

// try makes one attempt that fails; it reports whether it was let through.
func try(t testing.TB, th *Throttle, scope, ip, user string, now time.Time) bool {
	t.Helper()
	a, _, err := th.Begin(context.Background(), scope, ip, user, now)
	if err != nil {
		t.Fatal(err)
	}
	if a == nil {
		return false
	}
	a.Failed(context.Background(), now)
	return true
}

// checkTable checks that the list holds exactly the table's windows, in
// the order they started, and returns how many there are.
func checkTable(t testing.TB, tb *table) int {
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
	if a, wait, _ := th.Begin(context.Background(), "s", "192.0.2.1", "alice", now.Add(10*time.Second)); a != nil || wait != 50*time.Second {
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
	a, _, _ := th.Begin(context.Background(), "s", "192.0.2.1", "bob", now)
	a.Succeeded(context.Background())
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
		var attempts []*Attempt
		for i := range 50 {
			a, _, _ := th.Begin(ctx, "s", "192.0.2.1", fmt.Sprintf("user%d", i), now)
			if a == nil {
				t.Fatalf("user%d refused while 49 others log in", i)
			}
			attempts = append(attempts, a)
		}
		for _, a := range attempts {
			a.Succeeded(ctx)
		}
	}
	if n := checkTable(t, th.table); n != 0 || len(th.table.inFlight) != 0 {
		t.Fatalf("successes left %d windows and %d in flight", n, len(th.table.inFlight))
	}

	// In flight: one user's parallel guesses stop at the limit, and one
	// client's logins at maxInFlight.
	th = testThrottle(3, time.Minute, 100)
	var guesses []*Attempt
	for range 3 {
		a, _, _ := th.Begin(ctx, "s", "192.0.2.1", "alice", now)
		guesses = append(guesses, a)
	}
	if a, wait, _ := th.Begin(ctx, "s", "192.0.2.1", "alice", now); guesses[2] == nil || a != nil || wait != time.Second {
		t.Fatalf("4th parallel guess with 3 in flight: let through=%v wait=%v", a != nil, wait)
	}
	guesses[0].Failed(ctx, now)
	guesses[1].End() // neither failed nor succeeded: only out of flight
	if a, _, _ := th.Begin(ctx, "s", "192.0.2.1", "alice", now); a == nil {
		t.Fatal("refused with 1 failure and 1 in flight of 3")
	} else {
		a.End()
	}
	guesses[2].End()
	var many []*Attempt
	for i := range maxInFlight {
		a, _, _ := th.Begin(ctx, "s", "198.51.100.1", fmt.Sprint("u", i), now)
		if a == nil {
			t.Fatalf("login %d in flight refused", i+1)
		}
		many = append(many, a)
	}
	if a, _, _ := th.Begin(ctx, "s", "198.51.100.1", "one-more", now); a != nil {
		t.Fatalf("login %d in flight from one client let through", maxInFlight+1)
	}
	for _, a := range many {
		a.End()
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
		if got := ClientNet(in); got != want {
			t.Errorf("ClientNet(%q) = %q, want %q", in, got, want)
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
}

func TestThrottleSurvivesReload(t *testing.T) {
	// Each config's handler has a throttle of its own limits over the
	// process's table.
	old := New(Limit{Failures: 1, Window: time.Minute}, nil, zap.NewNop())
	scope := fmt.Sprint("reload-", time.Now().UnixNano())
	now := time.Now()
	try(t, old, scope, "192.0.2.1", "alice", now)
	reloaded := New(Limit{Failures: 1, Window: time.Minute}, nil, zap.NewNop())
	if try(t, reloaded, scope, "192.0.2.1", "alice", now) {
		t.Fatal("a reload wiped out a lockout")
	}
	raised := New(Limit{Failures: 2, Window: time.Minute}, nil, zap.NewNop())
	if !try(t, raised, scope, "192.0.2.1", "alice", now) {
		t.Fatal("the new config's limit was not used")
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
		th := testThrottle(5, time.Hour, maxWindows)
		for i := range maxWindows {
			try(b, th, "s", fmt.Sprint("fill", i), "x", now)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := i.Add(1)
				a, _, _ := th.Begin(ctx, "s", ips[n&0xffff], names[n>>16&0xffff], now)
				if a != nil {
					a.Failed(ctx, now)
				}
			}
		})
		if len(th.table.windows) > maxWindows {
			b.Fatal("over capacity")
		}
	})
	b.Run("refused", func(b *testing.B) {
		th := testThrottle(5, time.Hour, maxWindows)
		for i := range 20 {
			try(b, th, "s", "192.0.2.1", fmt.Sprint("x", i), now)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if a, _, _ := th.Begin(ctx, "s", "192.0.2.1", names[i.Add(1)&0xffff], now); a != nil {
					b.Fatal("let through")
				}
			}
		})
	})
}
