package endpoints

import (
	"context"
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

// DefaultBasicRealm is the realm of the Basic challenge if none is given.
const DefaultBasicRealm = "restricted"

// BasicCredentials are what a client sent with HTTP Basic.
type BasicCredentials struct {
	user, password string
	given          bool
}

// Given reports whether the client sent any.
func (c BasicCredentials) Given() bool { return c.given }

// TakeBasic reads the request's HTTP Basic credentials when
// http_basic is on, and removes every Authorization header of the Basic
// scheme from r whether it is used or not: it carries a password of our
// users, which is not the upstream's to see. Other schemes stay.
func (s *Server) TakeBasic(r *http.Request) BasicCredentials {
	if !s.c.HTTPBasic {
		return BasicCredentials{}
	}
	values, ok := r.Header["Authorization"]
	if !ok {
		return BasicCredentials{}
	}
	var c BasicCredentials
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

// BasicLogin checks Basic credentials, throttled as a login. It returns
// the session the request is forwarded with (saved nowhere), or answers
// the request itself (401 with a challenge, 429, 503) and returns nil.
func (s *Server) BasicLogin(w http.ResponseWriter, r *http.Request, c BasicCredentials) (*session.Session, error) {
	if err := identity.ValidUsername(c.user); err != nil || len(c.password) > maxPassword {
		s.c.Logger.Warn("malformed http basic credentials", s.zapRemoteIP(r), zap.NamedError("reason", err))
		return nil, s.basicUnauthorized(w)
	}
	ip := s.c.ClientIP(r)
	attempt, wait, err := s.beginBasic(r.Context(), ip, c.user)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, nil // the client hung up; nothing was checked or counted
		}
		s.c.Metrics.Login("error")
		s.c.Logger.Error("session store unavailable: login refused", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"), zap.Error(err))
		return nil, ServiceUnavailable(w)
	}
	if attempt == nil {
		s.c.Metrics.Login("throttled")
		s.c.Logger.Warn("login throttled", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return nil, pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
	}
	defer attempt.End()

	fp, ok, err := s.c.Users.Check(c.user, c.password)
	if err != nil {
		s.c.Logger.Error("password check failed", zap.String("user", c.user), zap.String("remote_ip", ip), zap.Error(err))
	}
	if !ok {
		attempt.Failed(r.Context(), time.Now())
		s.c.Metrics.Login("failure")
		s.c.Logger.Warn("login failed", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"))
		return nil, s.basicUnauthorized(w)
	}
	attempt.Succeeded(r.Context())
	if need, err := s.needsSecondFactor(r, c.user); err != nil {
		s.c.Metrics.Login("error")
		return nil, ServiceUnavailable(w)
	} else if need {
		// Basic carries a password and nothing else: a user who proves
		// more at every login cannot be let in by it.
		s.c.Metrics.Login("failure")
		s.c.Logger.Warn("HTTP Basic refused: the user has a second factor", zap.String("user", c.user), zap.String("remote_ip", ip), zap.String("by", "http_basic"))
		w.Header().Set("Cache-Control", "no-store")
		return nil, pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor required: HTTP Basic cannot carry one"})
	}
	s.c.Metrics.Login("success")
	if ce := s.c.Logger.Check(zap.DebugLevel, "http basic login"); ce != nil {
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
func (s *Server) beginBasic(ctx context.Context, ip, user string) (*throttle.Attempt, time.Duration, error) {
	deadline := time.Now().Add(basicBusyLimit)
	for {
		attempt, wait, err := s.c.Throttle.Begin(ctx, s.c.ThrottleScope, ip, user, time.Now())
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
func (s *Server) basicUnauthorized(w http.ResponseWriter) error {
	w.Header().Set("Cache-Control", "no-store")
	s.basicChallenge(w)
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
}

// basicChallenge asks for Basic credentials (RFC 7617, with UTF-8).
func (s *Server) basicChallenge(w http.ResponseWriter) {
	realm := s.c.BasicRealm
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
func (s *Server) offersBasic(r *http.Request) bool {
	if !s.c.HTTPBasic {
		return false
	}
	for _, name := range []string{"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "X-Requested-With", "Origin", "Referer"} {
		if _, ok := r.Header[name]; ok {
			return false
		}
	}
	return true
}
