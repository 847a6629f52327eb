package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// oidcUser is who a provider's claims say the user is.
type oidcUser struct {
	user          string
	email         string // "" when none
	emailVerified bool
	groups        []string
	data          map[string]string // session data from the claims
}

// maxOIDCGroups bounds the groups a session keeps from a provider: every
// one goes into the store (or the cookie) and may go on every request.
const maxOIDCGroups = 100

// identify works out the user from verified claims: the name from
// UsernameClaim, else the email if verified, else sub; the groups; and
// the session data.
func (p *oidcProvider) identify(claims map[string]any) (oidcUser, error) {
	var u oidcUser
	u.email, _ = claims["email"].(string)
	u.emailVerified = claimTrue(claims["email_verified"])
	for _, c := range []string{p.UsernameClaim, "email", "sub"} {
		v, _ := claims[c].(string)
		if c == "email" && !u.emailVerified {
			// An unverified email is anyone's to claim: never a name.
			continue
		}
		if v != "" && validUsername(v) == nil {
			u.user = v
			break
		}
	}
	if u.user == "" {
		return u, errors.New("no usable " + p.UsernameClaim + ", verified email or sub claim")
	}
	for _, g := range claimStrings(claims[p.GroupsClaim]) {
		if validGroup(g) != nil || containsString(u.groups, g) {
			p.logger.Debug("oidc group skipped: not a valid group name, or given twice", zap.String("group", g))
			continue
		}
		if len(u.groups) == maxOIDCGroups {
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
		v = shorten(v, maxDataValue)
		if k := claimDataKey(c); validDataKey(k) && validDataValue(v) {
			u.data[k] = v
		}
	}
	return u, nil
}

// admit returns why the allow-lists refuse u, or "" when they let u in.
// Any one of them admits; an email counts only when verified.
func (p *oidcProvider) admit(u oidcUser) string {
	if len(p.AllowDomains) == 0 && len(p.AllowEmails) == 0 && len(p.AllowGroups) == 0 {
		return ""
	}
	if u.email != "" && u.emailVerified {
		for _, e := range p.AllowEmails {
			if strings.EqualFold(e, u.email) {
				return ""
			}
		}
		domain := u.email[strings.LastIndexByte(u.email, '@')+1:]
		for _, d := range p.AllowDomains {
			if strings.EqualFold(strings.TrimPrefix(d, "@"), domain) {
				return ""
			}
		}
	}
	for _, g := range p.AllowGroups {
		if containsString(u.groups, g) {
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
func (p *oidcProvider) claimKeys() []string {
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

// claimTrue reads a boolean claim; some providers send "true" as a string.
func claimTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
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
