package pages

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestValidTitle(t *testing.T) {
	for title, ok := range map[string]bool{"": true, "Acme Wiki": true, "Café ✓ «Docs»": true, "a\nb": false, "a\x00": false, "\xff": false, strings.Repeat("t", 201): false} {
		if err := ValidTitle(title); (err == nil) != ok {
			t.Errorf("ValidTitle(%q) = %v, want ok=%v", title, err, ok)
		}
	}
}

func TestOIDCContinuePage(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	page := OIDC{Title: "Signed in", Continue: "/a?b=1&c=2", Nonce: "n"}
	if err := s.OIDC(rec, 200, page); err != nil {
		t.Fatal(err)
	}
	if body := rec.Body.String(); !strings.Contains(body, `<meta http-equiv="refresh" content="0;url=/a?b=1&amp;c=2">`) {
		t.Errorf("continue page:\n%s", body)
	}
}
