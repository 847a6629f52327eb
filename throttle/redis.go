package throttle

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisFailures keeps the login throttle's failure counts in Redis, so
// that the instances that share a Redis share one budget. Each count is
// a key whose TTL ends its window. Both keys of an attempt
// share a hash tag (the client's), so that they live on one node of a
// cluster and each operation is one round trip:
//
//	<prefix>{<client key>}             failures of the client
//	<prefix>{<client key>}:<user key>  failures of the user from the client
//
// where prefix is Redis.Prefix + "throttle:".
//
// Only logins touch these keys: a check reads both, a failure increments
// both, a success deletes the user's.
type redisFailures struct {
	client redis.UniversalClient
	prefix string
	where  string // the store's servers, for errors
}

// failed says that the store's Redis failed the throttle: the store is
// what is down, and the error names it.
func (rf *redisFailures) failed(err error) error {
	return fmt.Errorf("redis store (%s), which keeps the login throttle's counts: %w", rf.where, err)
}

func (rf *redisFailures) names(k attemptKeys) (user, client string) {
	client = rf.prefix + "{" + hex.EncodeToString(k.client[:]) + "}"
	return client + ":" + hex.EncodeToString(k.user[:]), client
}

// counts reads both counts in one pipeline. A count whose key has lost
// its TTL is taken to last a window from now.
func (rf *redisFailures) counts(ctx context.Context, k attemptKeys, now time.Time, window time.Duration) (byUser, byClient failureCount, err error) {
	user, client := rf.names(k)
	var gets [2]*redis.StringCmd
	var ttls [2]*redis.DurationCmd
	// Each command's own error is looked at below: a missing key is
	// redis.Nil, which is no error here.
	rf.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range []string{user, client} {
			gets[i] = p.Get(ctx, name)
			ttls[i] = p.PTTL(ctx, name)
		}
		return nil
	})
	var c [2]failureCount
	for i := range c {
		n, err := gets[i].Int()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err == nil {
			err = ttls[i].Err()
		}
		if err != nil {
			return failureCount{}, failureCount{}, rf.failed(err)
		}
		ttl := ttls[i].Val()
		if ttl <= 0 {
			ttl = window
		}
		c[i] = failureCount{n: n, end: now.Add(ttl)}
	}
	return c[0], c[1], nil
}

// add counts a failure on both keys in one pipeline. SET NX PX starts a
// window that has none and INCR keeps its TTL: what INCR with PEXPIRE NX
// does, without needing Redis 7. Should a key end between the two (INCR
// then makes one without a TTL), it is given its TTL in a second round trip.
func (rf *redisFailures) add(ctx context.Context, k attemptKeys, window time.Duration) error {
	user, client := rf.names(k)
	names := []string{user, client}
	var ttls [2]*redis.DurationCmd
	_, err := rf.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			p.SetNX(ctx, name, 0, window)
			p.Incr(ctx, name)
			ttls[i] = p.PTTL(ctx, name)
		}
		return nil
	})
	if err != nil {
		return rf.failed(err)
	}
	for i, ttl := range ttls {
		if ttl.Val() == -1 { // PTTL's "no TTL"
			if err := rf.client.PExpire(ctx, names[i], window).Err(); err != nil {
				return rf.failed(err)
			}
		}
	}
	return nil
}

// clear forgets the user's failures from the client.
func (rf *redisFailures) clear(ctx context.Context, k attemptKeys) error {
	user, _ := rf.names(k)
	if err := rf.client.Del(ctx, user).Err(); err != nil {
		return rf.failed(err)
	}
	return nil
}
