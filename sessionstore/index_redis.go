package sessionstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The index by user in Redis is one sorted set per user,
// prefix + "user:{" + hex(h) + "}" with h a hash of the user's name, whose
// members are the hex Keys of the user's sessions scored by their expiry
// (Unix milliseconds, rounded up). Its own TTL is its latest member's
// expiry, so the set of a user who never comes back goes with their last
// session.
//
// What holds at every moment: every live session of a user is in the
// user's set, with a score no earlier than the session's expiry. So a
// session is added to the set with it or before it (Create), its score is
// raised with or before its expiry (Update), and it leaves the set only
// after it is gone: with Delete (GETDEL, then ZREM), with DeleteUser
// (UNLINK, then ZREM), or when its score passes (ZREMRANGEBYSCORE, on every
// write and read of the set). A member whose session is gone (deleted by a
// plain DEL, or replaced by a Create for another user) is harmless: it is
// dropped the next time the set is read.
//
// On one Redis (or Sentinel) the set and the session change in the same
// MULTI. In a Redis Cluster the session key (which only its hash can name,
// since Find knows no user) and the user's set are in different hash
// slots, which no MULTI or script may span: there the same commands run
// one after another, in the order above, so the invariant still holds and
// only a crash between the two steps leaves a member that leads nowhere.
// There a member whose session is missing may also be a Create between
// its two steps, so reading the set (ListUser, DeleteUser) does not drop
// it: it goes when its score passes.

