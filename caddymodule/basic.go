package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
)

// HTTP Basic for clients that cannot fill in a form (SPEC §12): CalDAV and
// WebDAV clients, git, scripts. They send a user's name and password with
// every request. Each such request is a login as far as the throttle is
// concerned (same limits, same counts as the form: a Basic failure is a
// login failure), creates no session and sets no cookie, and goes to the
// upstream as a logged-in request would: X-Session-User, the user
// headers, the placeholders. The upstream never sees the credentials.

// HTTPBasic turns on HTTP Basic with the handler's users.
type HTTPBasic struct {
	// Realm is named in the WWW-Authenticate challenge; clients show it
	// when they ask for a password. Default "restricted".
	Realm string `json:"realm,omitempty"`
}

// DefaultBasicRealm is the realm of the Basic challenge if none is given.
const DefaultBasicRealm = "restricted"

func (h *Handler) validateBasic() error {
	if h.HTTPBasic == nil {
		return nil
	}
	if len(h.Users) == 0 && h.UsersFile == "" {
		return fmt.Errorf("http_basic: needs users (user or users_file) to check passwords against")
	}
	return validBasicRealm(h.HTTPBasic.Realm)
}

// validBasicRealm accepts "" (the default) or printable ASCII without '"'
// and '\', which go into the challenge's quoted string as they are.
func validBasicRealm(realm string) error {
	if len(realm) > 128 || strings.ContainsFunc(realm, func(r rune) bool { return r < ' ' || r > '~' || r == '"' || r == '\\' }) {
		return fmt.Errorf("http_basic realm %q: want at most 128 printable ASCII characters without '\"' or '\\'", realm)
	}
	return nil
}

// basicCredentials are what a client sent with HTTP Basic.
type basicCredentials struct {
	user, password string
	given          bool
}

// takeBasicCredentials reads the request's HTTP Basic credentials when
// http_basic is on, and removes every Authorization header of the Basic
// scheme from r whether it is used or not: it carries a password of our
// users, which is not the upstream's to see. Other schemes stay.
func (h *Handler) takeBasicCredentials(r *http.Request) basicCredentials {
	if h.HTTPBasic == nil {
		return basicCredentials{}
	}
	values, ok := r.Header["Authorization"]
	if !ok {
		return basicCredentials{}
	}
	var c basicCredentials
	c.user, c.password, c.given = r.BasicAuth()
	kept := values[:0:0]
	for _, v := range values {
		if scheme, _, _ := strings.Cut(strings.TrimSpace(v), " "); !strings.EqualFold(scheme, "Basic") {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Authorization")
	} else {
		r.Header["Authorization"] = kept
	}
	return c
}

// basicLogin checks Basic credentials, throttled as a login. It returns
// the session the request is forwarded with (saved nowhere), or answers
// the request itself (401 with a challenge, 429, 503) and returns nil.
func (h *Handler) basicLogin(w http.ResponseWriter, r *http.Request, c basicCredentials) (*session.Session, error) {
	if err := identity.ValidUsername(c.user); err != nil || len(c.password) > maxPassword {
		h.logger.Warn("malformed http basic credentials", zapRemoteIP(r), zap.NamedError("reason", err))
		return nil, h.basicUnauthorized(w)
	}
	ip := clientIP(r)
	attempt, wait, err := h.beginBasic(r.Context(), ip, c.user)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, nil // the client hung up; nothing was checked or counted
		}
		h.metrics.logins.WithLabelValues("error").Inc()
		h.logger.Error("session store unavailable: login refused", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"), zap.Error(err))
		return nil, h.serviceUnavailable(w)
	}
	if attempt == nil {
		h.metrics.logins.WithLabelValues("throttled").Inc()
		h.logger.Warn("login throttled", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return nil, pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
	}
	defer attempt.End()

	fp, ok, err := h.users.Check(c.user, c.password)
	if err != nil {
		h.logger.Error("password check failed", zap.String("user", c.user), zap.String("remote_ip", ip), zap.Error(err))
	}
	if !ok {
		attempt.Failed(r.Context(), time.Now())
		h.metrics.logins.WithLabelValues("failure").Inc()
		h.logger.Warn("login failed", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"))
		return nil, h.basicUnauthorized(w)
	}
	attempt.Succeeded(r.Context())
	h.metrics.logins.WithLabelValues("success").Inc()
	if ce := h.logger.Check(zap.DebugLevel, "http basic login"); ce != nil {
		ce.Write(zap.String("user", c.user), zap.String("remote_ip", ip))
	}
	return &session.Session{Rec: sessionstore.Record{User: c.user, Source: identity.Password, Fingerprint: fp}}, nil
}

// basicBusyLimit is how long a Basic request waits for the throttle to let
// it be checked while other attempts of the same user are in flight.
const basicBusyLimit = 5 * time.Second

// beginBasic starts the login attempt of a Basic request. A Basic client
// may send many requests at once, each of them a login; the throttle's
// guard against parallel guessing (attempts in flight count against the
// limit) would turn some away. They wait their turn instead, a few
// seconds at most, which keeps the limit exact. A lockout is answered at
// once.
func (h *Handler) beginBasic(ctx context.Context, ip, user string) (*throttle.Attempt, time.Duration, error) {
	deadline := time.Now().Add(basicBusyLimit)
	for {
		attempt, wait, err := h.throttle.Begin(ctx, h.scope, ip, user, time.Now())
		if attempt != nil || err != nil || wait != throttle.BusyWait || time.Now().After(deadline) {
			return attempt, wait, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, ctx.Err()
		case <-t.C:
		}
	}
}

// basicUnauthorized answers Basic credentials that were refused.
func (h *Handler) basicUnauthorized(w http.ResponseWriter) error {
	w.Header().Set("Cache-Control", "no-store")
	h.basicChallenge(w)
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
}

// basicChallenge asks for Basic credentials (RFC 7617, with UTF-8).
func (h *Handler) basicChallenge(w http.ResponseWriter) {
	realm := h.HTTPBasic.Realm
	if realm == "" {
		realm = DefaultBasicRealm
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
}

// offersBasic reports whether a request that needs a user is answered
// with a Basic challenge: http_basic is on and the request does not come
// from a browser. A browser would ask for the password in a dialog of its
// own and then send it with every request, where logout cannot end it;
// browsers get the login page (navigating) or 401 JSON (scripts). Browsers
// send Sec-Fetch-* to secure origins, Origin with every POST and
// cross-origin request, and Referer (by default) from a page of the site.
func (h *Handler) offersBasic(r *http.Request) bool {
	if h.HTTPBasic == nil {
		return false
	}
	for _, name := range []string{"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "X-Requested-With", "Origin", "Referer"} {
		if _, ok := r.Header[name]; ok {
			return false
		}
	}
	return true
}
