package session

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/internal/text"
	"github.com/edgesession/edgesession/sessionstore"
)

// newSession starts a session that is not saved anywhere yet.
func (m *Manager) newSession() *Session {
	now := time.Now()
	s := &Session{Rec: sessionstore.Record{Created: now, LastSeen: now}}
	s.Rec.Expires = m.Expiry(s.Rec)
	return s
}

// NewFor starts an unsaved session for r, bound to its site.
func (m *Manager) NewFor(r *http.Request) *Session {
	s := m.newSession()
	s.Rec.Site = m.Site(r)
	return s
}

// Login replaces old (which may be nil) with a fresh session of id
// holding data: a new ID (the old one is deleted), a new creation time,
// and what a person needs to recognise the session later (client IP, user
// agent). It saves the session and sets the cookie. What data the old
// session passes on is the caller's to decide (CarriedData).
func (m *Manager) Login(ctx context.Context, w http.ResponseWriter, r *http.Request, old *Session, id identity.Identity, data map[string]string) (*Session, error) {
	fresh := m.NewFor(r)
	fresh.Rec.User = id.User
	fresh.Rec.Source = id.Source
	fresh.Rec.Fingerprint = id.Fingerprint
	fresh.Rec.Groups = id.Groups
	fresh.Rec.Amr = id.Amr
	fresh.Rec.Data = data
	if m.c.Store != nil {
		// For a person to recognise the session in a list; the cookie
		// store has no list, and every byte there goes on every request.
		fresh.Rec.ClientIP = m.c.ClientIP(r)
		fresh.Rec.UserAgent = text.Shorten(r.UserAgent(), maxUserAgent)
	}
	fresh.ID = sessionstore.NewID()
	if err := m.Save(ctx, w, r, fresh, sessionstore.Change{}); err != nil {
		return nil, err
	}
	if old == nil || old.Rec.User != id.User || old.Rec.Source != id.Source {
		// The app's session in this browser, if any, may be another
		// user's: one whose session here was replaced, or ended without a
		// logout (idle, closed browser). Only a login that continues the
		// same user's session keeps it.
		m.expireAppCookies(w, r)
	}
	m.markSignedIn(w, r)
	if old != nil && old.Saved && m.c.Store != nil {
		if err := m.c.Store.Delete(ctx, m.Key(old.ID)); err != nil {
			// The new session is in place; the old one will expire.
			m.LogStoreError(r, "deleting the session replaced by a login", err)
		}
	}
	return fresh, nil
}

// Save writes s to the store and sets the cookie. A new session is
// created from s.Rec; a session already in the store gets only ch (which
// must be what was done to s.Rec), applied to the record as it is in the
// store, so that concurrent requests do not undo each other's changes;
// s.Rec becomes the stored record. A session deleted meanwhile is not
// written back: ErrGone. In cookie mode the cookie carries the whole of
// s.Rec.
func (m *Manager) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session, ch sessionstore.Change) error {
	s.Rec.Expires = m.Expiry(s.Rec)
	if m.c.Store != nil {
		if s.Saved {
			ch.Expires = s.Rec.Expires
			rec, found, err := m.c.Store.Update(ctx, m.Key(s.ID), ch)
			if err != nil {
				return err
			}
			if !found {
				return ErrGone
			}
			s.Rec = rec
			return nil // the cookie already names it
		}
		if s.ID == (sessionstore.ID{}) {
			s.ID = sessionstore.NewID()
		}
		if err := m.c.Store.Create(ctx, m.Key(s.ID), s.Rec); err != nil {
			return err
		}
	}
	if err := m.setCookie(w, r, s.ID, s.Rec); err != nil {
		return err
	}
	s.Saved = true
	return nil
}

// Destroy deletes s (which may be nil) from the store and expires the
// cookie and the app's logout cookies.
func (m *Manager) Destroy(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session) error {
	if s != nil && s.Saved && m.c.Store != nil {
		if err := m.c.Store.Delete(ctx, m.Key(s.ID)); err != nil {
			return err
		}
	}
	m.Ended(w, r)
	return nil
}

// ErrGone is returned by Save for a session that was deleted meanwhile.
var ErrGone = errors.New("session was deleted meanwhile")

// maxUserAgent is how much of the User-Agent a session keeps: enough to
// tell a person's browsers apart in a list.
const maxUserAgent = 160
