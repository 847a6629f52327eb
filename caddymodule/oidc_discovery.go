package caddymodule

import (
	"context"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/edgesession/edgesession/cookie"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// oidcDiscovery is what discovery found out about a provider.
type oidcDiscovery struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// logoutVerifier checks logout tokens' signatures (and iss and aud)
	// with a key set of its own, fetched through p.keys: within its
	// budget, and never at the expense of logins. It skips go-oidc's
	// expiry check, since a logout token need not carry exp (see
	// verifyLogoutToken).
	logoutVerifier *oidc.IDTokenVerifier
	// endSession is the provider's end_session_endpoint, if it has one.
	endSession string
}

// oidcHTTPTimeout bounds every request to a provider: discovery, token,
// keys, userinfo.
const oidcHTTPTimeout = 10 * time.Second

// oidcRetryEvery is how soon a login may try discovery again after it
// failed: a provider that is down is not asked on every click.
const oidcRetryEvery = 2 * time.Second

// discoverInBackground runs discovery until it succeeds, backing off up
// to a minute between tries, and gives up when ctx ends (the config was
// unloaded).
func (p *oidcProvider) discoverInBackground(ctx context.Context) {
	wait := time.Second
	for {
		if _, err := p.discovery(ctx); err == nil {
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

// discovery returns what discovery found, running it now if it has not
// succeeded yet (at most every oidcRetryEvery).
func (p *oidcProvider) discovery(ctx context.Context) (*oidcDiscovery, error) {
	if d := p.disc.Load(); d != nil {
		return d, nil
	}
	p.trying.Lock()
	defer p.trying.Unlock()
	if d := p.disc.Load(); d != nil {
		return d, nil
	}
	if p.lastErr != nil && time.Since(p.lastTry) < oidcRetryEvery {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	ctx, cancel := context.WithTimeout(ctx, oidcHTTPTimeout)
	defer cancel()
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.Issuer)
	if err != nil {
		p.logger.Warn("oidc discovery failed; will retry", zap.String("issuer", p.Issuer), zap.Error(err))
		p.lastErr = err
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = prov.Claims(&extra) // optional; discovery already parsed
	d := &oidcDiscovery{
		provider: prov,
		verifier: prov.Verifier(&oidc.Config{ClientID: p.ClientID}),
		logoutVerifier: prov.VerifierContext(oidc.ClientContext(context.Background(), &http.Client{Timeout: oidcHTTPTimeout, Transport: p.keys}),
			&oidc.Config{ClientID: p.ClientID, SkipExpiryCheck: true}),
		endSession: extra.EndSession,
	}
	p.disc.Store(d)
	p.lastErr = nil
	p.logger.Info("oidc provider discovered", zap.String("issuer", p.Issuer))
	return d, nil
}

// oauth2Config is the provider's client configuration for one login.
func (p *oidcProvider) oauth2Config(d *oidcDiscovery, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.secret,
		Endpoint:     d.provider.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       p.Scopes,
	}
}

// redirectURI is the callback URL for a login started by r.
func (p *oidcProvider) redirectURI(r *http.Request, pathPrefix string) string {
	if p.RedirectURL != "" {
		return p.RedirectURL
	}
	scheme := "http"
	if cookie.CameOverHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + pathPrefix + "/oidc/" + p.Name + "/callback"
}
