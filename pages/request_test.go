package pages

import (
	"net/http/httptest"
	"testing"
)

// Headers real clients send, as captured from them.
var browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

func TestWantsPage(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    bool
	}{
		{"browser form", map[string]string{"Accept": browserAccept, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Mode": "navigate"}, true},
		{"JSON POST", map[string]string{"Accept": browserAccept, "Content-Type": "application/json"}, false},
		{"asks for JSON", map[string]string{"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}, false},
		{"jQuery form post", map[string]string{"Accept": "*/*", "X-Requested-With": "XMLHttpRequest", "Content-Type": "application/x-www-form-urlencoded"}, false},
		{"fetch with text/html", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors", "Content-Type": "application/x-www-form-urlencoded"}, false},
		{"curl -d", map[string]string{"Accept": "*/*", "Content-Type": "application/x-www-form-urlencoded"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/.session/login", nil)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := WantsPage(r); got != tt.want {
			t.Errorf("%s: WantsPage = %v, want %v", tt.name, got, tt.want)
		}
	}
}
