package cookie

import (
	"net/http"
	"strings"
	"testing"
)

func TestRemoveCookie(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"a=1; caddy_session=x; b=2"}, []string{"a=1; b=2"}},
		{[]string{"caddy_session=x"}, nil},
		{[]string{"caddy_session=x", "a=1"}, []string{"a=1"}},
		{[]string{"caddy_session2=x; a=\"q r\""}, []string{"caddy_session2=x; a=\"q r\""}},
		{[]string{"a=1;caddy_session=x;;b=2; caddy_session=y"}, []string{"a=1; b=2"}},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": tt.in}
		Remove(h, "caddy_session")
		if strings.Join(h["Cookie"], "|") != strings.Join(tt.want, "|") {
			t.Errorf("Remove(%q) = %q, want %q", tt.in, h["Cookie"], tt.want)
		}
	}
	r := &http.Request{Header: http.Header{"Cookie": {"a=1; caddy_session=one", "caddy_session=\"two\"; caddy_sessionx=no"}}}
	if got := Values(r, "caddy_session"); strings.Join(got, ",") != "one,two" {
		t.Errorf("cookieValues = %q", got)
	}
}
