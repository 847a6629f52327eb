package authz

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The method readings of a request: its own method, as upstreams spell
// it, and the overrides they honour (see the package comment).

// readMethod adds the method readings of r.
func (rd *Readings) readMethod(r *http.Request) {
	rd.method[0], rd.nm = r.Method, 1
	rd.addMethod(r.Method)
	if r.Method != http.MethodGet && asciiUpper(strings.TrimSpace(r.Method)) == http.MethodGet {
		// Caddy's php_fastcgi sends any method it does not know by its
		// exact spelling through its client's Post, which makes "get"
		// (anything but "GET" itself) REQUEST_METHOD=POST.
		rd.addMethod(http.MethodPost)
	}
	for name, values := range r.Header {
		if isOverrideHeader(name) {
			for _, v := range values {
				for m := range strings.SplitSeq(v, ",") {
					rd.addMethod(m)
				}
			}
		}
	}
	methodParams(r.URL.RawQuery, rd.addMethod)
}

// addMethod adds m trimmed and in upper case, and GET for HEAD, unless
// they are there already; past maxMethodReadings, the readings are
// refused.
func (rd *Readings) addMethod(m string) {
	m = asciiUpper(strings.TrimSpace(m))
	if m == "" {
		return
	}
	add := func(m string) {
		if slices.Contains(rd.methods(), m) {
			return
		}
		if rd.nm == len(rd.method) {
			rd.refused = "request with too many method overrides"
			return
		}
		rd.method[rd.nm] = m
		rd.nm++
	}
	add(m)
	if m == "HEAD" {
		add("GET")
	}
}

// isOverrideHeader reports whether name is a method-override header, in
// any case and with '_' or '.' for '-': CGI, WSGI and PHP read all three
// as the same header. (Caddy drops names with '_' or '.' unless
// expected_underscore_headers or expected_dot_headers keep them.)
func isOverrideHeader(name string) bool {
	for _, h := range [...]string{"x-http-method-override", "x-http-method", "x-method-override"} {
		if len(name) == len(h) && HeaderNameIs(name, h) {
			return true
		}
	}
	return false
}

// HeaderNameIs reports whether name, as long as want, is the lower-case
// want when read as CGI, WSGI and PHP read header names: in any ASCII
// case, with '_' or '.' for '-' (HTTP_X_HTTP_METHOD_OVERRIDE).
func HeaderNameIs(name, want string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// methodParams calls add with the value of each "_method" parameter in
// the query q, named as PHP names them: percent-decoded, with ' ', '.'
// and '[' read as '_' (PHP's $_GET has "_method" for " method" and
// ".method"). Laravel and Symfony read "_method" from the query too.
func methodParams(q string, add func(string)) {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.IndexByte(k, '%') >= 0 || strings.IndexByte(k, '+') >= 0 {
			if dk, err := url.QueryUnescape(k); err == nil {
				k = dk
			}
		}
		if len(k) != len("_method") || k[1:] != "method" || !strings.ContainsRune("_ .[", rune(k[0])) {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		add(v)
	}
}
