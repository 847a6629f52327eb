package oidc

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/internal/text"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// A login through a provider goes:
//
//  1. <prefix>/login?provider=<name>[&redirect=<path>] (a button of the
//     login page is a link there): a state cookie is set and the browser
//     is sent to the provider with state, nonce and a PKCE challenge.
//  2. The provider sends the browser back to
//     <prefix>/oidc/<name>/callback?code=…&state=…: the state cookie is
//     checked and expired, the code exchanged (with the PKCE verifier),
//     the ID token verified, the user admitted or refused, and the session
//     created as for any login.
//
// The login in progress lives only in the state cookie, signed and
// encrypted with keys of its own: any instance that shares the secret can
// finish a login another began, and only the browser that began it can.

// loginState is the login in progress, sealed in the state cookie. The
// callback URI is not in it: the callback works it out again as the start
// did (the provider sends the browser to exactly that URI), so that no
// Host header, however long, makes the cookie grow.
type loginState struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	Started  int64  `json:"t"` // Unix seconds: the oldest login goes first
}

// What one browser keeps of logins in progress stays within what browsers
// and servers accept: at most maxLogins state cookies (a new login
// drops the oldest), each under 4 KB. Caddy refuses request headers over
// 16 KB (431), browsers drop a cookie over 4 KB, and many upstreams take
// 8 KB of headers: maxLogins cookies of at most ~2.2 KB stay well
// within that beside the session cookie and the app's own.
const (
	// maxLogins is how many logins one browser may have in progress
	// with one handler: enough for a few tabs signing in at once.
	maxLogins = 4
	// maxStateRedirect bounds the redirect a state cookie keeps. A longer
	// one is kept without its query, or, if its path alone is too long,
	// replaced by the site's home: the login works, and lands near.
	maxStateRedirect = 1024
)

// statePrefix starts the names of the state cookies; each ends in 12
// hex digits (stateCookie).
func (ps *Set) statePrefix() string { return ps.cookie.Name + "_oidc_" }

// stateCookie names the state cookie of the login with state: one
// per login, so that logins started in two tabs do not undo each other.
func (ps *Set) stateCookie(state string) string {
	sum := sha256.Sum256([]byte(state))
	return ps.statePrefix() + hex.EncodeToString(sum[:6])
}

// isStateCookie reports whether a cookie called name is one of ps's state
// cookies (not the logout hint, which shares the prefix).
func (ps *Set) isStateCookie(name string) bool {
	rest, ok := strings.CutPrefix(name, ps.statePrefix())
	if !ok || len(rest) != 12 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// stateCookieFor is a state cookie with the session cookie's attributes but
// its own name, SameSite=Lax whatever the session cookie's (the
// provider's redirect back is a cross-site navigation), and the path of
// the handler's endpoints: the start of a login (<prefix>/login) sees the
// logins already in progress, to drop the oldest, and the callback
// (<prefix>/oidc/<name>/callback) its own.
func (ps *Set) stateCookieFor(r *http.Request, site Site, name, value string) *http.Cookie {
	c := ps.cookie.New(r, value)
	c.Name = name
	c.Path = site.Endpoints + "/"
	if cookie.HasPrefixFold(ps.cookie.Name, "__Host-") {
		c.Path = "/"
	}
	if c.SameSite != http.SameSiteNoneMode {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

// stateRedirect is what of redirect a state cookie keeps: all of it, or
// its path when it is too long, or fallback when even that is.
func stateRedirect(redirect, fallback string) (kept string, cut bool) {
	if len(redirect) <= maxStateRedirect {
		return redirect, false
	}
	if i := strings.IndexAny(redirect, "?#"); i >= 0 && i <= maxStateRedirect {
		return redirect[:i], true
	}
	return fallback, true
}

// Start begins a login with the provider called name that goes on to
// redirect: it sets a state cookie and sends the browser to the provider.
// A login that cannot begin is a *Problem.
func (ps *Set) Start(w http.ResponseWriter, r *http.Request, site Site, name, redirect string) error {
	p := ps.Get(name)
	if p == nil {
		return &Problem{Status: http.StatusNotFound, Title: "Unknown sign-in provider", Message: "There is no sign-in provider called " + name + " here."}
	}
	d, err := p.discover(r.Context())
	if err != nil {
		prob := p.problem("error", http.StatusServiceUnavailable, "Sign-in unavailable", p.Label+" cannot be reached right now. Please try again in a minute.")
		prob.RetryAfter = "30"
		return prob
	}
	kept, cut := stateRedirect(redirect, site.Home)
	if cut {
		p.logger.Info("oidc login: redirect too long to keep; the login goes on to a shorter one",
			zap.Int("length", len(redirect)), zap.String("kept", text.Shorten(kept, 200)), site.zapRemoteIP())
	}
	st := loginState{
		Provider: p.Name,
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Redirect: kept,
		Started:  time.Now().Unix(),
	}
	b, _ := json.Marshal(st)
	v, err := ps.stateCodec.Encode(b)
	if err != nil {
		return err // cannot happen: every field is bounded
	}
	ps.dropOldLogins(w, r, site)
	c := ps.stateCookieFor(r, site, ps.stateCookie(st.State), v)
	c.MaxAge = int(stateLifetime / time.Second)
	http.SetCookie(w, c)
	redirectURI := p.redirectURI(r, site)
	target := p.oauth2Config(d, redirectURI).AuthCodeURL(st.State, gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// dropOldLogins expires the oldest state cookies r carries, so that
// with the one about to be set there are at most maxLogins. A cookie
// that does not decode (expired, or sealed with a retired secret) is the
// oldest of all.
func (ps *Set) dropOldLogins(w http.ResponseWriter, r *http.Request, site Site) {
	type login struct {
		name, value string
		started     int64
	}
	var logins []login
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if n, v := cookie.Cut(part); ps.isStateCookie(n) {
				logins = append(logins, login{name: n, value: v})
			}
		}
	}
	if len(logins) < maxLogins {
		return
	}
	for i := range logins {
		logins[i].started = stateStarted(ps.stateCodec, logins[i].value)
	}
	slices.SortStableFunc(logins, func(a, b login) int { return cmp.Compare(a.started, b.started) })
	for _, l := range logins[:len(logins)-maxLogins+1] {
		c := ps.stateCookieFor(r, site, l.name, "")
		c.MaxAge = -1
		http.SetCookie(w, c)
	}
}

// stateStarted is when the login sealed in v started, 0 if v does not
// decode.
func stateStarted(codec *cookie.Codec, v string) int64 {
	var st loginState
	b, err := codec.Verify(strings.Trim(v, `"`))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	return st.Started
}

// takeState returns the login in progress that state names, and
// expires its cookie: a state is used once.
func (p *Client) takeState(w http.ResponseWriter, r *http.Request, site Site, state string) (loginState, bool) {
	ps := p.set
	var st loginState
	if state == "" || len(state) > 256 {
		return st, false
	}
	name := ps.stateCookie(state)
	values := cookie.Values(r, name)
	if len(values) == 0 {
		return st, false
	}
	c := ps.stateCookieFor(r, site, name, "")
	c.MaxAge = -1
	http.SetCookie(w, c)
	for _, v := range values {
		b, err := ps.stateCodec.Verify(v)
		if err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		if st.Provider == p.Name && subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) == 1 {
			return st, true
		}
	}
	return loginState{}, false
}
