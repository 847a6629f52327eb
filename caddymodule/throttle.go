package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/throttle"
)

// newThrottle returns the login throttle for a handler with these limits
// and store: counts live in Redis with the redis store (under its prefix,
// sharing its client), else in the process.
func newThrottle(limit *LoginLimit, store any, logger *zap.Logger) *throttle.Throttle {
	l := throttle.Limit{Failures: limit.Failures, Window: time.Duration(limit.Window)}
	var shared *throttle.Redis
	if rs, ok := store.(*RedisStore); ok {
		shared = &throttle.Redis{Client: rs.RedisClient(), Prefix: rs.Prefix, Where: rs.Where()}
	}
	return throttle.New(l, shared, logger)
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
func throttleScope(realm string, users []User, usersFile string) string {
	if realm != "" {
		return "realm\x00" + realm
	}
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.Name+"\x00"+u.Hash)
	}
	slices.Sort(names)
	sum := sha256.Sum256([]byte(strings.Join(append(names, "\x00"+usersFile), "\x00")))
	return "users\x00" + hex.EncodeToString(sum[:16])
}
