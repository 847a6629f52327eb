package oidc

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/internal/text"
	"github.com/edgesession/edgesession/sessionstore"
	"go.uber.org/zap"
)

// user is who a provider's claims say the user is.
type user struct {
	user          string
	email         string // "" when none
	emailVerified bool
	groups        []string
	data          map[string]string // session data from the claims
}

// maxGroups bounds the groups a session keeps from a provider: every
// one goes into the store (or the cookie) and may go on every request.
const maxGroups = 100

// identify works out the user from verified claims: the name (see
// userNameFromClaims); the groups; and the session data. An error is a
// claimsError: the login is refused (403) with its message.
func (p *Client) identify(claims map[string]any) (user, error) {
	var u user
	u.email, _ = claims["email"].(string)
	if v, ok := claims["email_verified"]; ok {
		var known bool
		if u.emailVerified, known = emailVerified(v); !known {
			p.logger.Warn("oidc email_verified is neither true nor false; the email counts as not verified",
				zap.String("email_verified", text.Shorten(fmt.Sprint(v), 64)), zap.String("email", u.email))
		}
	}
	name, err := p.userNameFromClaims(claims, u)
	if err != nil {
		return u, err
	}
	u.user = name
	for _, g := range claimStrings(claims[p.GroupsClaim]) {
		// Valid as the provider names it (allow_groups) and as it is
		// forwarded (<provider>:<group>, at most 256 bytes).
		if identity.ValidGroup(g) != nil || identity.ValidGroup(p.groupNames([]string{g})[0]) != nil || slices.Contains(u.groups, g) {
			p.logger.Debug("oidc group skipped: not a valid group name, or given twice", zap.String("group", text.Shorten(g, 300)))
			continue
		}
		if len(u.groups) == maxGroups {
			p.logger.Warn("oidc user has too many groups; keeping the first ones", zap.String("user", u.user))
			break
		}
		u.groups = append(u.groups, g)
	}
	u.data = map[string]string{}
	for _, c := range append([]string{"email", "name"}, p.Claims...) {
		v, ok := claimText(claims[c])
		if c == p.GroupsClaim {
			// The groups as kept, not as sent.
			v, ok = strings.Join(u.groups, ","), len(u.groups) > 0
		}
		if !ok {
			continue
		}
		v = text.Shorten(v, sessionstore.MaxDataValue)
		if k := claimDataKey(c); sessionstore.ValidDataKey(k) && sessionstore.ValidDataValue(v) {
			u.data[k] = v
		}
	}
	return u, nil
}

// claimsError is why a provider's claims name no user here: the login is
// refused (403) with msg, a sentence for the user.
type claimsError struct{ msg string }

func (e claimsError) Error() string { return e.msg }

// userNameFromClaims is the provider's name of the user (unqualified):
//
//   - With username_claim set, that claim and no other.
//   - By default, preferred_username; only when the provider sends none
//     (absent, null or ""), the verified email. A preferred_username
//     that reads as an email address ('@') must then be the user's own
//     verified email: the email a user is named by when the provider
//     gives them no username is not another user's to pick.
//
// A claim that is there but is no valid name (identity.ValidUsername, or not a
// string) refuses the login: taking the next claim instead would let the
// user whose username is unusable share a name with the user who picks
// that next claim's value as username. sub is never a fallback, for the
// same reason (a user may pick another's sub as username); name users by
// sub with username_claim sub.
func (p *Client) userNameFromClaims(claims map[string]any, u user) (string, error) {
	claim := p.UsernameClaim
	v, present := claims[claim]
	if present && (v == nil || v == "") {
		present = false
	}
	if !present && p.usernameFallback {
		if u.email == "" || !u.emailVerified {
			return "", claimsError{p.Name + " told us neither your user name (" + claim + ") nor a verified email address."}
		}
		claim, v = "email", u.email
	}
	if v == nil || v == "" {
		return "", claimsError{p.Name + " did not tell us your user name (" + claim + ")."}
	}
	name, ok := v.(string)
	if !ok {
		return "", claimsError{"The user name " + p.Name + " gives you (" + claim + ") is not text."}
	}
	if claim == "email" && !u.emailVerified {
		// An unverified email is anyone's to claim: never a name.
		return "", claimsError{"Your email address " + quoteName(name) + " is not verified by " + p.Name + ", so it cannot name you here."}
	}
	if err := identity.ValidUsername(name); err != nil {
		return "", claimsError{"The user name " + quoteName(name) + " that " + p.Name + " gives you (" + claim + ") cannot be used here: " + err.Error() + "."}
	}
	if p.usernameFallback && claim != "email" && strings.Contains(name, "@") && !(u.emailVerified && lowerASCII(name) == lowerASCII(u.email)) {
		return "", claimsError{"The user name " + quoteName(name) + " that " + p.Name + " gives you (" + claim + ") looks like an email address but is not your verified one, so it cannot be used here."}
	}
	return name, nil
}

