package throttle

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Limit is how many failures are let through. Per (scope, client, user)
// Failures in a Window that starts with the first one, and four times as
// many per (scope, client) over all usernames.
type Limit struct {
	// Failures for one username from one client before further attempts
	// are refused.
	Failures int
	// Window is how long failures are counted and a lockout lasts.
	Window time.Duration
}

// Redis is where failures are counted when they are shared by every
// instance that uses the same Redis: the Redis of the session store,
// whose client the throttle shares. An error names it as the redis store
// (see Where), since the store is what is down.
type Redis struct {
	Client redis.UniversalClient
	// Prefix starts every key the throttle writes: its keys are
	// <Prefix>throttle:{<client>} and <Prefix>throttle:{<client>}:<user>,
	// hashes that name neither.
	Prefix string
	// Where names the store's servers in errors.
	Where string
}

// Throttle limits password guessing. Only failures count: per (scope,
// client, username) limit.Failures in a window that starts with the first
// one, and four times as many per client over all usernames in the scope.
// A client is an IPv4 address or an IPv6 /64 (see ClientNet).
//
// Attempts in flight are counted too, so that parallel guesses cannot slip
// past the limit while a hash is computed: per (scope, client, username)
// together with its failures, and per client against maxInFlight, which is
// generous enough for an office behind NAT whose users all log in at nine.
// They are counted in each process, also with Redis.
type Throttle struct {
	failures int
	window   time.Duration
	table    *table         // attempts in flight; failures too, unless redis is set
	redis    *redisFailures // failures shared by every instance that shares the store
	logger   *zap.Logger
}

// maxInFlight bounds the logins of one client that are checked at once.
const maxInFlight = 64

// BusyWait is the wait Begin answers when the attempts in flight are what
// refuses an attempt, not failures: a retry may well get through.
const BusyWait = time.Second

// New returns a throttle with these limits over the process's table, so
// that a throttle made for a new config sees the lockouts of the one
// before it. With shared set, failures are counted in Redis instead, and
// only the attempts in flight in the process's table. logger gets the
// failures to update the counts in Redis.
func New(limit Limit, shared *Redis, logger *zap.Logger) *Throttle {
	return newThrottle(limit, shared, processTable, logger)
}

// NewPrivate is New over a table of its own that keeps at most capacity
// failure windows: its counts are seen by no other throttle of the
// process (with shared set, its failures still are, through Redis).
func NewPrivate(limit Limit, shared *Redis, capacity int, logger *zap.Logger) *Throttle {
	return newThrottle(limit, shared, newTable(capacity), logger)
}

func newThrottle(limit Limit, shared *Redis, tb *table, logger *zap.Logger) *Throttle {
	t := &Throttle{failures: limit.Failures, window: limit.Window, table: tb, logger: logger}
	if shared != nil {
		t.redis = &redisFailures{client: shared.Client, prefix: shared.Prefix + "throttle:", where: shared.Where}
	}
	return t
}

// Begin starts a login attempt of user from ip in scope: failures count
// together in one scope, and a lockout in one does not reach another. It
// returns nil and how long to wait if the attempt is refused (a refused
// attempt changes nothing), and an error only if the shared counts cannot
// be read. The caller ends the attempt with Failed or Succeeded (or End).
func (t *Throttle) Begin(ctx context.Context, scope, ip, user string, now time.Time) (*Attempt, time.Duration, error) {
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
		return nil, BusyWait, nil
	}
	tb.inFlight[k.user]++
	tb.inFlight[k.client]++
	return &Attempt{t: t, keys: k, ip: ip, user: user}, 0, nil
}

// Attempt is one login attempt that Begin let through. It is used by one
// goroutine.
type Attempt struct {
	t        *Throttle
	keys     attemptKeys
	ip, user string
	ended    bool
}

// Failed counts a failure and ends the attempt. It does not depend on the
// client: one that hangs up (ctx cancelled) is counted all the same.
func (a *Attempt) Failed(ctx context.Context, now time.Time) {
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

// Succeeded ends the attempt and forgets the user's failures from this
// client; the client's count over all usernames stays.
func (a *Attempt) Succeeded(ctx context.Context) {
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

// End ends an attempt that neither failed nor succeeded, so that it does
// not stay in flight. After Failed or Succeeded it does nothing, so that
// a caller may defer it.
func (a *Attempt) End() {
	if a.ended {
		return
	}
	a.ended = true
	tb := a.t.table
	tb.mu.Lock()
	tb.release(a.keys)
	tb.mu.Unlock()
}
