package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/edgesession/edgesession/identity"
	whatwg "github.com/nlnwa/whatwg-url/url"
	"go.uber.org/zap"
)

// Fuzz targets for the parsers and validators that see client, upstream
// or operator input. Each runs on its seed corpus (and on any regression
// inputs under testdata/fuzz) as a normal test; run one with, e.g.,
//
//	go test ./caddymodule -run '^$' -fuzz '^FuzzSafeRedirect$' -fuzztime 60s -parallel 1

const (
	// fuzzBcryptHash is bcrypt("hunter2") at cost 4.
	fuzzBcryptHash = "$2a$04$nzevpED6/0lCzqLNEX54RO..pyFr.KxO3S2Ox.BiP6RfQamePLFaG"
	// fuzzArgonHash is a well-formed argon2id hash with tiny parameters.
	fuzzArgonHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
)

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{
		"/", "", "/account", "/a/b?c=d&e=%2F#frag", "/search?q=//evil.example",
		"//evil", "/\\evil", "\\/evil", "\\\\evil", "https://x", "http:/x", "http:x", "javascript:alert(1)",
		"JaVaScRiPt:alert(1)", "data:text/html,x", "/\t/x", "/\n/x", "/\r\n/evil", "\t//evil", " //evil",
		"/%2F/x", "/%2f%2fevil", "/%5Cevil", "/%5C/evil", "/%09/evil", "/%00", "/\x00", "/\x7f",
		"/.//evil", "/./\\evil", "/..//evil", "/a/../..//evil", "/@evil", "/:@evil", "/user:pass@evil",
		"/\u2028", "/\uff0f\uff0fevil", "/\u3002evil", "/ /evil", "/?//evil", "/#//evil",
		"/" + strings.Repeat("a", 2047), "/" + strings.Repeat("a", 2048), "/\xff\xfe", "/%zz", "/%",
		"%2F%2Fevil", "/;//evil", "/%E2%80%A8",
	} {
		f.Add(s)
	}
	base, err := url.Parse("https://site.example/")
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, s string) {
		out := safeRedirect(s)
		if out != "/" && out != s {
			t.Fatalf("safeRedirect(%q) = %q: neither / nor the input", s, out)
		}
		if out != s {
			return
		}
		if s[0] != '/' || len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
			t.Fatalf("safeRedirect(%q) accepted a target not starting with a single /", s)
		}
		if i := strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }); i >= 0 {
			t.Fatalf("safeRedirect(%q) accepted a control character or backslash at %d", s, i)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("safeRedirect(%q) accepted what url.Parse rejects: %v", s, err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("safeRedirect(%q) accepted scheme %q host %q user %v opaque %q", s, u.Scheme, u.Host, u.User, u.Opaque)
		}
		if r := base.ResolveReference(u); r.Scheme != "https" || r.Host != "site.example" || r.User != nil {
			t.Fatalf("safeRedirect(%q): net/url resolves it to %s", s, r)
		}
		// And as a browser (WHATWG URL) resolves a Location header.
		if r, err := whatwg.ParseRef(base.String(), s); err == nil {
			if r.Scheme() != "https" || r.Host() != "site.example" || r.Username() != "" || r.Password() != "" {
				t.Fatalf("safeRedirect(%q): a browser resolves it to %s", s, r.Href(false))
			}
		}
	})
}