// redisIndexAdd adds a member to a user's set (or raises its score), trims
// what has expired and sets the set's TTL to its latest member's expiry.
// KEYS[1] the set; ARGV[1] member, ARGV[2] expiry, ARGV[3] now (ms). One
// key, so it runs in a Cluster too; it needs Redis 6.2 (ZADD GT).
const redisIndexAdd = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1`

// userName returns the name of user's index. The user's name is hashed:
// it may hold any character, braces included, which would otherwise pick
// the Cluster hash slot.
func (r *Redis) userName(user string) string {
	h := sha256.Sum256([]byte("edgesession user index\x00" + user))
	return r.prefix + "user:{" + hex.EncodeToString(h[:16]) + "}"
}

// ms is t in Unix milliseconds, rounded up: a score is never earlier than
// the expiry it stands for.
func ms(t time.Time) int64 {
	return (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// index runs redisIndexAdd on c (a MULTI, or the client itself).
func (r *Redis) index(ctx context.Context, c redis.Cmdable, user string, key Key, expires time.Time) error {
	return c.Eval(ctx, redisIndexAdd, []string{r.userName(user)}, key.String(), ms(expires), time.Now().UnixMilli()).Err()
}

// withIndex runs fn, which writes a session of user and its index, in one
// MULTI; in a Cluster (or for user "", who has no index) it gives fn the
// client, so that each command runs as fn sends it, in fn's order.
func (r *Redis) withIndex(ctx context.Context, user string, fn func(redis.Cmdable) error) error {
	if user == "" || r.cluster {
		return fn(r.client)
	}
	_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error { return fn(pipe) })
	return err
}

// userKeys trims user's set and returns the keys it holds.
func (r *Redis) userKeys(ctx context.Context, user string) ([]Key, error) {
	set := r.userName(user)
	var members *redis.StringSliceCmd
	_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZRemRangeByScore(ctx, set, "-inf", strconv.FormatInt(time.Now().UnixMilli(), 10))
		members = pipe.ZRange(ctx, set, 0, -1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(members.Val()))
	var junk []any
	for _, m := range members.Val() {
		b, err := hex.DecodeString(m)
		if err != nil || len(b) != len(Key{}) {
			junk = append(junk, m)
			continue
		}
		keys = append(keys, Key(b))
	}
	if len(junk) > 0 {
		r.client.ZRem(ctx, set, junk...)
	}
	return keys, nil
}

// getAll reads the records stored under keys, in one pipeline: nil for a
// key that is not there.
func (r *Redis) getAll(ctx context.Context, keys []Key) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = pipe.Get(ctx, r.name(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vals := make([][]byte, len(keys))
	for i, c := range cmds {
		if b, err := c.Bytes(); err == nil {
			vals[i] = b
		} else if !errors.Is(err, redis.Nil) {
			return nil, err
		}
	}
	return vals, nil
}

// forget drops members of user's set whose sessions are gone.
func (r *Redis) forget(ctx context.Context, user string, keys []Key) error {
	if len(keys) == 0 {
		return nil
	}
	members := make([]any, len(keys))
	for i, k := range keys {
		members[i] = k.String()
	}
	return r.client.ZRem(ctx, r.userName(user), members...).Err()
}

// ListUser implements UserIndex: the user's set, then one pipeline of GETs.
func (r *Redis) ListUser(ctx context.Context, user string) ([]Entry, error) {
	if user == "" {
		return nil, ctx.Err()
	}
	keys, err := r.userKeys(ctx, user)
	if err != nil || len(keys) == 0 {
		return nil, redisErr(err)
	}
	vals, err := r.getAll(ctx, keys)
	if err != nil {
		return nil, redisErr(err)
	}
	now := time.Now()
	var es []Entry
	var gone []Key
	for i, v := range vals {
		var rec Record
		if v == nil && r.cluster {
			continue // perhaps not created yet (see the top of this file)
		}
		if v == nil || rec.UnmarshalBinary(v) != nil || rec.User != user {
			gone = append(gone, keys[i])
			continue
		}
		if rec.Expired(now) {
			continue
		}
		es = append(es, Entry{Handle: keys[i].Handle(), Record: rec})
	}
	r.forget(ctx, user, gone) // tidying; what is left is dropped next time
	sortEntries(es)
	return es, nil
}

// DeleteUser implements UserIndex: the user's set, one pipeline of GETs
// (to skip what is not the user's), one of UNLINKs, then ZREM.
func (r *Redis) DeleteUser(ctx context.Context, user string, handles ...Handle) ([]Key, error) {
	if user == "" {
		return nil, ctx.Err()
	}
	keys, err := r.userKeys(ctx, user)
	if err != nil {
		return nil, redisErr(err)
	}
	want := wanted(handles)
	var candidates []Key
	for _, k := range keys {
		if want(k) {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	vals, err := r.getAll(ctx, candidates)
	if err != nil {
		return nil, redisErr(err)
	}
	now := time.Now()
	// leave: the members that leave the index, all but (in a Cluster)
	// those whose session is missing; see the top of this file.
	var mine, leave []Key
	live := map[Key]bool{}
	for i, v := range vals {
		if v != nil || !r.cluster {
			leave = append(leave, candidates[i])
		}
		var rec Record
		if v == nil || rec.UnmarshalBinary(v) != nil || rec.User != user {
			continue
		}
		mine = append(mine, candidates[i])
		live[candidates[i]] = !rec.Expired(now)
	}
	unlinked := make([]*redis.IntCmd, len(mine))
	_, err = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range mine {
			unlinked[i] = pipe.Unlink(ctx, r.name(k))
		}
		return nil
	})
	if err != nil {
		return nil, redisErr(err)
	}
	var deleted []Key
	for i, k := range mine {
		if unlinked[i].Val() == 1 && live[k] {
			deleted = append(deleted, k)
		}
	}
	// Only now, with the sessions gone, may they leave the index.
	if err := r.forget(ctx, user, leave); err != nil {
		return deleted, redisErr(err)
	}
	return deleted, nil
}

// DeleteAll implements UserIndex: SCAN for every session under the prefix
// (on every master of a Cluster) and UNLINK them in batches.
//
// The users' sets are left as they are: deleting one could drop a session
// that a login adds meanwhile, and a member whose session is gone is
// dropped the next time the set is read (in a Cluster, when its score
// passes), or with the set's TTL.
func (r *Redis) DeleteAll(ctx context.Context) (int, error) {
	var mu sync.Mutex
	n := 0
	err := r.scanSessions(ctx, func(ctx context.Context, c redis.UniversalClient, batch []string) error {
		// One UNLINK per key: in a Cluster, keys of one node are in many
		// slots, which one multi-key command may not span.
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, name := range batch {
				cmds[i] = pipe.Unlink(ctx, name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		mu.Lock()
		for _, cmd := range cmds {
			n += int(cmd.Val())
		}
		mu.Unlock()
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	return n, redisErr(err)
}

// Each implements Lister by scanning every session key under the prefix
// (SCAN, then GET in pipelines of up to 500): it costs time in proportion
// to all sessions, for rare walks such as an OIDC back-channel logout by
// the provider's subject, which no index covers. fn is never called
// concurrently.
func (r *Redis) Each(ctx context.Context, fn func(Key, Record) bool) error {
	var mu sync.Mutex
	stop := errors.New("stop")
	now := time.Now()
	err := r.scanSessions(ctx, func(ctx context.Context, c redis.UniversalClient, batch []string) error {
		cmds := make([]*redis.StringCmd, len(batch))
		_, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, name := range batch {
				cmds[i] = pipe.Get(ctx, name)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for i, cmd := range cmds {
			b, err := cmd.Bytes()
			if err != nil {
				continue // gone meanwhile
			}
			var rec Record
			k, _ := hex.DecodeString(strings.TrimPrefix(batch[i], r.prefix))
			if rec.UnmarshalBinary(b) != nil || rec.Expired(now) {
				continue
			}
			if !fn(Key(k), rec) {
				return stop
			}
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return redisErr(err)
}

// scanSessions calls fn with batches of session key names, on every master
// of a Cluster (concurrently) or on the one server.
func (r *Redis) scanSessions(ctx context.Context, fn func(ctx context.Context, c redis.UniversalClient, batch []string) error) error {
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, escapeGlob(r.prefix)+"*", 1000).Iterator()
		batch := make([]string, 0, 500)
		for iter.Next(ctx) {
			if r.isSessionName(iter.Val()) {
				batch = append(batch, iter.Val())
			}
			if len(batch) == cap(batch) {
				if err := fn(ctx, c, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		return fn(ctx, c, batch)
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, r.client)
}

// isSessionName reports whether a Redis key is one of this store's
// sessions: the prefix and a hex Key, nothing else (not an index, not the
// login throttle's counts).
func (r *Redis) isSessionName(name string) bool {
	rest, ok := strings.CutPrefix(name, r.prefix)
	if !ok || len(rest) != 2*len(Key{}) {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// escapeGlob escapes what SCAN's MATCH would read as a pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func redisErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis store: %w", err)
}
