package identity

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidUsername accepts a name that can be shown, sent in a header and
// named in an admin API path: valid UTF-8, 1 to 256 bytes, no control
// characters, no ':' (the users file separator, and what sets a
// provider's qualified names apart: see ValidUserRef), no leading or trailing
// space, and nothing that paths normalise: not "." or "..", no '/', '\'
// or '%'; no format character or noncharacter (InvisibleRune). Every source's names are checked with it (the Caddyfile and
// users_file, the login form, providers' claims, upstream logins), so no
// user is ever named what an HTTP client or mux would clean away.
func ValidUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty user name")
	case len(name) > 256:
		return fmt.Errorf("user name longer than 256 bytes")
	case !utf8.ValidString(name):
		return fmt.Errorf("user name is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("user name starts or ends with space")
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("user name contains ':'")
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("user name contains a control character")
	case strings.ContainsFunc(name, InvisibleRune):
		return fmt.Errorf("user name contains a format character (such as a bidi override or a zero-width space) or a noncharacter")
	case name == "." || name == "..":
		return fmt.Errorf("user name is a dot segment")
	case strings.ContainsAny(name, `/\%`):
		return fmt.Errorf(`user name contains '/', '\' or '%%'`)
	}
	return nil
}

// InvisibleRune reports whether r changes how the text around it reads
// without being seen, or is no character at all: a Unicode format
// character (Cf: bidi overrides and isolates, zero-width spaces and
// joiners, the byte order mark, the soft hyphen) or a noncharacter
// (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF). No name or group may hold one: a
// right-to-left override makes one name read as another in a log or a
// list, a zero-width space makes "ali\u200bce" look like alice.
func InvisibleRune(r rune) bool {
	return unicode.Is(unicode.Cf, r) || 0xFDD0 <= r && r <= 0xFDEF || r&0xFFFE == 0xFFFE
}

// ValidUserRef accepts a user as rules, the session matcher and the admin
// API name one: a local name (validUsername), or a provider's user
// qualified by the provider's name, "<provider>:<name>" (see
// the oidc block's names).
func ValidUserRef(ref string) error {
	provider, name, qualified := strings.Cut(ref, ":")
	if !qualified {
		return ValidUsername(ref)
	}
	if err := ValidSourceName(provider); err != nil {
		return fmt.Errorf("%q before ':' is not a provider name: %w", provider, err)
	}
	return ValidUsername(name)
}

// ValidGroup accepts a group name that can go in a comma-separated header
// and a users file line: valid UTF-8, 1 to 256 bytes, no space, comma or
// control character.
func ValidGroup(group string) error {
	switch {
	case group == "":
		return fmt.Errorf("empty group name")
	case len(group) > 256:
		return fmt.Errorf("group name longer than 256 bytes")
	case !utf8.ValidString(group):
		return fmt.Errorf("group %q is not valid UTF-8", group)
	case strings.ContainsFunc(group, unicode.IsControl):
		return fmt.Errorf("group %q contains a control character", group)
	case strings.ContainsFunc(group, InvisibleRune):
		return fmt.Errorf("group %+q contains a format character (such as a bidi override or a zero-width space) or a noncharacter", group)
	case strings.ContainsFunc(group, unicode.IsSpace):
		return fmt.Errorf("group %q contains a space", group)
	case strings.ContainsRune(group, ','):
		return fmt.Errorf("group %q contains a comma", group)
	}
	return nil
}

// ValidGroups checks each of one user's groups, and that none is given
// twice.
func ValidGroups(groups []string) error {
	for i, g := range groups {
		if err := ValidGroup(g); err != nil {
			return err
		}
		if slices.Contains(groups[:i], g) {
			return fmt.Errorf("group %q given twice", g)
		}
	}
	return nil
}

// ValidSourceName accepts the names an identity source (an OIDC provider)
// may have: 1 to 64 letters, digits, '.', '_' and '-', not only dots; a
// name that fits in a URL path, a cookie name and a metric label as it is.
func ValidSourceName(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, ".") == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return fmt.Errorf("oidc name %q: want 1 to 64 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}
