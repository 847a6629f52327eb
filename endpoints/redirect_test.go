package endpoints

import (
	"net/url"
	"strings"
	"testing"

	whatwg "github.com/nlnwa/whatwg-url/url"
)

func TestSafeRedirect(t *testing.T) {
	tests := map[string]string{
		"/":                             "/",
		"/a/b?c=d#e":                    "/a/b?c=d#e",
		"/%E2%9C%93":                    "/%E2%9C%93",
		"":                              "/",
		"//evil.example":                "/",
		"/\\evil.example":               "/",
		"\\\\evil.example":              "/",
		"https://evil":                  "/",
		"javascript:alert(1)":           "/",
		"evil.example":                  "/",
		"/\t/evil":                      "/",
		"/%09/evil":                     "/",
		"/%2F/evil":                     "/",
		"/a\\b":                         "/",
		"/a\x7fb":                       "/",
		"/" + strings.Repeat("a", 3000): "/",
	}
	for in, want := range tests {
		if got := safeRedirect(in); got != want {
			t.Errorf("safeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}

// Run with, e.g., go test ./endpoints -run '^$' -fuzz '^FuzzSafeRedirect$' -fuzztime 60s -parallel 1
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
