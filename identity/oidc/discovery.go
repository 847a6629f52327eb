package oidc

import (
	"context"
	"net/http"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/edgesession/edgesession/cookie"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// discovery is what discovery found out about a provider.
type discovery struct {
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	// logoutVerifier checks logout tokens' signatures (and iss and aud)
	// with a key set of its own, fetched through p.keys: within its
	// budget, and never at the expense of logins. It skips go-oidc's
	// expiry check, since a logout token need not carry exp (see
	// verifyLogoutToken).
	logoutVerifier *gooidc.IDTokenVerifier
	// endSession is the provider's end_session_endpoint, if it has one.
	endSession string
}

// httpTimeout bounds every request to a provider: discovery, token,
// keys, userinfo.
const httpTimeout = 10 * time.Second

// retryEvery is how soon a login may try discovery again after it
// failed: a provider that is down is not asked on every click.
const retryEvery = 2 * time.Second

// discoverInBackground runs discovery until it succeeds, backing off up
// to a minute between tries, and gives up when ctx ends (the config was
// unloaded).
func (p *Client) discoverInBackground(ctx context.Context) {
	wait := time.Second
	for {
		if _, err := p.discover(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// discover returns what discovery found, running it now if it has not
// succeeded yet (at most every retryEvery).
func (p *Client) discover(ctx context.Context) (*discovery, error) {
	if d := p.disc.Load(); d != nil {
		return d, nil
	}
	p.trying.Lock()
	defer p.trying.Unlock()
	if d := p.disc.Load(); d != nil {
		return d, nil
	}
	if p.lastErr != nil && time.Since(p.lastTry) < retryEvery {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	prov, err := gooidc.NewProvider(gooidc.ClientContext(ctx, p.client), p.Issuer)
	if err != nil {
		p.logger.Warn("oidc discovery failed; will retry", zap.String("issuer", p.Issuer), zap.Error(err))
		p.lastErr = err
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = prov.Claims(&extra) // optional; discovery already parsed
	d := &discovery{
		provider: prov,
		verifier: prov.Verifier(&gooidc.Config{ClientID: p.ClientID}),
		logoutVerifier: prov.VerifierContext(gooidc.ClientContext(context.Background(), &http.Client{Timeout: httpTimeout, Transport: p.keys}),
			&gooidc.Config{ClientID: p.ClientID, SkipExpiryCheck: true}),
		endSession: extra.EndSession,
	}
	p.disc.Store(d)
	p.lastErr = nil
	p.logger.Info("oidc provider discovered", zap.String("issuer", p.Issuer))
	return d, nil
}

// oauth2Config is the provider's client configuration for one login.
func (p *Client) oauth2Config(d *discovery, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.secret,
		Endpoint:     d.provider.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       p.Scopes,
	}
}

// origin is the scheme and host the browser sent r to.
func origin(r *http.Request) string {
	if cookie.CameOverHTTPS(r) {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// redirectURI is the callback URL for a login started by r.
func (p *Client) redirectURI(r *http.Request, site Site) string {
	if p.RedirectURL != "" {
		return p.RedirectURL
	}
	return origin(r) + site.Endpoints + "/oidc/" + p.Name + "/callback"
}
