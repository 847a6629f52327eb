package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// session is one request's view of its session.
type session struct {
	id  sessionstore.ID // zero in cookie mode
	rec sessionstore.Record
	// saved is false for a session that exists only in this request so
	// far (not yet in the store or in a cookie).
	saved bool
	// groups are the logged-in user's groups now, set by serve.
	groups *groupSet
}

// Session states, as counted in metrics.
const (
	stateValid   = "valid"
	stateNone    = "none"
	stateInvalid = "invalid"
	stateExpired = "expired"
	stateForeign = "foreign"
	stateError   = "error"
)

// load returns the request's session, or nil if it has none. A cookie that
// does not decode, or names a session that is gone or expired, is no
// session (and is expired in w); err is only for a store that failed.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) (*session, error) {
	s, state, err := h.find(r)
	h.metrics.request(state)
	switch {
	case err != nil:
		h.logStoreError(r, "loading session", err)
		return nil, err
	case state == stateInvalid:
		// Undecodable (a new secret, a cookie of before): a session that
		// ended, and the app's with it.
		h.sessionFoundEnded(w, r)
		return nil, nil
	case state == stateExpired:
		// Expired, revoked or logged out elsewhere: the app's session
		// ends with it.
		h.sessionFoundEnded(w, r)
		return nil, nil
	case s == nil:
		if state == stateNone {
			h.noSession(w, r)
		}
		return nil, nil
	}
	if err := h.touch(w, r, s); err != nil {
		h.logStoreError(r, "writing back last-seen time", err)
		return nil, err
	}
	if !s.saved {
		// Deleted between Find and the write-back: a logout won the race.
		h.sessionEnded(w, r)
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
func (h *Handler) find(r *http.Request) (*session, string, error) {
	now := time.Now()
	state := stateNone
	seen := 0
	for v := range cookie.Each(r, h.Cookie.Name) {
		if seen++; seen > maxSessionCookies {
			// A browser sends one or two. More is someone making each
			// request cost many decodes and store lookups.
			break
		}
		if state == stateNone {
			state = stateInvalid
		}
		b, err := h.codec.Decode(v)
		if err != nil {
			continue
		}
		s := &session{saved: true}
		if h.store == nil {
			if s.rec.UnmarshalBinary(b) != nil {
				continue
			}
		} else {
			if len(b) != len(sessionstore.ID{}) {
				continue
			}
			s.id = sessionstore.ID(b)
			var found bool
			s.rec, found, err = h.store.Find(r.Context(), h.key(s.id))
			if err != nil {
				return nil, stateError, err
			}
			if !found {
				state = deadOrForeign(state)
				continue
			}
		}
		switch {
		case h.expired(s.rec, now):
			state = deadOrForeign(state)
		case !h.accepts(r, s.rec):
			state = stateForeign
		default:
			return s, stateValid, nil
		}
	}
	return nil, state, nil
}

// maxSessionCookies is how many session cookies of one request are looked
// at, in the order sent.
const maxSessionCookies = 8

// deadOrForeign is the state after a cookie that named a dead session: a
// foreign one seen before still counts (its cookie must not be expired).
func deadOrForeign(state string) string {
	if state == stateForeign {
		return state
	}
	return stateExpired
}

// key is the store key of the session named id, in this handler's realm.
func (h *Handler) key(id sessionstore.ID) sessionstore.Key {
	return sessionstore.RealmKey(h.Realm, id)
}

// expired checks a record against this handler's limits, which may be
// stricter than those it was written with.
func (h *Handler) expired(rec sessionstore.Record, now time.Time) bool {
	return rec.Expired(now) || !now.Before(h.expiry(rec))
}

// expiry is when rec ends: lifetime after it was created, or idle timeout
// after it was last seen, whichever comes first.
func (h *Handler) expiry(rec sessionstore.Record) time.Time {
	end := rec.Created.Add(h.lifetime)
	if h.idle > 0 {
		if idleEnd := rec.LastSeen.Add(h.idle); idleEnd.Before(end) {
			end = idleEnd
		}
	}
	return end
}

// touch writes the last-seen time back when it is older than touchEvery.
// If the session was deleted meanwhile (a logout, a rotation), nothing is
// written and the request goes on as if it had no session.
func (h *Handler) touch(w http.ResponseWriter, r *http.Request, s *session) error {
	now := time.Now()
	if h.idle == 0 || now.Sub(s.rec.LastSeen) < h.touchEvery {
		return nil
	}
	rec := s.rec
	rec.LastSeen = now
	rec.Expires = h.expiry(rec)
	if h.store == nil {
		if err := h.setCookie(w, r, s.id, rec); err != nil {
			// Too large to re-issue: the old cookie stays valid until
			// its own idle timeout.
			h.logger.Error("cannot refresh session cookie", zap.Error(err), zap.String("user", rec.User))
			return nil
		}
		s.rec = rec
		return nil
	}
	stored, found, err := h.store.Update(r.Context(), h.key(s.id), sessionstore.Change{Seen: rec.LastSeen, Expires: rec.Expires})
	if err != nil {
		return err
	}
	if !found {
		*s = session{}
		return nil
	}
	s.rec = stored
	return nil
}

// newSession starts a session that is not saved anywhere yet.
func (h *Handler) newSession() *session {
	now := time.Now()
	s := &session{rec: sessionstore.Record{Created: now, LastSeen: now}}
	s.rec.Expires = h.expiry(s.rec)
	return s
}

// newSessionFor starts an unsaved session for r, bound to its site.
func (h *Handler) newSessionFor(r *http.Request) *session {
	s := h.newSession()
	s.rec.Site = h.site(r)
	return s
}

// login replaces s (which may be nil) with a fresh session of id holding
// data: a new ID (the old one is deleted), a new creation time, and what a
// person needs to recognise the session later (client IP, user agent). It
// saves the session and sets the cookie. What data the old session passes
// on is the caller's to decide (carriedData).
func (h *Handler) login(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, id identity.Identity, data map[string]string) (*session, error) {
	fresh := h.newSessionFor(r)
	fresh.rec.User = id.User
	fresh.rec.Source = id.Source
	fresh.rec.Fingerprint = id.Fingerprint
	fresh.rec.Groups = id.Groups
	fresh.rec.Data = data
	if h.store != nil {
		// For a person to recognise the session in a list; the cookie
		// store has no list, and every byte there goes on every request.
		fresh.rec.ClientIP = clientIP(r)
		fresh.rec.UserAgent = shorten(r.UserAgent(), maxUserAgent)
	}
	fresh.id = sessionstore.NewID()
	if err := h.save(ctx, w, r, fresh, sessionstore.Change{}); err != nil {
		return nil, err
	}
	if s == nil || s.rec.User != id.User || s.rec.Source != id.Source {
		// The app's session in this browser, if any, may be another
		// user's: one whose session here was replaced, or ended without a
		// logout (idle, closed browser). Only a login that continues the
		// same user's session keeps it.
		h.expireAppCookies(w, r)
	}
	h.markSignedIn(w, r)
	if s != nil && s.saved && h.store != nil {
		if err := h.store.Delete(ctx, h.key(s.id)); err != nil {
			// The new session is in place; the old one will expire.
			h.logStoreError(r, "deleting the session replaced by a login", err)
		}
	}
	return fresh, nil
}

// save writes s to the store and sets the cookie. A new session is created
// from s.rec; a session already in the store gets only ch (which must be
// what was done to s.rec), applied to the record as it is in the store, so
// that concurrent requests do not undo each other's changes; s.rec becomes
// the stored record. A session deleted meanwhile is not written back:
// errGone. In cookie mode the cookie carries the whole of s.rec.
func (h *Handler) save(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, ch sessionstore.Change) error {
	s.rec.Expires = h.expiry(s.rec)
	if h.store != nil {
		if s.saved {
			ch.Expires = s.rec.Expires
			rec, found, err := h.store.Update(ctx, h.key(s.id), ch)
			if err != nil {
				return err
			}
			if !found {
				return errGone
			}
			s.rec = rec
			return nil // the cookie already names it
		}
		if s.id == (sessionstore.ID{}) {
			s.id = sessionstore.NewID()
		}
		if err := h.store.Create(ctx, h.key(s.id), s.rec); err != nil {
			return err
		}
	}
	if err := h.setCookie(w, r, s.id, s.rec); err != nil {
		return err
	}
	s.saved = true
	return nil
}

// destroy deletes s from the store and expires the cookie and the app's
// logout cookies.
func (h *Handler) destroy(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session) error {
	if s != nil && s.saved && h.store != nil {
		if err := h.store.Delete(ctx, h.key(s.id)); err != nil {
			return err
		}
	}
	h.sessionEnded(w, r)
	return nil
}

// errGone is returned by save for a session that was deleted meanwhile.
var errGone = errors.New("session was deleted meanwhile")

func (h *Handler) logStoreError(r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client hung up, and the store was told to give up: no
		// store error.
		h.logger.Debug("client went away", zap.String("op", what), zap.String("remote_ip", clientIP(r)))
		return
	}
	h.metrics.storeErrors.Inc()
	h.logger.Error("session store error",
		zap.String("op", what),
		zap.String("remote_ip", clientIP(r)),
		zap.Error(err))
}

// maxUserAgent is how much of the User-Agent a session keeps: enough to
// tell a person's browsers apart in a list.
const maxUserAgent = 160

// shorten cuts s to at most n bytes of valid UTF-8 without control
// characters.
func shorten(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
