package session

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// Session is one request's view of its session.
type Session struct {
	ID  sessionstore.ID // zero in cookie mode
	Rec sessionstore.Record
	// Saved is false for a session that exists only in this request so
	// far (not yet in the store or in a cookie).
	Saved bool
	// Groups are the logged-in user's groups now, set by the handler.
	Groups *identity.Groups
}

// Config is what a Manager needs, given once.
type Config struct {
	// Store keeps the sessions; nil when sessions live in the cookie.
	Store sessionstore.Store
	// Codec signs and encrypts the session cookie.
	Codec *cookie.Codec
	// Cookie is the session cookie's name and attributes.
	Cookie cookie.Config
	// Realm namespaces the store keys.
	Realm string
	// Idle ends a session unused for this long (0: never); Lifetime ends
	// every session this long after login. TouchEvery is how old the
	// last-seen time may get before it is written back.
	Idle, Lifetime, TouchEvery time.Duration
	// Sources are the identity sources whose sessions are accepted, by
	// the name kept in Record.Source.
	Sources map[string]identity.Source
	// LogoutCookies are the app's cookies expired when a session ends.
	LogoutCookies []AppCookie
	// ClearSiteData are the Clear-Site-Data types sent on logout.
	ClearSiteData []string
	Logger        *zap.Logger
	// ClientIP is the client's address as the handler sees it.
	ClientIP func(*http.Request) string
	// CountState counts one request whose session was in state (one of
	// the State constants); CountStoreError one failed store operation.
	// Either may be nil.
	CountState      func(state string)
	CountStoreError func()
}

// Manager finds, keeps and ends the sessions of one handler.
type Manager struct {
	c       Config
	markers markerNames // the signed-in marker's names, see markerNames
}

// New makes the Manager of c.
func New(c Config) *Manager {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ClientIP == nil {
		c.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if c.CountState == nil {
		c.CountState = func(string) {}
	}
	if c.CountStoreError == nil {
		c.CountStoreError = func() {}
	}
	return &Manager{c: c, markers: newMarkerNames(c.Cookie.Name)}
}

// Session states, as counted in metrics.
const (
	StateValid   = "valid"
	StateNone    = "none"
	StateInvalid = "invalid"
	StateExpired = "expired"
	StateForeign = "foreign"
	StateError   = "error"
)

// States are all the session states.
var States = []string{StateValid, StateNone, StateInvalid, StateExpired, StateForeign, StateError}

// Key is the store key of the session named id, in this handler's realm.
func (m *Manager) Key(id sessionstore.ID) sessionstore.Key {
	return sessionstore.RealmKey(m.c.Realm, id)
}

// Expired checks a record against this handler's limits, which may be
// stricter than those it was written with.
func (m *Manager) Expired(rec sessionstore.Record, now time.Time) bool {
	return rec.Expired(now) || !now.Before(m.Expiry(rec))
}

// Expiry is when rec ends: lifetime after it was created, or idle timeout
// after it was last seen, whichever comes first.
func (m *Manager) Expiry(rec sessionstore.Record) time.Time {
	end := rec.Created.Add(m.c.Lifetime)
	if m.c.Idle > 0 {
		if idleEnd := rec.LastSeen.Add(m.c.Idle); idleEnd.Before(end) {
			end = idleEnd
		}
	}
	return end
}

// LogStoreError logs a failed store operation (what) and counts it; a
// client that hung up is no store error.
func (m *Manager) LogStoreError(r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client hung up, and the store was told to give up: no
		// store error.
		m.c.Logger.Debug("client went away", zap.String("op", what), zap.String("remote_ip", m.c.ClientIP(r)))
		return
	}
	m.c.CountStoreError()
	m.c.Logger.Error("session store error",
		zap.String("op", what),
		zap.String("remote_ip", m.c.ClientIP(r)),
		zap.Error(err))
}

// LogSaveError logs a login or a change that could not be saved (what):
// a session deleted meanwhile (ErrGone) is a warning, one too large for
// its cookie an error that is counted, and anything else a store error
// (LogStoreError).
func (m *Manager) LogSaveError(r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, ErrGone):
		m.c.Logger.Warn("session was logged out meanwhile; not written back", zap.String("op", what), zap.String("remote_ip", m.c.ClientIP(r)))
	case errors.Is(err, sessionstore.ErrTooLarge):
		m.c.CountStoreError()
		m.c.Logger.Error("session does not fit in its cookie; previous cookie kept", zap.String("op", what), zap.String("remote_ip", m.c.ClientIP(r)), zap.Error(err))
	default:
		m.LogStoreError(r, what, err)
	}
}
