// The echoing upstream the tests put behind Caddy.

package tests

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Upstream is the app behind Caddy. It answers every request with a JSON
// echo of what it received and counts requests. Query parameters drive it:
// h=Name:Value adds a response header.
type Upstream struct {
	*http.Server
	Addr     string
	Requests atomic.Int64
	// Hold, if set, is waited on by /hold before answering.
	mu   sync.Mutex
	hold chan struct{}
	// Hooks serve paths of their own (SSE, websockets).
	Hooks map[string]http.HandlerFunc
}

// Echo is what the upstream answers.
type Echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
}

// StartUpstream starts an echo upstream on a free port.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{Addr: l.Addr().String(), Hooks: map[string]http.HandlerFunc{}}
	u.Server = &http.Server{Handler: http.HandlerFunc(u.serve)}
	go u.Serve(l)
	t.Cleanup(func() { u.Close() })
	return u
}

// HoldNext makes the next requests to /hold wait until release is called.
func (u *Upstream) HoldNext() (release func()) {
	ch := make(chan struct{})
	u.mu.Lock()
	u.hold = ch
	u.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.Requests.Add(1)
	if hook, ok := u.Hooks[r.URL.Path]; ok {
		hook(w, r)
		return
	}
	if r.URL.Path == "/hold" {
		u.mu.Lock()
		ch := u.hold
		u.mu.Unlock()
		if ch != nil {
			<-ch
		}
	}
	for _, h := range r.URL.Query()["h"] {
		name, value, _ := strings.Cut(h, ":")
		w.Header().Add(name, value)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Echo{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: r.Header})
}
