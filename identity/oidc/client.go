package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// Options are what a handler gives its providers.
type Options struct {
	// Cookie is the session cookie: the state and logout hint cookies
	// take its attributes, and their names start with its name.
	Cookie cookie.Config
	// Realm and Secrets key the state and hint cookies (keys of their
	// own, derived from the handler's secrets).
	Realm   string
	Secrets [][]byte
	// Lifetime is the sessions' lifetime: a hint cookie lives as long.
	Lifetime time.Duration
	Logger   *zap.Logger
	// ResolveSecret replaces the placeholders of a client secret; nil
	// takes it as it is.
	ResolveSecret func(string) (string, error)
	// ProviderMFA: a provider's "mfa" amr (or a multi-factor acr) is
	// recorded, and so counts as a second factor here. Without it the
	// session records the provider's amr without "mfa" (the handler's
	// `oidc_amr off`).
	ProviderMFA bool
}

// Set is a handler's providers, in the order configured. A nil *Set has
// no providers.
type Set struct {
	list   []*Client
	byName map[string]*Client
	cookie cookie.Config
	// lifetime is the sessions' lifetime (the hint cookie's).
	lifetime time.Duration
	// providerMFA is Options.ProviderMFA.
	providerMFA bool
	// stateCodec seals the in-progress login cookies, hintCodec the
	// logout hint cookies: keys of their own, so that no cookie decodes
	// as another kind.
	stateCodec *cookie.Codec
	hintCodec  *cookie.Codec
}

// Get returns the provider called name, or nil.
func (ps *Set) Get(name string) *Client {
	if ps == nil {
		return nil
	}
	return ps.byName[name]
}

// List returns the providers in the order configured.
func (ps *Set) List() []*Client {
	if ps == nil {
		return nil
	}
	return ps.list
}

// Client is one provider at run time: this site as the provider's client.
type Client struct {
	Provider
	set         *Set
	secret      string // ClientSecret, placeholders replaced
	source      string // oidc:<name>
	fingerprint string
	client      *http.Client
	logger      *zap.Logger
	// Back-channel logouts: the limits per client address, the budget of
	// key fetches, and the log of refusals (backchannel_limits.go).
	logoutAddrs    *addressLimits
	keys           *keyFetches
	logoutRefusals *refusalLog

	disc    atomic.Pointer[discovery] // nil until discovery succeeded
	trying  sync.Mutex                // held during a discovery
	lastErr error                     // of the last discovery; guarded by trying
	lastTry time.Time                 // guarded by trying
}

// stateLifetime is how long a login may stay at the provider.
const stateLifetime = 10 * time.Minute

// New checks the providers' settings (filling in their defaults in
// place), and starts their discovery in the background, until it succeeds
// or ctx ends. Nothing here waits for a provider: one that is down when
// Caddy starts is retried until it answers or the config is unloaded.
// Without providers, New returns nil.
func New(ctx context.Context, providers []*Provider, o Options) (*Set, error) {
	if len(providers) == 0 {
		return nil, nil
	}
	ps := &Set{byName: map[string]*Client{}, cookie: o.Cookie, lifetime: o.Lifetime, providerMFA: o.ProviderMFA}
	var err error
	ps.stateCodec, err = cookie.NewPurposeCodec("edgesession oidc state", "oidc-state", o.Realm, o.Secrets, stateLifetime)
	if err != nil {
		return nil, err
	}
	ps.hintCodec, err = cookie.NewPurposeCodec("edgesession oidc logout", "oidc-logout", o.Realm, o.Secrets, o.Lifetime)
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	for _, cfg := range providers {
		if cfg == nil {
			return nil, fmt.Errorf("oidc: empty provider")
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		if ps.byName[cfg.Name] != nil {
			return nil, fmt.Errorf("oidc %s: given twice", cfg.Name)
		}
		p := newClient(*cfg, logger.With(zap.String("provider", cfg.Name)))
		p.set = ps
		if cfg.ClientSecret != "" {
			v, err := cfg.ClientSecret, error(nil)
			if o.ResolveSecret != nil {
				v, err = o.ResolveSecret(cfg.ClientSecret)
			}
			if err != nil {
				return nil, fmt.Errorf("oidc %s: client_secret: %w", cfg.Name, err)
			}
			p.secret = v
		}
		ps.list = append(ps.list, p)
		ps.byName[p.Name] = p
		go p.discoverInBackground(ctx)
	}
	return ps, nil
}

// newClient is the run-time provider of the validated cfg.
func newClient(cfg Provider, logger *zap.Logger) *Client {
	p := &Client{
		Provider:    cfg,
		source:      SourcePrefix + cfg.Name,
		client:      &http.Client{Timeout: httpTimeout},
		logger:      logger,
		logoutAddrs: newAddressLimits(),
		keys:        newKeyFetches(),
	}
	p.logoutRefusals = newRefusalLog(p.logger, refusalLogEvery)
	p.fingerprint = p.configFingerprint()
	return p
}

// Source is the Record.Source of the provider's sessions: oidc:<name>.
func (p *Client) Source() string { return p.source }

// configFingerprint ties a session to what it was issued under: the
// provider (issuer and client) and the rules that admitted its user. A
// provider re-pointed to another issuer or client, or whose allow-lists
// or username claim changed, no longer accepts the sessions it issued
// before: their users sign in again, under the rules as they are now.
func (p *Client) configFingerprint() string {
	b, _ := json.Marshal([]any{p.Issuer, p.ClientID, p.UsernameClaim, p.usernameFallback, p.GroupsClaim, p.Names, p.AllowDomains, p.AllowEmails, p.AllowGroups})
	sum := sha256.Sum256(b)
	// oidc2: names no longer fall back past an unusable claim, and
	// groups are qualified like names; the sessions of oidc1 were issued
	// under the old rules and end.
	return "oidc2:" + hex.EncodeToString(sum[:16])
}

// Accepts implements identity.Source: a session of this provider is a
// login while the provider is configured as it was at login. (What
// follows the provider's fingerprint identifies the user at the provider:
// see loginFingerprint.)
func (p *Client) Accepts(rec sessionstore.Record) bool {
	return p.owns(rec.User) && (rec.Fingerprint == p.fingerprint || strings.HasPrefix(rec.Fingerprint, p.fingerprint+":"))
}

// userName is the name this provider's user called name (a valid local
// name: see identify) gets: qualified by the provider's name unless the
// provider vouches for local names.
func (p *Client) userName(name string) string {
	if p.Names == NamesLocal {
		return name
	}
	return p.Name + ":" + name
}

// groupNames are the groups this provider's user is in, as rules, the
// matcher and X-Session-Groups see them: "<provider>:<group>" unless the
// provider vouches for local names. A provider's groups are its own (at
// GitLab a user creates groups at will): they are not local groups.
func (p *Client) groupNames(groups []string) []string {
	if p.Names == NamesLocal || len(groups) == 0 {
		return groups
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = p.Name + ":" + g
	}
	return out
}

// owns reports whether user is a name this provider gives as it is
// configured now: a session issued under the other Names (or before
// names were qualified) is no login, so that a provider's "admin" of
// yesterday does not stay the local admin today.
func (p *Client) owns(user string) bool {
	if p.Names == NamesLocal {
		return !strings.Contains(user, ":")
	}
	n := len(p.Name)
	return len(user) > n+1 && user[n] == ':' && user[:n] == p.Name
}

// Interface guards
var _ identity.Source = (*Client)(nil)
