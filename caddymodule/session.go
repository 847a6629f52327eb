package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/sessionstore"
)

// session is one request's view of its session.
type session struct {
	id  sessionstore.ID // zero in cookie mode
	rec sessionstore.Record
	// saved is false for a session that exists only in this request so
	// far (not yet in the store or in a cookie).
	saved bool
}

// Session states, as counted in metrics.
const (
	stateValid   = "valid"
	stateNone    = "none"
	stateInvalid = "invalid"
	stateExpired = "expired"
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
	case state == stateInvalid || state == stateExpired:
		h.expireCookie(w, r)
		return nil, nil
	case s == nil:
		return nil, nil
	}
	if err := h.touch(w, r, s); err != nil {
		h.logStoreError(r, "writing back last-seen time", err)
		return nil, err
	}
	if !s.saved {
		// Deleted between Find and the write-back: a logout won the race.
		h.expireCookie(w, r)
		return nil, nil
	}
	return s, nil
}

// find decodes the cookie and reads the session it names.
func (h *Handler) find(r *http.Request) (*session, string, error) {
	values := cookieValues(r, h.Cookie.Name)
	if len(values) == 0 {
		return nil, stateNone, nil
	}
	now := time.Now()
	if h.store == nil {
		for _, v := range values {
			var rec sessionstore.Record
			if b, err := h.codec.decode(v); err == nil && rec.UnmarshalBinary(b) == nil {
				if h.expired(rec, now) {
					return nil, stateExpired, nil
				}
				return &session{rec: rec, saved: true}, stateValid, nil
			}
		}
		return nil, stateInvalid, nil
	}
	for _, v := range values {
		b, err := h.codec.decode(v)
		if err != nil || len(b) != len(sessionstore.ID{}) {
			continue
		}
		id := sessionstore.ID(b)
		rec, found, err := h.store.Find(r.Context(), sessionstore.KeyOf(id))
		if err != nil {
			return nil, stateError, err
		}
		if !found || h.expired(rec, now) {
			return nil, stateExpired, nil
		}
		return &session{id: id, rec: rec, saved: true}, stateValid, nil
	}
	return nil, stateInvalid, nil
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
	found, err := h.store.Update(r.Context(), sessionstore.KeyOf(s.id), rec)
	if err != nil {
		return err
	}
	if !found {
		*s = session{}
		return nil
	}
	s.rec = rec
	return nil
}

// newSession starts a session that is not saved anywhere yet.
func (h *Handler) newSession() *session {
	now := time.Now()
	s := &session{rec: sessionstore.Record{Created: now, LastSeen: now}}
	s.rec.Expires = h.expiry(s.rec)
	return s
}

// login replaces s (which may be nil) with a fresh session of user holding
// data: a new ID (the old one is deleted) and a new creation time. It saves the
// session and sets the cookie.
func (h *Handler) login(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, user string, data map[string]string) (*session, error) {
	fresh := h.newSession()
	fresh.rec.User = user
	fresh.rec.Data = data
	fresh.id = sessionstore.NewID()
	if err := h.save(ctx, w, r, fresh); err != nil {
		return nil, err
	}
	if s != nil && s.saved && h.store != nil {
		if err := h.store.Delete(ctx, sessionstore.KeyOf(s.id)); err != nil {
			// The new session is in place; the old one will expire.
			h.logStoreError(r, "deleting the session replaced by a login", err)
		}
	}
	return fresh, nil
}

// save writes s to the store (creating it if it is new) and sets the
// cookie. A session deleted meanwhile is not written back: errGone.
func (h *Handler) save(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session) error {
	s.rec.Expires = h.expiry(s.rec)
	if h.store != nil {
		if s.saved {
			found, err := h.store.Update(ctx, sessionstore.KeyOf(s.id), s.rec)
			if err != nil {
				return err
			}
			if !found {
				return errGone
			}
			return nil // the cookie already names it
		}
		if s.id == (sessionstore.ID{}) {
			s.id = sessionstore.NewID()
		}
		if err := h.store.Create(ctx, sessionstore.KeyOf(s.id), s.rec); err != nil {
			return err
		}
	}
	if err := h.setCookie(w, r, s.id, s.rec); err != nil {
		return err
	}
	s.saved = true
	return nil
}

// destroy deletes s from the store and expires the cookie.
func (h *Handler) destroy(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session) error {
	if s != nil && s.saved && h.store != nil {
		if err := h.store.Delete(ctx, sessionstore.KeyOf(s.id)); err != nil {
			return err
		}
	}
	h.expireCookie(w, r)
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
