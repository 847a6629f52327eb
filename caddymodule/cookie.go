package caddymodule

import (
	"net/http"
	"time"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/sessionstore"
)

// Cookie is the session cookie's name and attributes.
type Cookie = cookie.Config

// setCookie sets the session cookie: the signed, encrypted ID, or in
// cookie mode the whole record.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, id sessionstore.ID, rec sessionstore.Record) error {
	var plain []byte
	if h.store == nil {
		var err error
		if plain, err = rec.MarshalBinary(); err != nil {
			return err
		}
	} else {
		plain = id[:]
	}
	value, err := h.codec.Encode(plain)
	if err != nil {
		return err
	}
	c := h.cookie(r, value)
	if h.Cookie.Persist {
		c.MaxAge = int(time.Until(rec.Created.Add(h.lifetime)).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = -1
		}
	}
	cookie.ReplaceSet(w.Header(), h.Cookie.Name, c.String())
	return nil
}

// expireCookie tells the browser to drop the session cookie.
func (h *Handler) expireCookie(w http.ResponseWriter, r *http.Request) {
	c := h.cookie(r, "")
	c.MaxAge = -1
	cookie.ReplaceSet(w.Header(), h.Cookie.Name, c.String())
}

func (h *Handler) cookie(r *http.Request, value string) *http.Cookie {
	return h.Cookie.New(r, value)
}