// quoteName is a name as a message shows it: quoted, with anything not
// printable escaped, at most 64 bytes of it.
func quoteName(s string) string {
	return strconv.QuoteToGraphic(text.Shorten(s, 64))
}

// admit returns why the allow-lists refuse u, or "" when they let u in.
// Any one of them admits; an email counts only when verified.
func (p *Client) admit(u user) string {
	if len(p.AllowDomains) == 0 && len(p.AllowEmails) == 0 && len(p.AllowGroups) == 0 {
		return ""
	}
	if u.email != "" && u.emailVerified {
		// Exact, but for ASCII case: Unicode case folding would let the
		// Kelvin sign (U+212A) pass for a k, and the long s for an s.
		email := lowerASCII(u.email)
		for _, e := range p.AllowEmails {
			if lowerASCII(e) == email {
				return ""
			}
		}
		// One address: exactly one '@', something before it. Anything
		// else ("a@evil.example@example.com", "@example.com") is in no
		// domain.
		if local, domain, ok := strings.Cut(email, "@"); ok && local != "" && !strings.Contains(domain, "@") {
			for _, d := range p.AllowDomains {
				if lowerASCII(d) == domain {
					return ""
				}
			}
		}
	}
	for _, g := range p.AllowGroups {
		if slices.Contains(u.groups, g) {
			return ""
		}
	}
	var why []string
	if len(p.AllowDomains) > 0 || len(p.AllowEmails) > 0 {
		switch {
		case u.email == "":
			why = append(why, p.Label+" did not tell us your email address")
		case !u.emailVerified:
			why = append(why, "your email address "+u.email+" is not verified by "+p.Label)
		default:
			why = append(why, "the email address "+u.email+" may not sign in here")
		}
	}
	if len(p.AllowGroups) > 0 {
		why = append(why, "you are in none of the groups allowed here")
	}
	s := strings.Join(why, ", and ")
	return fmt.Sprintf("You are signed in to %s as %s, but %s.", p.Label, u.user, s)
}

// claimKeys are the session data keys that p's logins set from claims.
func (p *Client) claimKeys() []string {
	keys := []string{"email", "name"}
	for _, c := range p.Claims {
		keys = append(keys, claimDataKey(c))
	}
	return keys
}

// claimDataKey is the session data key of a claim: lower case, with '_'
// and '.' as '-'.
func claimDataKey(claim string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(claim))
}

// emailVerified reads email_verified: true and "true" are verified, false
// and "false" are not. Some providers send strings; anything else (1,
// "True", null, a list) is not verified either, and known is false.
func emailVerified(v any) (verified, known bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		return b == "true", b == "true" || b == "false"
	}
	return false, false
}

// lowerASCII lower-cases the ASCII letters of s and nothing else: unlike
// strings.ToLower or strings.EqualFold, it never turns another character
// into an ASCII one.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// claimStrings reads a list of strings, or one string, as a list.
func claimStrings(v any) []string {
	switch l := v.(type) {
	case string:
		return []string{l}
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimText is a claim as a session data value: a string as it is, a list
// of strings joined with commas, anything else as JSON.
func claimText(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		return t, t != ""
	case []any:
		if s := claimStrings(t); len(s) == len(t) {
			return strings.Join(s, ","), len(s) > 0
		}
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// validEmailDomain reports whether d is a domain as allow_domains takes
// it: ASCII letters, digits, '-' and '.', as DNS has them (an IDN in its
// xn-- form). Emails are compared with it exactly, but for ASCII case, so
// a domain written with a look-alike (Cyrillic а, the Kelvin sign) is
// another domain.
func validEmailDomain(d string) bool {
	if d == "" || len(d) > 253 || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return false
	}
	return !strings.ContainsFunc(d, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.')
	})
}
