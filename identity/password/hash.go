package password

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// bcryptMaxPassword is how much of a password bcrypt reads.
const bcryptMaxPassword = 72

// comparer checks a password against a hash of one algorithm.
type comparer interface {
	Compare(hashed, plaintext []byte) (bool, error)
}

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
			comparer:    bcryptComparer{},
			maxPassword: bcryptMaxPassword,
			class:       "bcrypt cost=" + strconv.Itoa(cost),
			// About 60 ms at cost 10.
			guess: time.Duration(1<<cost) * 58 * time.Microsecond,
		}, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		params, key, err := decodeArgon2id(b)
		if err == nil {
			err = checkArgon2idParams(params, key)
		}
		if err != nil {
			return nil, fmt.Errorf("bad argon2id hash: %w", err)
		}
		m, t, p := uint64(params.memory), uint64(params.time), uint64(params.threads)
		return &account{
			hash:     b,
			comparer: argon2idComparer{},
			class:    fmt.Sprintf("argon2id m=%d,t=%d,p=%d,k=%d", m, t, p, len(key)),
			// About 1 µs per KiB and pass, shared by the lanes.
			guess: time.Duration(t*m/p) * time.Microsecond,
		}, nil
	}
	return nil, fmt.Errorf("not a bcrypt or argon2id hash (make one with `caddy hash-password`)")
}

// checkArgon2idParams rejects what decodeArgon2id accepts but cannot be
// used: no iterations, no threads or an empty key (argon2 panics at the
// first login), and a short key (a 1-byte one matches 1 password in 256).
func checkArgon2idParams(params *argon2idParams, key []byte) error {
	if len(key) < 16 {
		return fmt.Errorf("key of %d bytes; want at least 16", len(key))
	}
	if params.time < 1 || params.threads < 1 {
		return fmt.Errorf("t=%d, p=%d; both must be at least 1", params.time, params.threads)
	}
	return nil
}

// The comparers and the argon2id decoder below are those of Caddy's
// caddyauth (Apache License 2.0, Copyright 2015 Matthew Holt and The
// Caddy Authors), so that a hash is read here exactly as Caddy's
// basic_auth and `caddy hash-password` read it.

// bcryptComparer compares against a bcrypt hash.
type bcryptComparer struct{}

func (bcryptComparer) Compare(hashed, plaintext []byte) (bool, error) {
	err := bcrypt.CompareHashAndPassword(hashed, plaintext)
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// argon2idComparer compares against an argon2id hash in PHC form.
type argon2idComparer struct{}

func (argon2idComparer) Compare(hashed, plaintext []byte) (bool, error) {
	params, storedKey, err := decodeArgon2id(hashed)
	if err != nil {
		return false, err
	}
	computedKey := argon2.IDKey(plaintext, params.salt, params.time, params.memory, params.threads, params.keyLen)
	return subtle.ConstantTimeCompare(storedKey, computedKey) == 1, nil
}

// argon2idParams are the settings an argon2id hash was made with.
type argon2idParams struct {
	salt    []byte
	time    uint32
	memory  uint32
	threads uint8
	keyLen  uint32
}

// decodeArgon2id parses an argon2id PHC string
// ($argon2id$v=19$m=…,t=…,p=…$salt$key) into its settings and key.
func decodeArgon2id(hash []byte) (*argon2idParams, []byte, error) {
	parts := strings.Split(string(hash), "$")
	if len(parts) != 6 {
		return nil, nil, fmt.Errorf("invalid hash format")
	}
	if parts[1] != "argon2id" {
		return nil, nil, fmt.Errorf("unsupported variant: %s", parts[1])
	}
	version, err := strconv.Atoi(strings.TrimPrefix(parts[2], "v="))
	if err != nil {
		return nil, nil, fmt.Errorf("invalid version: %w", err)
	}
	if version != argon2.Version {
		return nil, nil, fmt.Errorf("incompatible version: %d", version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, nil, fmt.Errorf("invalid parameters")
	}
	mem, err := strconv.ParseUint(strings.TrimPrefix(params[0], "m="), 10, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid memory parameter: %w", err)
	}
	iter, err := strconv.ParseUint(strings.TrimPrefix(params[1], "t="), 10, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid iterations parameter: %w", err)
	}
	threads, err := strconv.ParseUint(strings.TrimPrefix(params[2], "p="), 10, 8)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid parallelism parameter: %w", err)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, nil, fmt.Errorf("decode salt: %w", err)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, nil, fmt.Errorf("decode key: %w", err)
	}
	return &argon2idParams{
		salt:    salt,
		time:    uint32(iter),
		memory:  uint32(mem),
		threads: uint8(threads),
		keyLen:  uint32(len(key)),
	}, key, nil
}
