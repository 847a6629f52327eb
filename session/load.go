package session

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/sessionstore"
)

// Load returns the request's session, or nil if it has none. A cookie that
// does not decode, or names a session that is gone or expired, is no
// session (and is expired in w); err is only for a store that failed.
func (m *Manager) Load(w http.ResponseWriter, r *http.Request) (*Session, error) {
	s, state, err := m.find(r)
	m.c.CountState(state)
	switch {
	case err != nil:
		m.LogStoreError(r, "loading session", err)
		return nil, err
	case state == StateInvalid:
		// Undecodable (a new secret, a cookie of before): a session that
		// ended, and the app's with it.
		m.foundEnded(w, r)
		return nil, nil
	case state == StateExpired:
		// Expired, revoked or logged out elsewhere: the app's session
		// ends with it.
		m.foundEnded(w, r)
		return nil, nil
	case s == nil:
		if state == StateNone {
			m.noSession(w, r)
		}
		return nil, nil
	}
	if err := m.touch(w, r, s); err != nil {
		m.LogStoreError(r, "writing back last-seen time", err)
		return nil, err
	}
	if !s.Saved {
		// Deleted between Find and the write-back: a logout won the race.
		m.Ended(w, r)
		return nil, nil
	}
	return s, nil
}

// find decodes the request's session cookies and returns the first one
// that names a live session this handler accepts. A browser may send
// several (a host-only one and one for a parent domain, a stale one, one
// tossed from a sibling subdomain): a dead or foreign one never hides the
// live one. The state is that of the best cookie seen: valid, else
// foreign (a session of another handler, which is left alone), expired,
// invalid, none.
func (m *Manager) find(r *http.Request) (*Session, string, error) {
	now := time.Now()
	state := StateNone
	seen := 0
	for v := range cookie.Each(r, m.c.Cookie.Name) {
		if seen++; seen > MaxCookies {
			// A browser sends one or two. More is someone making each
			// request cost many decodes and store lookups.
			break
		}
		if state == StateNone {
			state = StateInvalid
		}
		b, err := m.c.Codec.Decode(v)
		if err != nil {
			continue
		}
		s := &Session{Saved: true}
		if m.c.Store == nil {
			if s.Rec.UnmarshalBinary(b) != nil {
				continue
			}
		} else {
			if len(b) != len(sessionstore.ID{}) {
				continue
			}
			s.ID = sessionstore.ID(b)
			var found bool
			s.Rec, found, err = m.c.Store.Find(r.Context(), m.Key(s.ID))
			if err != nil {
				return nil, StateError, err
			}
			if !found {
				state = deadOrForeign(state)
				continue
			}
		}
		switch {
		case m.Expired(s.Rec, now):
			state = deadOrForeign(state)
		case !m.Accepts(r, s.Rec):
			state = StateForeign
		default:
			return s, StateValid, nil
		}
	}
	return nil, state, nil
}

// MaxCookies is how many session cookies of one request are looked at,
// in the order sent.
const MaxCookies = 8

// deadOrForeign is the state after a cookie that named a dead session: a
// foreign one seen before still counts (its cookie must not be expired).
func deadOrForeign(state string) string {
	if state == StateForeign {
		return state
	}
	return StateExpired
}

// touch writes the last-seen time back when it is older than TouchEvery.
// If the session was deleted meanwhile (a logout, a rotation), nothing is
// written and the request goes on as if it had no session.
func (m *Manager) touch(w http.ResponseWriter, r *http.Request, s *Session) error {
	now := time.Now()
	if m.c.Idle == 0 || now.Sub(s.Rec.LastSeen) < m.c.TouchEvery {
		return nil
	}
	rec := s.Rec
	rec.LastSeen = now
	rec.Expires = m.Expiry(rec)
	if m.c.Store == nil {
		if err := m.setCookie(w, r, s.ID, rec); err != nil {
			// Too large to re-issue: the old cookie stays valid until
			// its own idle timeout.
			m.c.Logger.Error("cannot refresh session cookie", zap.Error(err), zap.String("user", rec.User))
			return nil
		}
		s.Rec = rec
		return nil
	}
	stored, found, err := m.c.Store.Update(r.Context(), m.Key(s.ID), sessionstore.Change{Seen: rec.LastSeen, Expires: rec.Expires})
	if err != nil {
		return err
	}
	if !found {
		*s = Session{}
		return nil
	}
	s.Rec = stored
	return nil
}
