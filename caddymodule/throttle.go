package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// throttle limits password guessing (SPEC §3). Only failures count: per
// (site, client, username) `failures` in a window that starts with the
// first one, and four times as many per client over all usernames in
// the scope (see throttleScope). A client is an IPv4 address or an IPv6 /64.
//
// Attempts in flight are counted too, so that parallel guesses cannot slip
// past the limit while a hash is computed: per (site, client, username)
// together with its failures, and per client against maxInFlight, which is
// generous enough for an office behind NAT whose users all log in at nine.
// They are counted in each process, also with Redis.
type throttle struct {
	failures int
	window   time.Duration
	table    *throttleTable // attempts in flight; failures too, unless redis is set
	redis    *redisFailures // failures shared by every instance that shares the store
	logger   *zap.Logger
}

// maxInFlight bounds the logins of one client that are checked at once.
const maxInFlight = 64

// busyWait is the wait begin answers when the attempts in flight are what
// refuses an attempt, not failures: a retry may well get through.
const busyWait = time.Second

// newThrottle returns the throttle for a handler with these limits and
// store: counts live in Redis with the redis store, else in the process.
func newThrottle(limit *LoginLimit, store any, logger *zap.Logger) *throttle {
	t := &throttle{failures: limit.Failures, window: time.Duration(limit.Window), table: processThrottle, logger: logger}
	if rs, ok := store.(*RedisStore); ok {
		t.redis = &redisFailures{client: rs.RedisClient(), prefix: rs.Prefix + "throttle:", where: rs.Where()}
	}
	return t
}

// throttleScope names the handler whose users' failures count together,
// so that a lockout on one site does not lock the same name out of
// another. It comes from the config, never from the request (a catch-all
// site lets the client pick its Host, and a fresh budget per Host would be
// no limit at all): the realm if there is one, else the handler's
// credentials (users with their hashes, and the users file). Handlers with
// the same credentials share a scope, since a guess at one is a guess at
// the other; so do instances with the same config, and they share one
// budget when their counts live in Redis.
func (h *Handler) throttleScope() string {
	if h.Realm != "" {
		return "realm\x00" + h.Realm
	}
	names := make([]string, 0, len(h.Users))
	for _, u := range h.Users {
		names = append(names, u.Name+"\x00"+u.Hash)
	}
	slices.Sort(names)
	sum := sha256.Sum256([]byte(strings.Join(append(names, "\x00"+h.UsersFile), "\x00")))
	return "users\x00" + hex.EncodeToString(sum[:16])
}

// begin starts a login attempt of user from ip. It returns nil and how
// long to wait if the attempt is refused (a refused attempt changes
// nothing), and an error only if the shared counts cannot be read. The
// caller ends the attempt with failed or succeeded (or end).
func (t *throttle) begin(ctx context.Context, scope, ip, user string, now time.Time) (*attempt, time.Duration, error) {
	k := keysFor(scope, ip, user)
	var byUser, byClient failureCount
	if t.redis != nil {
		var err error
		if byUser, byClient, err = t.redis.counts(ctx, k, now, t.window); err != nil {
			return nil, 0, err
		}
	}
	tb := t.table
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if t.redis == nil {
		byUser, byClient = tb.count(k.user, now), tb.count(k.client, now)
	}
	switch {
	case byUser.n >= t.failures:
		return nil, byUser.end.Sub(now), nil
	case byClient.n >= 4*t.failures:
		return nil, byClient.end.Sub(now), nil
	case byUser.n+tb.inFlight[k.user] >= t.failures || tb.inFlight[k.client] >= maxInFlight:
		return nil, busyWait, nil
	}
	tb.inFlight[k.user]++
	tb.inFlight[k.client]++
	return &attempt{t: t, keys: k, ip: ip, user: user}, 0, nil
}

// attempt is one login attempt that begin let through.
type attempt struct {
	t        *throttle
	keys     throttleKeys
	ip, user string
	ended    bool
}

