package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/internal/files"
	"github.com/edgesession/edgesession/sessionstore"
)

// OIDCProvider is an OpenID Connect provider that users may sign in with:
// see oidc.Provider. The sign-in itself is package oidc's; the routes
// under <prefix>/oidc/ are package endpoints'.
type OIDCProvider = oidc.Provider

// setupOIDC provisions the providers: their secrets, the state cookie
// codec, and discovery in the background. Nothing here waits for a
// provider: one that is down when Caddy starts is retried until it
// answers or the config is unloaded.
func (h *Handler) setupOIDC(ctx caddy.Context, secrets [][]byte) error {
	if len(h.OIDC) == 0 {
		return nil
	}
	registerOIDCMetrics(ctx.GetMetricsRegistry(), h.logger)
	var err error
	h.oidc, err = oidc.New(ctx, h.OIDC, oidc.Options{
		Cookie:        h.Cookie,
		Realm:         h.Realm,
		Secrets:       secrets,
		Lifetime:      h.lifetime,
		Logger:        h.logger,
		ResolveSecret: resolvePlaceholders,
		ProviderMFA:   h.MFA.oidcAmr(),
	})
	return err
}

// revocation is what a back-channel logout acts on in store: it deletes
// sessions there, and, for a store that can list them, finds them and
// claims each logout token once.
func revocation(store sessionstore.Store) oidc.Revocation {
	rv := oidc.Revocation{Store: store}
	if lister, ok := underlyingStore(store).(sessionstore.Lister); ok {
		rv.Lister, rv.Claims = lister, claimsOf(store)
	}
	return rv
}

// claimsOf is where a handler with store claims what may be used once:
// its store, or, for the cookie store (which keeps nothing on the
// server), this process's memory, which other instances do not see.
func claimsOf(store sessionstore.Store) sessionstore.Claimer {
	if c, ok := underlyingStore(store).(sessionstore.Claimer); ok {
		return c
	}
	return processClaims()
}

// processClaims are the claims of handlers whose store cannot keep them,
// shared by every config this process loads.
var processClaims = sync.OnceValue(func() *sessionstore.Memory { return sessionstore.NewMemory(time.Minute) })

// resolvePlaceholders replaces {env.*} and {file.*} in s, as for secrets,
// without their minimum length.
func resolvePlaceholders(s string) (string, error) {
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			v := os.Getenv(name)
			if v == "" {
				return nil, fmt.Errorf("environment variable %s is unset or empty", name)
			}
			return v, nil
		}
		if path, ok := strings.CutPrefix(key, "file."); ok {
			if fi, err := os.Stat(path); err != nil {
				return nil, err
			} else if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file", path)
			}
			b, err := files.ReadAtMost(path, maxSecretFile)
			return string(b), err
		}
		return nil, fmt.Errorf("only {env.*} and {file.*} placeholders are replaced here (write a literal brace as \\{)")
	})
	return strings.TrimSpace(v), err
}

// registerOIDCMetrics registers the per-provider login counter, created
// once per process like the handler's other collectors.
func registerOIDCMetrics(reg prometheus.Registerer, logger *zap.Logger) *prometheus.CounterVec {
	if reg != nil {
		if err := reg.Register(oidcLogins); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("cannot register oidc metrics", zap.Error(err))
			}
		}
	}
	return oidcLogins
}

var oidcLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "session", Name: "oidc_logins_total",
	Help: "Logins through an OIDC provider by provider and result: success, refused (allow-lists), failure (the provider's answer did not verify, or the user cancelled), error (provider or store unreachable).",
}, []string{"provider", "result"})
