package session

import (
	"net/http"
	"time"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/sessionstore"
)

// setCookie sets the session cookie: the signed, encrypted ID, or in
// cookie mode the whole record.
func (m *Manager) setCookie(w http.ResponseWriter, r *http.Request, id sessionstore.ID, rec sessionstore.Record) error {
	var plain []byte
	if m.c.Store == nil {
		var err error
		if plain, err = rec.MarshalBinary(); err != nil {
			return err
		}
	} else {
		plain = id[:]
	}
	value, err := m.c.Codec.Encode(plain)
	if err != nil {
		return err
	}
	c := m.c.Cookie.New(r, value)
	if m.c.Cookie.Persist {
		c.MaxAge = int(time.Until(rec.Created.Add(m.c.Lifetime)).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = -1
		}
	}
	cookie.ReplaceSet(w.Header(), m.c.Cookie.Name, c.String())
	return nil
}

// ExpireCookie tells the browser to drop the session cookie.
func (m *Manager) ExpireCookie(w http.ResponseWriter, r *http.Request) {
	c := m.c.Cookie.New(r, "")
	c.MaxAge = -1
	cookie.ReplaceSet(w.Header(), m.c.Cookie.Name, c.String())
}
