package tests

import (
	"net/http"
	"strings"
	"testing"
)

// errorPathsTemplate puts session in front of the ways Caddy answers an
// upstream's 5xx or an error: passed through, turned into an error by
// handle_response (with and without the upstream's headers), intercepted,
// and answered by handle_errors. An operator's `header` sets a control
// header on every response, before session runs.
const errorPathsTemplate = `
[[.Site]] {
	header X-Session-Set-Flag yes
	session {
		store memory
		user alice [[.Extra.alice]]
		upstream_control on
		public {
			expression ` + "`" + `{http.request.uri.query.n} != "" && int({http.request.uri.query.n}) > 0` + "`" + `
		}
	}
	handle /proxied/* {
		reverse_proxy [[.Upstream]]
	}
	handle /copied/* {
		reverse_proxy [[.Upstream]] {
			@e status 5xx
			handle_response @e {
				copy_response_headers
				error 502
			}
		}
	}
	handle /dropped/* {
		reverse_proxy [[.Upstream]] {
			@e status 5xx
			handle_response @e {
				error 502
			}
		}
	}
	handle /intercepted/* {
		intercept {
			@e status 5xx
			handle_response @e {
				respond "intercepted" 503
			}
		}
		reverse_proxy [[.Upstream]]
	}
	handle /missing {
		error 404
	}
	# An error page from the app: outside session, so it needs the
	# README's header line.
	handle_errors 404 {
		header {
			-X-Session-*
			-X_Session_*
		}
		rewrite * /proxied/fail
		reverse_proxy [[.Upstream]]
	}
	handle_errors {
		respond "oops {err.status_code}"
	}
}
`

func TestHandleErrorsAndOwnResponsesCarryNoControlHeaders(t *testing.T) {
	up := StartUpstream(t)
	fail := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Session-Set-Role", "admin")
		w.Header().Set("X-Session-Anything", "1")
		w.Header()["X_Session_Odd"] = []string{"1"}
		w.WriteHeader(http.StatusInternalServerError)
		// Chunked, with no Content-Length: copy_response_headers would
		// copy it to a response with another body.
		http.NewResponseController(w).Flush()
		w.Write([]byte("upstream failed"))
	}
	for _, p := range []string{"/proxied/fail", "/copied/fail", "/dropped/fail", "/intercepted/fail"} {
		up.Hooks[p] = fail
	}
	c := StartCaddy(t, up.Addr, errorPathsTemplate, WithExtra("alice", aliceHash))

	noControl := func(t *testing.T, r *Response) {
		t.Helper()
		for name := range r.Header {
			if n := strings.ReplaceAll(strings.ToLower(name), "_", "-"); strings.HasPrefix(n, "x-session-") {
				t.Errorf("%s %s (%d): the client saw %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, name)
			}
		}
	}
	data := func(cl *Client) map[string]any {
		d, _ := cl.Get("/.session/whoami").JSON(t)["data"].(map[string]any)
		return d
	}

	// The upstream's 5xx, on each way. Its control headers are applied
	// wherever they reach session (passed through, copied before the error,
	// intercepted), deliberately as on any other status; never shown.
	for _, tc := range []struct {
		path         string
		status       int
		body         string
		upstreamRole bool // the upstream's X-Session-Set-Role reached session
	}{
		{"/proxied/fail", 500, "upstream failed", true},
		{"/copied/fail", 502, "oops 502", true},
		{"/dropped/fail", 502, "oops 502", false},
		{"/intercepted/fail", 503, "intercepted", true},
		{"/missing", 500, "upstream failed", false}, // the app's error page
	} {
		t.Run(tc.path, func(t *testing.T) {
			cl := NewClient(t, c.Site)
			cl.Allow5xx = true
			cl.MustLogin("alice", alicePassword)
			r := cl.Get(tc.path)
			noControl(t, r)
			if tc.status != 0 && (r.StatusCode != tc.status || string(r.Body) != tc.body) {
				t.Errorf("got %d %q, want %d %q", r.StatusCode, r.Body, tc.status, tc.body)
			}
			d := data(cl)
			if got := d["role"] == "admin"; got != tc.upstreamRole {
				t.Errorf("the upstream's role applied: %v, want %v (data %v)", got, tc.upstreamRole, d)
			}
			if d["flag"] != "yes" {
				t.Errorf("the operator's control header on a request that went through session was not applied: %v", d)
			}
		})
	}

	// What session answers itself carries no control header, and applies
	// none: those in the map came from handlers before it, not from an
	// upstream that answered.
	t.Run("own responses", func(t *testing.T) {
		anon := NewClient(t, c.Site)
		for _, r := range []*Response{
			anon.Get("/.session/login", "Accept: text/html"),
			anon.Get("/.session/whoami"),
			anon.Get("/private", "Accept: application/json"),
			anon.Get("/private", "Accept: text/html"),
		} {
			noControl(t, r)
		}
		// An error session returns (a public matcher that fails): answered by
		// handle_errors from the same header map.
		r := anon.Get("/private?n=abc")
		noControl(t, r)
		if r.StatusCode != 400 || string(r.Body) != "oops 400" {
			t.Errorf("matcher error: %d %q", r.StatusCode, r.Body)
		}
		if anon.SessionCookie() != "" {
			t.Error("a control header on session's own response created a session")
		}

		cl := NewClient(t, c.Site)
		login := cl.LoginJSON("alice", alicePassword)
		noControl(t, login)
		noControl(t, cl.Get("/.session/whoami"))
		if d := data(cl); d["flag"] != nil {
			t.Errorf("a control header on session's own response was applied: %v", d)
		}
		noControl(t, cl.Post("/.session/logout", "application/json", "", "Accept: application/json"))
	})
}