// fuzzHeaderRef is the reference for newHeaderMatcher("X-Session-",
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
	m := newHeaderMatcher("X-Session-", []string{"Remote-User"})

	f.Fuzz(func(t *testing.T, name string) {
		wantPrefix, want := fuzzHeaderRef(name)
		if got := m.matches(name); got != want {
			t.Fatalf("matches(%q) = %v, want %v", name, got, want)
		}
		if got := m.matchesPrefix(name); got != wantPrefix {
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
		m.removeFrom(h)
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

func FuzzCaddyfile(f *testing.F) {
	secret := strings.Repeat("s", 32)
	for _, s := range []string{
		"",
		"store memory",
		"store cookie",
		"store bolt",
		"store bolt /var/lib/sessions.db",
		"store redis redis://127.0.0.1:6379 {\nprefix x:\n}",
		"store redis rediss://user:pass@redis.example:6380/2 {\nprefix x:\ndial_timeout 1s\nsentinel mymaster 10.0.0.1:26379 10.0.0.2:26379\n}",
		"store redis redis://127.0.0.1:6379 {\ncluster 127.0.0.1:7000 127.0.0.1:7001\n}",
		"store redis {env.REDIS_URL}",
		"secret " + secret + " " + strings.Repeat("o", 32),
		"secret {env.SESSION_SECRET}",
		"user alice " + fuzzBcryptHash + "\nuser bob " + fuzzArgonHash,
		"user alice " + fuzzBcryptHash + " admin ops", "user alice " + fuzzBcryptHash + " a,b",
		"users_file /etc/caddy/users",
		"path_prefix /.auth",
		"public {\npath /static/* /favicon.ico\n}",
		"public {\nnot path /private/*\nmethod GET HEAD\nremote_ip 10.0.0.0/8\n}",
		"public {\nexpression {path}.startsWith('/pub')\n}",
		"public {\nheader X-Api-Key *\n}\npublic {\nhost api.example\n}",
		"idle_timeout 0\nlifetime 24h",
		"idle_timeout 1d",
		"cookie {\nname a\n}",
		"cookie {\nname __Host-s\ndomain example.com\npath /app\nsecure always\nsame_site none\npersist on\n}",
		"header_prefix X-Auth-\nuser_header Remote-User X-Forwarded-User",
		"forward_cookie on\nupstream_control off",
		"login_template /etc/caddy/login.html",
		"login_limit 5 15m",
		"login_limit 0 15m", "login_limit 5 -1s", "login_limit 99999999999999999999 1h",
		"session extra", "{\n}", "}", "{", "cookie name a", "public", "public {\n}", "public {\nfrobnicate x\n}",
		"store", "store redis", "store redis redis://x {\nsentinel\n}", "store memory {\nx\n}",
		"user", "user alice", "user alice plaintext", "user a:b " + fuzzBcryptHash,
		"cookie {\ncookie {\nname x\n}\n}", "import snippet", "`raw` \"quoted\" <<EOF\nheredoc\nEOF",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		// caddyfile.NewTestDispenser would do, but it calls log.Fatal on
		// input the lexer rejects (an unclosed quote or heredoc), which
		// would end the fuzzing process; lex first instead.
		tokens, err := caddyfile.Tokenize([]byte("session {\n"+s+"\n}"), "Caddyfile")
		if err != nil {
			return
		}
		h := &Handler{}
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		// What it accepted is JSON Caddy can load.
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("UnmarshalCaddyfile(%q) gave a handler that does not marshal: %v", s, err)
		}
		var back Handler
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("UnmarshalCaddyfile(%q) gave JSON that does not unmarshal: %v\n%s", s, err, b)
		}
		for _, u := range h.Users {
			if err := identity.ValidUsername(u.Name); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q: %v", s, u.Name, err)
			}
			if err := identity.ValidGroups(u.Groups); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q's groups: %v", s, u.Name, err)
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
	h := &Handler{logger: zap.NewNop(), strip: newHeaderMatcher("X-Session-", nil)}
	r := httptest.NewRequest(http.MethodGet, "/", nil)

	f.Fuzz(func(t *testing.T, key, value, name, value2 string) {
		hdr := http.Header{}
		hdr["X-Session-Set-"+key] = []string{value}
		hdr["X-Session-Delete"] = []string{value2, key}
		hdr["X-Session-Login"] = []string{value}
		hdr[name] = []string{value2, value}

		c := h.parseControl(hdr, r)

		for k, v := range c.set {
			if !validDataKey(k) || !validDataValue(v) {
				t.Fatalf("parseControl let through %q = %q", k, v)
			}
		}
		for _, k := range c.delete {
			if !validDataKey(k) {
				t.Fatalf("parseControl let through delete %q", k)
			}
		}
		if c.login != "" && identity.ValidUsername(c.login) != nil {
			t.Fatalf("parseControl let through login %q", c.login)
		}
		if c.changed != (len(c.set) > 0 || len(c.delete) > 0 || c.login != "" || c.logout) {
			t.Fatalf("parseControl: changed = %v for %+v", c.changed, c)
		}
		// A valid Set header is taken, under its lower-cased key (only
		// lower-cased: "Bad_Key" is not "bad-key"), unless the fuzzed
		// header may have set the same key.
		k := strings.ToLower(key)
		nn := normalizeHeaderName(name)
		collides := strings.HasPrefix(nn, "x-session-set-") || nn == "x-session-delete" || nn == "x-session-login"
		if validDataKey(k) && validDataValue(value) && !collides {
			if got, ok := c.set[k]; !ok || got != value {
				t.Fatalf("parseControl dropped valid Set-%s: %q (got %q, %v)", key, value, got, ok)
			}
		}
	})
}
