package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/sessionstore"
)

// Logout reaches the provider in both directions:
//
//   - RP-initiated logout (ProviderLogout on): a logout at
//     <prefix>/logout ends the session here, then sends the browser to the
//     provider's end_session_endpoint with id_token_hint, client_id and
//     post_logout_redirect_uri. The ID token for the hint is kept in a
//     cookie of its own, sealed like the state cookie and sent only to
//     <prefix>/logout: neither the store nor every request carries its
//     kilobyte or so. A token too large for a cookie is not kept; the
//     logout then goes without the hint (the provider may ask the user to
//     confirm).
//   - Back-channel logout: the provider POSTs a logout token to
//     <prefix>/oidc/<name>/backchannel-logout; every session of that
//     provider with the token's sid (or, without one, sub) is deleted
//     from the store, which every instance sharing it sees at once. The
//     sessions carry hashes of their sid and sub in their fingerprint;
//     finding them walks the store (sessionstore.Lister: memory, bolt, and
//     redis by SCAN), since the provider names a subject, not a user. The
//     cookie store cannot revoke: such a request is answered 501 and logged.
//     What a logout token must be, and how floods are kept from crowding
//     out the provider's logouts: backchannel.go and
//     backchannel_limits.go.

// loginFingerprint is the fingerprint of a session p issued to the
// ID token's sub and sid: the provider's, then hashes of both.
func (p *Client) loginFingerprint(sub, sid string) string {
	return p.fingerprint + ":" + idHash(sub) + ":" + idHash(sid)
}

// loginIDHashes returns the hashes of sub and sid that loginFingerprint
// put at the end of fp, whatever configuration fingerprint comes before.
func loginIDHashes(fp string) (sub, sid string, ok bool) {
	i := strings.LastIndexByte(fp, ':')
	if i <= 0 {
		return "", "", false
	}
	j := strings.LastIndexByte(fp[:i], ':')
	if j <= 0 {
		return "", "", false
	}
	return fp[j+1 : i], fp[i+1:], true
}

// idHash is a short hash of a provider's identifier ("" for none): enough
// to find a user's sessions, not to read the identifier back.
func idHash(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("edgesession oidc id\x00" + s))
	return hex.EncodeToString(sum[:16])
}

// hint is the logout hint cookie's content.
type hint struct {
	Provider string `json:"p"`
	IDToken  string `json:"t"`
	Binding  string `json:"b"` // the session it belongs to
}

// sessionBinding ties a hint to one session, in cookie mode too (where a
// session has no ID): its user, source and creation time.
func sessionBinding(rec sessionstore.Record) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", rec.User, rec.Source, rec.Created.UnixNano()))
	return hex.EncodeToString(sum[:16])
}

func (ps *Set) hintCookie(r *http.Request, site Site, value string) *http.Cookie {
	c := ps.cookie.New(r, value)
	c.Name = ps.cookie.Name + "_oidc_logout"
	c.Path = site.Endpoints + "/logout"
	if cookie.HasPrefixFold(ps.cookie.Name, "__Host-") {
		c.Path = "/"
	}
	return c
}

// keepLogoutHint sets the hint cookie for the session rec that p just
// logged in with rawIDToken, when p logs out at the provider.
func (p *Client) keepLogoutHint(w http.ResponseWriter, r *http.Request, site Site, d *discovery, rec sessionstore.Record, rawIDToken string) {
	ps := p.set
	if !p.ProviderLogout || d.endSession == "" {
		return
	}
	b, _ := json.Marshal(hint{Provider: p.Name, IDToken: rawIDToken, Binding: sessionBinding(rec)})
	v, err := ps.hintCodec.Encode(b)
	if err != nil {
		p.logger.Info("id token too large to keep for logout; the logout at the provider will go without id_token_hint", zap.Int("bytes", len(rawIDToken)))
		return
	}
	c := ps.hintCookie(r, site, v)
	if ps.cookie.Persist {
		c.MaxAge = int(ps.lifetime / time.Second)
	}
	http.SetCookie(w, c)
}

// LogoutRedirect expires the hint cookie and returns where a browser
// logging out of the session rec (nil for none) goes to end its session
// at the provider, or "" when not there.
func (ps *Set) LogoutRedirect(w http.ResponseWriter, r *http.Request, site Site, rec *sessionstore.Record) string {
	if ps == nil {
		return ""
	}
	var hint hint
	if values := cookie.Values(r, ps.cookie.Name+"_oidc_logout"); len(values) > 0 {
		c := ps.hintCookie(r, site, "")
		c.MaxAge = -1
		http.SetCookie(w, c)
		for _, v := range values {
			if b, err := ps.hintCodec.Verify(v); err == nil && json.Unmarshal(b, &hint) == nil {
				break
			}
		}
	}
	if rec == nil || !strings.HasPrefix(rec.Source, SourcePrefix) {
		return ""
	}
	p := ps.Get(strings.TrimPrefix(rec.Source, SourcePrefix))
	if p == nil || !p.ProviderLogout {
		return ""
	}
	d := p.disc.Load() // the logout page's CSP allowed only what was known
	if d == nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", p.ClientID)
	q.Set("post_logout_redirect_uri", p.postLogoutURI(r, site))
	if hint.Provider == p.Name && hint.Binding == sessionBinding(*rec) {
		q.Set("id_token_hint", hint.IDToken)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// postLogoutURI is where the provider sends the browser after its logout:
// PostLogoutRedirectURL, or the site's root as the browser sees it (under
// the mount).
func (p *Client) postLogoutURI(r *http.Request, site Site) string {
	if p.PostLogoutRedirectURL != "" {
		return p.PostLogoutRedirectURL
	}
	return origin(r) + site.Home
}

// LogoutFormAction is what the logout page's CSP form-action must allow
// besides 'self': the providers' end_session endpoints, where the logout
// redirects (browsers hold a form's redirects to form-action too).
func (ps *Set) LogoutFormAction() string {
	if ps == nil {
		return ""
	}
	var origins []string
	for _, p := range ps.list {
		if !p.ProviderLogout {
			continue
		}
		d := p.disc.Load()
		if d == nil || d.endSession == "" {
			continue
		}
		if u, err := url.Parse(d.endSession); err == nil && u.Host != "" && !slices.Contains(origins, u.Scheme+"://"+u.Host) {
			origins = append(origins, u.Scheme+"://"+u.Host)
		}
	}
	return strings.Join(origins, " ")
}

// revokeSessions deletes the sessions p issued for sid (when given;
// with sub too when both are) or else for every session of sub.
//
// It matches the sessions of p's source under any configuration of p, not
// only the current one: a session issued under another configuration is
// not accepted now, but would be again if that configuration came back
// (a change reverted, an instance of a rolling deploy still on it), and a
// logout the provider sent meanwhile must not be lost. Deleting such a
// session is the safe direction.
func (p *Client) revokeSessions(ctx context.Context, lister sessionstore.Lister, store Deleter, sub, sid string) (int, error) {
	subHash, sidHash := idHash(sub), idHash(sid)
	var keys []sessionstore.Key
	err := lister.Each(ctx, func(key sessionstore.Key, rec sessionstore.Record) bool {
		if rec.Source != p.source {
			return true
		}
		recSub, recSid, ok := loginIDHashes(rec.Fingerprint)
		if !ok {
			return true
		}
		match := sid != "" && recSid == sidHash && (sub == "" || recSub == subHash) ||
			sid == "" && recSub == subHash
		if match {
			keys = append(keys, key)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
