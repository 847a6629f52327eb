package tests

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestWebsocketClosedWhenItsSessionEnds: a websocket opened through
// session is closed by the server when this instance deletes the session
// it was opened with; other sessions' sockets stay open.
func TestWebsocketClosedWhenItsSessionEnds(t *testing.T) {
	up := StartUpstream(t)
	up.Hooks["/ws"] = websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }).ServeHTTP
	c := startSite(t, up, "memory", "upstream_control on")

	dial := func(t *testing.T, cl *Client) *websocket.Conn {
		t.Helper()
		cfg, err := websocket.NewConfig(strings.Replace(c.Site, "http://", "ws://", 1)+"/ws", c.Site)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header.Set("Cookie", "caddy_session="+cl.SessionCookie())
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		echo(t, ws, "hello")
		return ws
	}

	for _, tc := range []struct {
		name string
		end  func(t *testing.T, cl *Client)
	}{
		{"logout", func(t *testing.T, cl *Client) {
			if r := cl.LogoutJSON(); r.StatusCode != 204 {
				t.Fatalf("logout: %d", r.StatusCode)
			}
		}},
		{"upstream logout", func(t *testing.T, cl *Client) { cl.Get("/x?h=X-Session-Logout:true") }},
		{"another login replaces the session", func(t *testing.T, cl *Client) { cl.MustLogin("bob", bobPassword) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice := NewClient(t, c.Site)
			alice.MustLogin("alice", alicePassword)
			other := NewClient(t, c.Site)
			other.MustLogin("alice", alicePassword) // the same user, another session
			ws, kept := dial(t, alice), dial(t, other)

			tc.end(t, alice)
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := ws.Read(make([]byte, 16))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the websocket was still open 5s after its session ended")
			}
			if err == nil {
				t.Fatalf("read %d bytes from a websocket whose session ended", n)
			}
			echo(t, kept, "still here")
		})
	}
}

// echo sends msg on ws and checks that it comes back.
func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(ws, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := ws.Read(buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("echo of %q: %q %v", msg, buf[:n], err)
	}
	ws.SetDeadline(time.Time{})
}
