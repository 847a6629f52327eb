// A tap between Hydra and Caddy's back-channel logout endpoint.

package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// backchannelTap stands between Hydra and a Caddy site's back-channel
// logout endpoint: it forwards each logout request as it came, and tells
// the test what Caddy answered, by the logout token's sid. Hydra sends
// its back-channel logouts in the background; the tap is how a test
// waits for one.
type backchannelTap struct {
	srv    *httptest.Server
	target string // Caddy's back-channel logout endpoint
	mu     sync.Mutex
	seen   map[string]chan backchannelAnswer // by sid
}

// backchannelAnswer is Caddy's answer to one back-channel logout.
type backchannelAnswer struct {
	status int
	body   string
	header map[string]any // of the logout token, as sent
	claims map[string]any
}

func newBackchannelTap(t *testing.T, target string) *backchannelTap {
	b := &backchannelTap{target: target, seen: map[string]chan backchannelAnswer{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

// URL is the tap's address, for the client's backchannel_logout_uri.
func (b *backchannelTap) URL() string { return b.srv.URL + "/backchannel-logout" }

func (b *backchannelTap) ch(sid string) chan backchannelAnswer {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.seen[sid]
	if !ok {
		c = make(chan backchannelAnswer, 16)
		b.seen[sid] = c
	}
	return c
}

func (b *backchannelTap) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	header, claims := map[string]any{}, map[string]any{}
	if parts := strings.Split(form.Get("logout_token"), "."); len(parts) == 3 {
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		json.Unmarshal(h, &header)
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(payload, &claims)
	}
	resp, err := http.Post(b.target, r.Header.Get("Content-Type"), bytes.NewReader(body))
	a := backchannelAnswer{header: header, claims: claims}
	if err != nil {
		a.status, a.body = http.StatusBadGateway, err.Error()
	} else {
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status, a.body = resp.StatusCode, string(rb)
	}
	sid, _ := claims["sid"].(string)
	b.ch(sid) <- a
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// Wait returns Caddy's answer to the back-channel logout of sid, waiting
// for it up to timeout.
func (b *backchannelTap) Wait(t *testing.T, sid string, timeout time.Duration) backchannelAnswer {
	t.Helper()
	select {
	case a := <-b.ch(sid):
		return a
	case <-time.After(timeout):
		t.Fatalf("no back-channel logout for sid %s reached Caddy within %v", sid, timeout)
		return backchannelAnswer{}
	}
}
