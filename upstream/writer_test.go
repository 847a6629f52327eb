package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// countingController counts ApplyControl calls and sees the headers then.
type countingController struct {
	applied int
	saw     string
}

func (c *countingController) ApplyControl(w http.ResponseWriter) {
	c.applied++
	c.saw = w.Header().Get("X-Session-Set-Theme")
	w.Header().Set("Set-Cookie", "s=1")
}

func (c *countingController) Hijacked(conn net.Conn) net.Conn { return conn }

// The writer applies control once, with the upstream's headers, before
// they go out, and no header with the prefix (nor its announced trailer
// name) reaches the client; an informational response is stripped but
// does not apply control.
func TestWriterAppliesOnceAndStrips(t *testing.T) {
	m := NewTrusted("X-Session-", []string{"Remote-User"})
	rec := httptest.NewRecorder()
	ctl := &countingController{}
	var rw Writer
	rw.Reset(rec, &m, ctl, true)

	rw.Header().Set("X-Session-Set-Theme", "dark")
	rw.Header().Set("Link", "</a.css>; rel=preload")
	rw.WriteHeader(http.StatusEarlyHints)
	if ctl.applied != 0 {
		t.Fatalf("control applied on a 103")
	}
	rw.Header().Set("X-Session-Set-Theme", "light")
	rw.Header().Set("Trailer", "X-Session-Logout, Etag")
	rw.Header().Set("Remote-User", "kept: not the prefix")
	rw.Write([]byte("body"))
	rw.WriteHeader(http.StatusTeapot) // superfluous, passed on
	rw.Finish()
	if ctl.applied != 1 || ctl.saw != "light" {
		t.Fatalf("applied %d times, saw %q", ctl.applied, ctl.saw)
	}
	if got := rec.Header().Get("X-Session-Set-Theme"); got != "" {
		t.Errorf("control header reached the client: %q", got)
	}
	if got := rec.Header().Get("Trailer"); got != "Etag" {
		t.Errorf("announced trailers: %q", got)
	}
	if rec.Header().Get("Set-Cookie") != "s=1" || rec.Header().Get("Remote-User") == "" {
		t.Errorf("headers: %v", rec.Header())
	}
	rw.Header().Set(http.TrailerPrefix+"X-Session-Login", "bob")
	rw.Header().Set("X-Session-Delete", "theme")
	rw.StripTrailers()
	for name := range rec.Header() {
		if m.MatchesPrefix(name) || name == http.TrailerPrefix+"X-Session-Login" {
			t.Errorf("trailer %q left", name)
		}
	}
}

// With control off, the headers are stripped but not applied.
func TestWriterControlOff(t *testing.T) {
	m := NewTrusted("X-Session-", nil)
	rec := httptest.NewRecorder()
	ctl := &countingController{}
	var rw Writer
	rw.Reset(rec, &m, ctl, false)
	rw.Header().Set("X-Session-Logout", "true")
	rw.Finish()
	if ctl.applied != 0 || rec.Header().Get("X-Session-Logout") != "" {
		t.Fatalf("applied %d, header %v", ctl.applied, rec.Header())
	}
}

// The guard strips without applying, once the final headers go out.
func TestGuardStrips(t *testing.T) {
	m := NewTrusted("X-Session-", nil)
	rec := httptest.NewRecorder()
	var g Guard
	g.Reset(rec, &m)
	g.Header().Set("X-Session-Login", "mallory")
	g.WriteHeader(http.StatusEarlyHints)
	if g.WroteHeader() {
		t.Fatal("a 103 counted as the response")
	}
	g.Header().Set("X_Session_Login", "mallory")
	g.Write([]byte("x"))
	if !g.WroteHeader() || rec.Header().Get("X-Session-Login") != "" {
		t.Fatalf("wrote %v, headers %v", g.WroteHeader(), rec.Header())
	}
}
