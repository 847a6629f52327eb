package caddymodule

import (
	"fmt"
	"strings"

	"github.com/edgesession/edgesession/endpoints"
)

// HTTP Basic for clients that cannot fill in a form (SPEC §12): CalDAV and
// WebDAV clients, git, scripts. They send a user's name and password with
// every request. Each such request is a login as far as the throttle is
// concerned (same limits, same counts as the form: a Basic failure is a
// login failure), creates no session and sets no cookie, and goes to the
// upstream as a logged-in request would: X-Session-User, the user
// headers, the placeholders. The upstream never sees the credentials.
// Here is its configuration; package endpoints takes and checks the
// credentials.

// HTTPBasic turns on HTTP Basic with the handler's users.
type HTTPBasic struct {
	// Realm is named in the WWW-Authenticate challenge; clients show it
	// when they ask for a password. Default "restricted".
	Realm string `json:"realm,omitempty"`
}

// DefaultBasicRealm is the realm of the Basic challenge if none is given.
const DefaultBasicRealm = endpoints.DefaultBasicRealm

// validateBasic checks b (nil when off); users is whether any users are
// configured, inline or in a users file.
func validateBasic(b *HTTPBasic, users bool) error {
	if b == nil {
		return nil
	}
	if !users {
		return fmt.Errorf("http_basic: needs users (user or users_file) to check passwords against")
	}
	return validBasicRealm(b.Realm)
}

// validBasicRealm accepts "" (the default) or printable ASCII without '"'
// and '\', which go into the challenge's quoted string as they are.
func validBasicRealm(realm string) error {
	if len(realm) > 128 || strings.ContainsFunc(realm, func(r rune) bool { return r < ' ' || r > '~' || r == '"' || r == '\\' }) {
		return fmt.Errorf("http_basic realm %q: want at most 128 printable ASCII characters without '\"' or '\\'", realm)
	}
	return nil
}