// failed counts a failure and ends the attempt. It does not depend on the
// client: one that hangs up is counted all the same.
func (a *attempt) failed(ctx context.Context, now time.Time) {
	if a.ended {
		return
	}
	a.ended = true
	t, tb := a.t, a.t.table
	if t.redis != nil {
		// Still in flight until the count is in Redis.
		if err := t.redis.add(context.WithoutCancel(ctx), a.keys, t.window); err != nil {
			t.logger.Error("login failure not counted", zap.String("user", a.user), zap.String("remote_ip", a.ip), zap.Error(err))
		}
		tb.mu.Lock()
		tb.release(a.keys)
		tb.mu.Unlock()
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.add(a.keys.user, now, t.window)
	tb.add(a.keys.client, now, t.window)
	tb.release(a.keys)
}

// succeeded ends the attempt and forgets the user's failures from this
// client; the client's count over all usernames stays.
func (a *attempt) succeeded(ctx context.Context) {
	if a.ended {
		return
	}
	a.ended = true
	t, tb := a.t, a.t.table
	if t.redis != nil {
		if err := t.redis.clear(context.WithoutCancel(ctx), a.keys); err != nil {
			t.logger.Warn("login failures not cleared", zap.String("user", a.user), zap.String("remote_ip", a.ip), zap.Error(err))
		}
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if t.redis == nil {
		tb.remove(tb.windows[a.keys.user])
	}
	tb.release(a.keys)
}

// end ends an attempt that neither failed nor succeeded, so that it does
// not stay in flight.
func (a *attempt) end() {
	if a.ended {
		return
	}
	a.ended = true
	tb := a.t.table
	tb.mu.Lock()
	tb.release(a.keys)
	tb.mu.Unlock()
}

// throttleKey names one count: a hash of the scope, the client and, for
// a per-user count, the username. Every key has the same small size,
// however long the name.
type throttleKey [16]byte

// throttleKeys are the two counts an attempt is checked against.
type throttleKeys struct {
	user, client throttleKey
}

// keysFor names the counts of an attempt of user from ip in scope (see
// throttleScope): a lockout in one scope does not reach another.
func keysFor(scope, ip, user string) throttleKeys {
	client := clientNet(ip)
	return throttleKeys{
		user:   hashKey('u', scope, client, user),
		client: hashKey('c', scope, client, ""),
	}
}

func hashKey(kind byte, scope, client, user string) throttleKey {
	var buf [128]byte
	b := append(buf[:0], kind)
	for _, s := range []string{scope, client, user} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	return throttleKey(sum[:16])
}

// clientNet is what one client's attempts are counted under: its IPv4
// address (also when written as IPv4-mapped IPv6), or its IPv6 /64, since
// one host may use any address of its /64.
func clientNet(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		ap, err := netip.ParseAddrPort(ip) // r.RemoteAddr, outside Caddy
		if err != nil {
			return ip
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// failureCount is a count of failures and when its window ends.
type failureCount struct {
	n   int
	end time.Time
}

// throttleTable is the process's throttle state, so that a config reload
// does not wipe out a lockout. Failure windows sit in a list in the order
// they started: ended ones drop from the front a few at a time as
// failures come in, and at capacity the oldest is dropped. An attempt
// costs O(1) work, and memory stays bounded under any flood.
type throttleTable struct {
	mu       sync.Mutex
	capacity int
	windows  map[throttleKey]*failureWindow
	oldest   *failureWindow
	newest   *failureWindow
	inFlight map[throttleKey]int
}

type failureWindow struct {
	key          throttleKey
	n            int
	end          time.Time
	older, newer *failureWindow
}

// maxThrottleWindows bounds the process's failure windows: about 14 MB.
const maxThrottleWindows = 100_000

// dropPerAdd is how many ended windows counting a failure drops at most:
// more than the one it may add, so that ended windows do not pile up.
const dropPerAdd = 2

var processThrottle = newThrottleTable(maxThrottleWindows)

func newThrottleTable(capacity int) *throttleTable {
	return &throttleTable{capacity: capacity, windows: map[throttleKey]*failureWindow{}, inFlight: map[throttleKey]int{}}
}

// The methods below are called with mu held.

func (tb *throttleTable) count(k throttleKey, now time.Time) failureCount {
	if w := tb.windows[k]; w != nil && now.Before(w.end) {
		return failureCount{n: w.n, end: w.end}
	}
	return failureCount{}
}

// add counts a failure, starting a new window if k has none.
func (tb *throttleTable) add(k throttleKey, now time.Time, window time.Duration) {
	for i := 0; i < dropPerAdd && tb.oldest != nil && !now.Before(tb.oldest.end); i++ {
		tb.remove(tb.oldest)
	}
	w := tb.windows[k]
	if w != nil && now.Before(w.end) {
		w.n++
		return
	}
	if w != nil {
		tb.remove(w)
	} else if len(tb.windows) >= tb.capacity {
		tb.remove(tb.oldest)
	}
	w = &failureWindow{key: k, n: 1, end: now.Add(window), older: tb.newest}
	if tb.newest != nil {
		tb.newest.newer = w
	} else {
		tb.oldest = w
	}
	tb.newest = w
	tb.windows[k] = w
}

// remove forgets w; w may be nil.
func (tb *throttleTable) remove(w *failureWindow) {
	if w == nil {
		return
	}
	if w.older != nil {
		w.older.newer = w.newer
	} else {
		tb.oldest = w.newer
	}
	if w.newer != nil {
		w.newer.older = w.older
	} else {
		tb.newest = w.older
	}
	delete(tb.windows, w.key)
}

func (tb *throttleTable) release(k throttleKeys) {
	for _, key := range []throttleKey{k.user, k.client} {
		if tb.inFlight[key]--; tb.inFlight[key] <= 0 {
			delete(tb.inFlight, key)
		}
	}
}
