package caddymodule

import (
	"fmt"
	"sync"
	"time"
)

// throttle counts login attempts in fixed windows that start with a
// key's first failure: per (client IP, username), and per client IP over
// all usernames, which may fail four times as often. An attempt is counted
// before the password is checked (and taken back if it succeeds), so that
// parallel guesses cannot slip past the limit while a hash is computed.
type throttle struct {
	limit  int
	window time.Duration

	mu     sync.Mutex
	counts map[string]*attempts
}

type attempts struct {
	n     int
	start time.Time
}

// maxThrottleKeys bounds the memory of the throttle; past it, windows that
// have ended are dropped.
const maxThrottleKeys = 100_000

// throttles keeps throttle state across config reloads, keyed by limits,
// so that a reload does not wipe out a lockout.
var throttles sync.Map

func loadThrottle(limit int, window time.Duration) *throttle {
	key := fmt.Sprintf("%d/%v", limit, window)
	v, _ := throttles.LoadOrStore(key, &throttle{limit: limit, window: window, counts: map[string]*attempts{}})
	return v.(*throttle)
}

func userKey(ip, user string) string { return "u\x00" + ip + "\x00" + user }
func ipKey(ip string) string         { return "i\x00" + ip }

// begin counts an attempt. If the limit was already reached, it counts
// nothing and returns how long until the window ends.
func (t *throttle) begin(ip, user string, now time.Time) (retryAfter time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, i := t.get(userKey(ip, user), now), t.get(ipKey(ip), now)
	if u.n >= t.limit {
		return u.start.Add(t.window).Sub(now), false
	}
	if i.n >= 4*t.limit {
		return i.start.Add(t.window).Sub(now), false
	}
	u.n++
	i.n++
	return 0, true
}

// succeeded takes back the attempt begin counted and clears the
// (IP, user) count.
func (t *throttle) succeeded(ip, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.counts, userKey(ip, user))
	if i, ok := t.counts[ipKey(ip)]; ok && i.n > 0 {
		i.n--
	}
}

// get returns the live window for key, starting a new one if it ended.
func (t *throttle) get(key string, now time.Time) *attempts {
	a, ok := t.counts[key]
	if ok && now.Sub(a.start) < t.window {
		return a
	}
	if !ok && len(t.counts) >= maxThrottleKeys {
		t.sweep(now)
	}
	a = &attempts{start: now}
	t.counts[key] = a
	return a
}

func (t *throttle) sweep(now time.Time) {
	for k, a := range t.counts {
		if now.Sub(a.start) >= t.window {
			delete(t.counts, k)
		}
	}
}
