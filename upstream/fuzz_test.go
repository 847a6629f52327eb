package upstream

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/edgesession/edgesession/sessionstore"
	"go.uber.org/zap"
)

// validLogin stands in for the handler's user name rules (which are not
// this package's): ParseControl must keep only names it accepts.
func validLogin(name string) error {
	if name == "" || strings.TrimSpace(name) != name || strings.ContainsRune(name, ':') ||
		!utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return errors.New("bad user name")
	}
	return nil
}

// fuzzHeaderRef is the reference for NewTrusted("X-Session-",
// []string{"Remote-User"}): names compared in lower case with '_' as '-'.
// Lower case is ASCII lower case: header names are tokens (RFC 9110),
// and Go's and Caddy's servers reject any other name. (strings.ToLower
// maps U+0130 'İ' to 'i' and U+212A KELVIN SIGN to 'k', which no HTTP
// stack does to a header name.)
func fuzzHeaderRef(name string) (prefix, whole bool) {
	var lower strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower.WriteByte(c)
	}
	n := strings.ReplaceAll(lower.String(), "_", "-")
	prefix = strings.HasPrefix(n, "x-session-")
	return prefix, prefix || n == "remote-user"
}

func FuzzHeaderMatcher(f *testing.F) {
	for _, s := range []string{
		"X-Session-User", "x-session-user", "X_SESSION_USER", "x-SeSsIoN_data-foo", "X-Session-",
		"X-Session", "X-Sessio", "", "Remote-User", "remote_user", "REMOTE-USER", "Remote-User-X",
		"Remote-Use", "XX-Session-User", " X-Session-User", "X-Session-User ", "X-Sess\u0130on-User",
		"\u212Aelvin", "X-Session\x00", "X\u2010Session-User", "Remote\u2010User", "x-session-\xff",
	} {
		f.Add(s)
	}
	m := NewTrusted("X-Session-", []string{"Remote-User"})

	f.Fuzz(func(t *testing.T, name string) {
		wantPrefix, want := fuzzHeaderRef(name)
		if got := m.Matches(name); got != want {
			t.Fatalf("matches(%q) = %v, want %v", name, got, want)
		}
		if got := m.MatchesPrefix(name); got != wantPrefix {
			t.Fatalf("matchesPrefix(%q) = %v, want %v", name, got, wantPrefix)
		}
		// The Unicode-aware reference agrees on ASCII names.
		if !strings.ContainsFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) {
			n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			if ref := strings.HasPrefix(n, "x-session-") || n == "remote-user"; ref != want {
				t.Fatalf("reference disagreement on %q", name)
			}
		}

		h := http.Header{}
		names := []string{
			name, http.CanonicalHeaderKey(name), strings.ToLower(name), strings.ToUpper(name),
			"X-Session-" + name, "x_session_" + name, name + "-Tail", "Remote-User", "remote_user",
			"Content-Type", "X-Forwarded-For",
		}
		for _, n := range names {
			h[n] = []string{"v"}
		}
		m.RemoveFrom(h)
		for n := range h {
			if _, match := fuzzHeaderRef(n); match {
				t.Fatalf("removeFrom left %q (from %q)", n, name)
			}
		}
		for _, n := range names {
			if _, match := fuzzHeaderRef(n); !match {
				if _, ok := h[n]; !ok {
					t.Fatalf("removeFrom removed %q, which is not trusted (from %q)", n, name)
				}
			}
		}
	})
}

func FuzzParseControl(f *testing.F) {
	for _, s := range [][4]string{
		{"Theme", "dark", "X-Session-Login", "alice"},
		{"cart-items", "3", "X-Session-Delete", "theme, cart-items,Bad Key"},
		{"UPPER_case", "v", "X-Session-Logout", "true"},
		{"", "v", "x_session_set_a", "b"},
		{"a b", "v\r\nInjected: x", "X-Session-Set-", "x"},
		{"k", "\x00", "X-Session-Login", "bad:name"},
		{"k", "tab\tok", "X-Session-Login", " alice"},
		{"k", "\xff\xfe", "X-Session-Delete", ",,, ,\u212A"},
		{"\u212A", "v", "X-Session-Set-\u212A", "v"},
		{strings.Repeat("k", 65), strings.Repeat("v", 4097), "X-Session-Logout", " TRUE "},
		{"ok", "fine", "Content-Type", "text/html"},
		{"ok", "fine", "X-Session-Set-Ok", "other"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	m := NewTrusted("X-Session-", nil)

	f.Fuzz(func(t *testing.T, key, value, name, value2 string) {
		hdr := http.Header{}
		hdr["X-Session-Set-"+key] = []string{value}
		hdr["X-Session-Delete"] = []string{value2, key}
		hdr["X-Session-Login"] = []string{value}
		hdr[name] = []string{value2, value}

		c := m.ParseControl(hdr, validLogin, zap.NewNop(), "192.0.2.1")

		for k, v := range c.Set {
			if !sessionstore.ValidDataKey(k) || !sessionstore.ValidDataValue(v) {
				t.Fatalf("parseControl let through %q = %q", k, v)
			}
		}
		for _, k := range c.Delete {
			if !sessionstore.ValidDataKey(k) {
				t.Fatalf("parseControl let through delete %q", k)
			}
		}
		if c.Login != "" && validLogin(c.Login) != nil {
			t.Fatalf("parseControl let through login %q", c.Login)
		}
		if c.Changed != (len(c.Set) > 0 || len(c.Delete) > 0 || c.Login != "" || c.Logout) {
			t.Fatalf("parseControl: changed = %v for %+v", c.Changed, c)
		}
		// A valid Set header is taken, under its lower-cased key (only
		// lower-cased: "Bad_Key" is not "bad-key"), unless the fuzzed
		// header may have set the same key.
		k := strings.ToLower(key)
		nn := normalizeHeaderName(name)
		collides := strings.HasPrefix(nn, "x-session-set-") || nn == "x-session-delete" || nn == "x-session-login"
		if sessionstore.ValidDataKey(k) && sessionstore.ValidDataValue(value) && !collides {
			if got, ok := c.Set[k]; !ok || got != value {
				t.Fatalf("parseControl dropped valid Set-%s: %q (got %q, %v)", key, value, got, ok)
			}
		}
	})
}
