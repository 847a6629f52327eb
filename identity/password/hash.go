package password

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"golang.org/x/crypto/bcrypt"
)

// bcryptMaxPassword is how much of a password bcrypt reads.
const bcryptMaxPassword = 72

// Hashes are Caddy's: those `caddy hash-password` prints, compared with
// caddyauth's own comparers, so that a hash means here what it means to
// Caddy's basic_auth.

// parseHash recognises a hash printed by `caddy hash-password`.
func parseHash(hash string) (*account, error) {
	b := []byte(hash)
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost(b)
		if err != nil {
			return nil, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return &account{
			hash:        b,
			comparer:    caddyauth.BcryptHash{},
			maxPassword: bcryptMaxPassword,
			class:       "bcrypt cost=" + strconv.Itoa(cost),
			// About 60 ms at cost 10.
			guess: time.Duration(1<<cost) * 58 * time.Microsecond,
		}, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, key, err := caddyauth.DecodeHash(b)
		if err == nil {
			err = checkArgon2idParams(hash, key)
		}
		if err != nil {
			return nil, fmt.Errorf("bad argon2id hash: %w", err)
		}
		m, t, p := argon2idParams(hash)
		return &account{
			hash:     b,
			comparer: caddyauth.Argon2idHash{},
			class:    fmt.Sprintf("argon2id m=%d,t=%d,p=%d,k=%d", m, t, p, len(key)),
			// About 1 µs per KiB and pass, shared by the lanes.
			guess: time.Duration(t*m/p) * time.Microsecond,
		}, nil
	}
	return nil, fmt.Errorf("not a bcrypt or argon2id hash (make one with `caddy hash-password`)")
}

// argon2idParams returns the memory (KiB), passes and lanes of a hash that
// caddyauth.DecodeHash and checkArgon2idParams accepted.
func argon2idParams(hash string) (m, t, p uint64) {
	params := strings.Split(strings.Split(hash, "$")[3], ",")
	m, _ = strconv.ParseUint(strings.TrimPrefix(params[0], "m="), 10, 32)
	t, _ = strconv.ParseUint(strings.TrimPrefix(params[1], "t="), 10, 32)
	p, _ = strconv.ParseUint(strings.TrimPrefix(params[2], "p="), 10, 8)
	return m, t, p
}

// checkArgon2idParams rejects what caddyauth.DecodeHash accepts but cannot
// be used: no iterations, no threads or an empty key (argon2 panics at the
// first login), and a short key (a 1-byte one matches 1 password in 256).
func checkArgon2idParams(hash string, key []byte) error {
	if len(key) < 16 {
		return fmt.Errorf("key of %d bytes; want at least 16", len(key))
	}
	_, t, p := argon2idParams(hash) // DecodeHash checked the shape
	if t < 1 || p < 1 {
		return fmt.Errorf("t=%d, p=%d; both must be at least 1", t, p)
	}
	return nil
}
