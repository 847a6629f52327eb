package oidc

import (
	"slices"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/internal/text"
)

// How a provider's login becomes the session's amr (SPEC §13): the ID
// token's amr (RFC 8176 values, as OpenID Connect Core 2 defines the
// claim) is recorded as it is, so the upstream sees what the provider
// said; whether it counts as a second factor here (`mfa required`, a
// rule's mfa) is the handler's choice (Options.ProviderMFA).

// knowledge and possession are RFC 8176's methods of the two kinds a
// second factor combines: something known, something held. (Biometrics
// unlock a held key, and providers send them with hwk or swk.)
var (
	knowledge  = []string{"pwd", "pin", "kba"}
	possession = []string{"otp", "hwk", "swk", "sms", "tel", "sc"}
)

// mfaACR are acr values that name a multi-factor login: OpenID Provider
// Authentication Policy Extension's multi-factor policies, and the
// phishing-resistant (hardware) levels of OpenID's EAP ACR values.
var mfaACR = []string{
	"http://schemas.openid.net/pape/policies/2007/06/multi-factor",
	"http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical",
	"phr", "phrh",
}

// amrOf is the session's amr from the ID token's amr and acr claims
// (never userinfo's): the valid values, at most identity.MaxAmr, with
// "mfa" added when they combine a knowledge and a possession factor or
// the acr names a multi-factor login. Unless providerMFA, "mfa" is taken
// out: the provider's word then never satisfies a second factor here,
// and the upstream still sees the rest.
func (p *Client) amrOf(amrClaim, acrClaim any, providerMFA bool) []string {
	var amr []string
	list, isList := amrClaim.([]any)
	if amrClaim != nil && !isList {
		p.logger.Warn("oidc amr is not a list of strings; ignored", zap.String("amr", text.Shorten(p.claimString(amrClaim), 100)))
	}
	for _, e := range list {
		v, ok := e.(string)
		if !ok || !identity.ValidAmr(v) {
			p.logger.Debug("oidc amr value skipped: not 1 to 32 printable ASCII characters", zap.String("value", text.Shorten(p.claimString(e), 40)))
			continue
		}
		if slices.Contains(amr, v) {
			continue
		}
		if len(amr) == identity.MaxAmr {
			p.logger.Warn("oidc amr has too many values; keeping the first ones", zap.Int("max", identity.MaxAmr))
			break
		}
		amr = append(amr, v)
	}
	if !providerMFA {
		return slices.DeleteFunc(amr, func(v string) bool { return v == identity.AmrMFA })
	}
	if identity.HasMFA(amr) {
		return amr
	}
	acr, _ := acrClaim.(string)
	combines := slices.ContainsFunc(amr, func(v string) bool { return slices.Contains(knowledge, v) }) &&
		slices.ContainsFunc(amr, func(v string) bool { return slices.Contains(possession, v) })
	if combines || slices.Contains(mfaACR, acr) {
		if len(amr) == identity.MaxAmr {
			amr = amr[:identity.MaxAmr-1]
		}
		amr = append(amr, identity.AmrMFA)
	}
	return amr
}

// claimString is a claim's value for a log line.
func (p *Client) claimString(v any) string {
	s, _ := claimText(v)
	return s
}
