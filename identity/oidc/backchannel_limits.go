package oidc

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/edgesession/edgesession/throttle"
)

// Anyone can POST to a back-channel logout endpoint, so it is limited,
// but only where a request costs: a flood must not crowd out the
// provider's own logouts (a budget shared by all senders would be spent
// by the flood first), nor fill the log.
//
//   - Per client address (an IPv4 address or an IPv6 /64), every request:
//     one flooding address gets 429 while every other address, the
//     provider's among them, goes on as before.
//   - Fetches of the provider's keys, which a token signed with a key not
//     yet seen (or with a bad signature) triggers: at most
//     keyFetchBurst, then one every keyFetchEvery, for all senders
//     together. A token signed with a key already known never waits for
//     this budget, and the cached keys are never older than keyFetchEvery
//     plus the time to fetch them, even under a flood.
//   - Everything else a junk request can cost is cheap and refused before
//     any of the above: no token, not a JWT, another type, issuer,
//     audience, age or claims wrong (see verifyLogoutToken).
//
// Refusals are logged once per refusalLogEvery per provider: the first
// with its reason, then how many more were refused and why.
const (
	backchannelPerAddress      = 20 // requests a second, per address
	backchannelPerAddressBurst = 200
	keyFetchEvery              = 5 * time.Second
	keyFetchBurst              = 2
	refusalLogEvery            = 10 * time.Second
	// maxLimitedAddresses bounds the addresses tracked per provider;
	// beyond it, idle ones are dropped (they would start afresh anyway).
	maxLimitedAddresses = 10_000
)

// addressLimits is a token bucket per client address.
type addressLimits struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newAddressLimits() *addressLimits {
	return &addressLimits{buckets: map[string]*rate.Limiter{}}
}

// allow reports whether the client at ip may send a request now.
func (a *addressLimits) allow(ip string, now time.Time) bool {
	k := throttle.ClientNet(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.buckets[k]
	if l == nil {
		if len(a.buckets) >= maxLimitedAddresses {
			for k, l := range a.buckets {
				if l.TokensAt(now) >= backchannelPerAddressBurst {
					delete(a.buckets, k) // idle: a new bucket is the same
				}
			}
		}
		if len(a.buckets) >= maxLimitedAddresses {
			// As many busy addresses as that: start afresh rather than
			// grow without bound (each gets its burst again).
			clear(a.buckets)
		}
		l = rate.NewLimiter(backchannelPerAddress, backchannelPerAddressBurst)
		a.buckets[k] = l
	}
	return l.AllowN(now, 1)
}

// keyFetches is the transport of the client that fetches a provider's
// keys for logout tokens: it lets a fetch through within the budget, and
// counts every fetch that is refused or fails, so that a logout whose
// token could not be checked for that reason is answered 503 (retry
// later), not 400.
type keyFetches struct {
	next    http.RoundTripper
	budget  *rate.Limiter
	failed  atomic.Uint64
	refused atomic.Uint64
}

func newKeyFetches() *keyFetches {
	return &keyFetches{next: http.DefaultTransport, budget: rate.NewLimiter(rate.Every(keyFetchEvery), keyFetchBurst)}
}

var errKeyFetchLimited = fmt.Errorf("fetching the provider's keys again so soon is not allowed (at most every %v)", keyFetchEvery)

// RoundTrip implements http.RoundTripper.
func (k *keyFetches) RoundTrip(r *http.Request) (*http.Response, error) {
	if !k.budget.Allow() {
		k.refused.Add(1)
		k.failed.Add(1)
		return nil, errKeyFetchLimited
	}
	resp, err := k.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		k.failed.Add(1)
	}
	return resp, err
}

// refusalLog logs refused back-channel logouts, at most one line per
// refusalLogEvery: the first refusal after a quiet interval with its
// reason and error, and at the end of each interval in which more came,
// how many, by reason.
type refusalLog struct {
	logger *zap.Logger
	every  time.Duration

	mu       sync.Mutex
	quiet    time.Time      // no line before then
	counts   map[string]int // refused since the last line, by reason
	lastIP   string
	since    time.Time
	flushing bool // a flush is scheduled
}

func newRefusalLog(logger *zap.Logger, every time.Duration) *refusalLog {
	return &refusalLog{logger: logger, every: every, counts: map[string]int{}}
}

// refused records one refused request from ip.
func (l *refusalLog) refused(reason, ip string, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.flushing && !now.Before(l.quiet) {
		l.quiet = now.Add(l.every)
		fields := []zap.Field{zap.String("reason", reason), zap.String("remote_ip", ip)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		l.logger.Warn("oidc logout token refused", fields...)
		return
	}
	if len(l.counts) == 0 {
		l.since = now
	}
	l.counts[reason]++
	l.lastIP = ip
	if !l.flushing {
		l.flushing = true
		time.AfterFunc(l.quiet.Sub(now), l.flush)
	}
}

// flush logs what was refused since the last line, and keeps flushing
// every interval while refusals keep coming.
func (l *refusalLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) == 0 {
		l.flushing = false
		return
	}
	n := 0
	for _, c := range l.counts {
		n += c
	}
	l.logger.Warn("oidc logout tokens refused since the last report",
		zap.Int("refused", n), zap.Any("by_reason", l.counts), zap.String("last_remote_ip", l.lastIP),
		zap.Duration("over", time.Since(l.since).Round(time.Millisecond)))
	l.counts = map[string]int{}
	l.quiet = time.Now().Add(l.every)
	time.AfterFunc(l.every, l.flush)
}
