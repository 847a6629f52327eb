package sessionstore

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
)

// UserIndex is implemented by stores that keep an index of their sessions
// by user, so that an operator can see who is signed in and sign anyone
// out (OWASP ASVS 5.0 V7.4, V7.5). Memory, Bolt and Redis implement it;
// the conformance suite checks it.
//
// The index is kept with the sessions: a session is in its user's index
// from the moment Create stores it (in the same lock, transaction or
// MULTI) until it is deleted or expires, and the index is cleaned as
// sessions expire. Listing or revoking one user's sessions costs time in
// proportion to that user's sessions (and, in Redis, to that user's
// sessions deleted or expired recently), never to all sessions.
//
// The index covers every realm: a realm is part of the key, not of the
// user, so one user's list holds their sessions of every realm (Site tells
// them apart). A session whose User is "" (anonymous data) is in no index:
// ListUser("") and DeleteUser("") find nothing; DeleteAll deletes them too.
//
// Sessions are named by their Handle, never by their ID or Key.
type UserIndex interface {
	// ListUser returns the sessions of user that have not expired, oldest
	// first (by Created, then Handle). An unknown user has none: that is
	// (nil, nil), not an error.
	ListUser(ctx context.Context, user string) ([]Entry, error)

	// DeleteUser deletes sessions of user: those named by handles, or all
	// of them if no handle is given. A handle that names no live session
	// of user (another user's, one that is gone) is skipped. It returns the
	// keys it deleted, so that a caller can let go of what it holds under
	// them (open connections).
	//
	// A deleted session is gone for good: an Update that was in flight
	// does not bring it back (see Store.Update). A session that user
	// creates while DeleteUser runs may be left alone.
	DeleteUser(ctx context.Context, user string, handles ...Handle) ([]Key, error)

	// DeleteAll deletes every session in the store, of every user and
	// anonymous ones, and returns how many live sessions it deleted. Sessions
	// created while it runs may be left alone. It costs time in proportion
	// to all sessions.
	DeleteAll(ctx context.Context) (int, error)
}

// Handle names a session in a list without giving anything away: the first
// half of its Key. A Key is the SHA-256 hash of the session's ID, so no
// handle can be turned back into an ID or a cookie, and half a Key cannot
// even be looked up directly; 128 bits tell one user's sessions apart with
// room to spare.
type Handle [16]byte

// Handle returns the handle of the session stored under k.
func (k Key) Handle() Handle { return Handle(k[:16]) }

// String returns the handle in hex, 32 characters.
func (h Handle) String() string { return hex.EncodeToString(h[:]) }

// ErrBadHandle is returned by ParseHandle for text that is not a handle.
var ErrBadHandle = errors.New("not a session handle (32 hex digits)")

// ParseHandle reads a handle written by Handle.String (either case).
func ParseHandle(s string) (Handle, error) {
	var h Handle
	if len(s) != 2*len(h) {
		return Handle{}, ErrBadHandle
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Handle{}, ErrBadHandle
	}
	return h, nil
}

// Entry is one session in a user's list.
type Entry struct {
	Handle Handle
	// Record is the session as stored. It holds the session's data too:
	// a caller that shows entries chooses what to show.
	Record Record
}

// sortEntries puts entries in ListUser's order.
func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := a.Record.Created.Compare(b.Record.Created); c != 0 {
			return c
		}
		return slices.Compare(a.Handle[:], b.Handle[:])
	})
}

// wanted returns a test for the handles DeleteUser was given: all of them
// if none.
func wanted(handles []Handle) func(Key) bool {
	if len(handles) == 0 {
		return func(Key) bool { return true }
	}
	return func(k Key) bool { return slices.Contains(handles, k.Handle()) }
}

// recordUser reads only the user out of an encoded record, for stores that
// must know whose index a record is in before they delete it. Every
// version starts with the times and the user.
func recordUser(b []byte) (string, bool) {
	if len(b) == 0 || b[0] < recordVersion1 || b[0] > recordVersion3 {
		return "", false
	}
	d := decoder{s: string(b[1:])}
	d.varint()
	d.varint()
	d.varint()
	user := d.string()
	return user, d.err == nil
}
