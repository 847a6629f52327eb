package authz

import (
	"net/url"
	"testing"
)

func TestPlainPath(t *testing.T) {
	for target, want := range map[string]bool{
		"/":                       true,
		"/static/app.js":          true,
		"/static/a%20b.css":       true,
		"/static/caf%C3%A9":       true,
		"/static/.well-known/x":   true,
		"/static/..x/y":           true,
		"/static/x..":             true,
		"/static/../admin":        false,
		"/static/./x":             false,
		"/static/.":               false,
		"/static/..":              false,
		"/static/%2e%2e/admin":    false,
		"/static/%2E./admin":      false,
		"/static/..%2fadmin":      false,
		"/static%2F..%2Fadmin":    false,
		"/static/..%5cadmin":      false,
		"/static/..;/admin":       false,
		"/static/..;jsessionid=1": false,
		"/static/%252e%252e/x":    false,
		"/static/%0a":             false,
		"/static/%7f":             false,
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if got := PlainPath(u); got != want {
			t.Errorf("PlainPath(%s) = %v, want %v", target, got, want)
		}
	}
}
