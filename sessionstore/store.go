// Package sessionstore keeps sessions for edgesession. It knows nothing of
// Caddy or HTTP and can be used as a plain Go library.
//
// A session is named by a random ID (which only the client holds, inside its
// cookie) and stored under a Key, the SHA-256 hash of that ID. A store never
// sees an ID, so a copy of a store's contents yields no usable cookie.
//
// Every backend implements Store and passes the conformance suite in
// sessionstore/storetest. Optional powers, such as listing the sessions of
// one user, will be separate small interfaces that a backend may implement
// in addition to Store, checked with a type assertion.
package sessionstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Store keeps session records under hashed keys until they expire.
//
// Implementations must be safe for concurrent use. Every method takes a
// context: a cancelled context or a deadline that passes is an error, never
// a "not found".
type Store interface {
	// Find returns the record stored under key. A missing, expired or
	// malformed record is (Record{}, false, nil): err is only for a store
	// that failed (unreachable, timed out, corrupt file), and on error the
	// caller must not conclude that the session is gone.
	Find(ctx context.Context, key Key) (rec Record, found bool, err error)

	// Create stores a new record under key until rec.Expires, replacing
	// anything stored there. It is used for fresh keys only (a new ID from
	// NewID).
	Create(ctx context.Context, key Key, rec Record) error

	// Update replaces the record stored under key, but only if one is
	// still there: if the key was deleted or has expired meanwhile, Update
	// writes nothing and returns found=false. This is what keeps a request
	// that was in flight during a logout from bringing the session back.
	Update(ctx context.Context, key Key, rec Record) (found bool, err error)

	// Delete removes the record stored under key. Deleting a key that is
	// not there is not an error.
	Delete(ctx context.Context, key Key) error
}

// Lister is implemented by stores that can walk every live session: the
// ground for listing and revoking all sessions of one user (an admin
// endpoint, OWASP ASVS 5.0 §7.4.5 and §7.5.2) without a change to Store.
// Memory and Bolt implement it.
type Lister interface {
	// Each calls fn for every session that has not expired, in no
	// particular order, until fn returns false. fn must not call the
	// store.
	Each(ctx context.Context, fn func(key Key, rec Record) bool) error
}

// ErrTooLarge is returned when a record does not fit where it must be kept
// (for example a cookie of at most 4096 bytes).
var ErrTooLarge = errors.New("session too large")

// ID is a session's secret name: 256 bits from crypto/rand. Only the
// client's cookie carries it.
type ID [32]byte

// NewID returns a new random session ID.
func NewID() ID {
	var id ID
	rand.Read(id[:]) // never fails; see crypto/rand.Read
	return id
}

// Key is what a session is stored under: the SHA-256 hash of its ID.
type Key [32]byte

// KeyOf returns the key that the session with this ID is stored under.
func KeyOf(id ID) Key { return Key(sha256.Sum256(id[:])) }

// String returns the key in hex, as the Redis store names it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Record is one session as a store keeps it.
type Record struct {
	// User is the logged-in user's name, or "" for a session that only
	// holds data.
	User string
	// Data is the session's key/value data.
	Data map[string]string
	// Created is when the session was created (the login time for
	// sessions created by a login); the absolute lifetime counts from it.
	Created time.Time
	// LastSeen is when the session was last used, as last written back.
	LastSeen time.Time
	// Expires is when the store may forget the record. Find never returns
	// a record whose Expires has passed.
	Expires time.Time
}

// Expired reports whether the record's Expires is not after now.
func (r Record) Expired(now time.Time) bool { return !now.Before(r.Expires) }

// Clone returns a copy of r that shares no map with it.
func (r Record) Clone() Record {
	if r.Data != nil {
		d := make(map[string]string, len(r.Data))
		for k, v := range r.Data {
			d[k] = v
		}
		r.Data = d
	}
	return r
}
