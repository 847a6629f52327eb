// Package sessionstore keeps sessions for edgesession. It knows nothing of
// Caddy or HTTP and can be used as a plain Go library.
//
// A session is named by a random ID (which only the client holds, inside its
// cookie) and stored under a Key, the SHA-256 hash of that ID. A store never
// sees an ID, so a copy of a store's contents yields no usable cookie.
//
// Every backend implements Store and passes the conformance suite in
// sessionstore/storetest. Optional powers are separate small interfaces
// that a backend may implement in addition to Store, checked with a type
// assertion: UserIndex (list and revoke the sessions of one user, or all;
// every server-side store here has it, and the suite checks it) and Lister
// (walk every session).
package sessionstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
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

	// Update applies ch to the record stored under key, atomically, to
	// the record as it is in the store at that moment (never to a copy a
	// caller loaded earlier), so that concurrent changes to one session all
	// take effect. It returns the record as stored after the change.
	//
	// Only a record that is still there and not expired is changed: if the
	// key is missing, was deleted or has expired (or its record is
	// malformed), Update writes nothing and returns found=false, so a
	// request in flight during a logout never brings the session back. An
	// empty Change writes nothing but reports found all the same.
	//
	// Update never changes User, Source, Fingerprint, Site, Groups, Amr,
	// ClientIP, UserAgent or Created: a login (or a second factor proved
	// later) creates a new record.
	Update(ctx context.Context, key Key, ch Change) (rec Record, found bool, err error)

	// Delete removes the record stored under key. Deleting a key that is
	// not there is not an error.
	Delete(ctx context.Context, key Key) error
}

// Lister is implemented by stores that can walk every live session, at a
// cost in proportion to all of them (for one user's sessions, UserIndex).
// Memory, Bolt and Redis (by SCAN) implement it.
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

// RealmKey returns the key that the session with this ID is stored under in
// realm: KeyOf(id) for the empty realm, otherwise the SHA-256 hash of a
// domain-separated encoding of realm (length-prefixed) and id, so that no
// two (realm, ID) pairs share a key and a session of one realm is not found
// in another.
func RealmKey(realm string, id ID) Key {
	if realm == "" {
		return KeyOf(id)
	}
	b := make([]byte, 0, len(realmKeyDomain)+1+binary.MaxVarintLen64+len(realm)+len(id))
	b = append(append(b, realmKeyDomain...), 0)
	b = binary.AppendUvarint(b, uint64(len(realm)))
	b = append(append(b, realm...), id[:]...)
	return Key(sha256.Sum256(b))
}

// realmKeyDomain separates RealmKey's hash input from every other use of
// SHA-256 over an ID. Changing it moves every realm's sessions.
const realmKeyDomain = "edgesession realm key"

// String returns the key in hex, as the Redis store names it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Record is one session as a store keeps it.
//
// The identity fields (User, Source, Fingerprint, Site, Groups, Amr,
// ClientIP, UserAgent) and Created are set when the record is created and never
// changed by Update. Stores treat every string as opaque text.
type Record struct {
	// User is the logged-in user's name, or "" for a session that only
	// holds data.
	User string
	// Source is the identity source that logged the user in (for example
	// "password", "upstream", "oidc:<name>").
	Source string
	// Fingerprint is the source's proof that the login still holds (for
	// example a fingerprint of the user's password hash).
	Fingerprint string
	// Site is where the session was issued (a host or a cookie domain).
	Site string
	// Groups are the user's groups, in the order the source gave them.
	Groups []string
	// Amr are the ways the user proved who they are at login (RFC 8176
	// values: "pwd", "otp", "hwk", "swk", "mfa"..., or a provider's),
	// in the order they were proved. Empty for a record from before
	// second factors, or whose source says nothing: see identity.AMR for
	// what such a record counts as.
	Amr []string
	// ClientIP and UserAgent describe the client that logged in, so that a
	// person can recognise the session in a list.
	ClientIP  string
	UserAgent string
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

// Clone returns a copy of r that shares no map or slice with it.
func (r Record) Clone() Record {
	if r.Data != nil {
		r.Data = maps.Clone(r.Data)
	}
	if r.Groups != nil {
		r.Groups = slices.Clone(r.Groups)
	}
	if r.Amr != nil {
		r.Amr = slices.Clone(r.Amr)
	}
	return r
}

// Change is what Update applies to a stored record. It names only what
// changes, so that concurrent changes to one session do not undo each
// other. It has no identity fields: a login creates a new record.
type Change struct {
	// Delete lists data keys to remove. It is applied before Set.
	Delete []string
	// Set holds data keys to set, applied after Delete.
	Set map[string]string
	// Seen, if not zero, moves LastSeen forward to it: LastSeen becomes
	// the later of the two, never earlier.
	Seen time.Time
	// Expires, if not zero, moves Expires forward to it: Expires becomes
	// the later of the two, never earlier.
	Expires time.Time
}

// IsZero reports whether ch changes nothing in any record.
func (ch Change) IsZero() bool {
	return len(ch.Delete) == 0 && len(ch.Set) == 0 && ch.Seen.IsZero() && ch.Expires.IsZero()
}

// Apply returns r with ch applied, as Update applies it in a store. The
// result shares no map or slice with r; if ch empties Data, Data is nil.
func (r Record) Apply(ch Change) Record {
	r = r.Clone()
	if len(ch.Delete) > 0 || len(ch.Set) > 0 {
		if r.Data == nil {
			r.Data = make(map[string]string, len(ch.Set))
		}
		for _, k := range ch.Delete {
			delete(r.Data, k)
		}
		maps.Copy(r.Data, ch.Set)
		if len(r.Data) == 0 {
			r.Data = nil
		}
	}
	if !ch.Seen.IsZero() && ch.Seen.After(r.LastSeen) {
		r.LastSeen = ch.Seen
	}
	if !ch.Expires.IsZero() && ch.Expires.After(r.Expires) {
		r.Expires = ch.Expires
	}
	return r
}
