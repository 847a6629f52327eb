package upstream

import (
	"net"
	"testing"

	"github.com/edgesession/edgesession/sessionstore"
)

func TestConnRegistry(t *testing.T) {
	cr := NewConns[sessionstore.Key]()
	a, b := sessionstore.Key{1}, sessionstore.Key{2}
	pipe := func() (net.Conn, net.Conn) {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		return c1, c2
	}
	a1, a1peer := pipe()
	a2, _ := pipe()
	b1, b1peer := pipe()
	ta1, ta2, tb1 := cr.Track(a, a1), cr.Track(a, a2), cr.Track(b, b1)

	// A connection closed by its user leaves the registry.
	ta2.Close()
	if n := len(cr.byKey[a]); n != 1 {
		t.Fatalf("after one of two closed: %d under the key", n)
	}

	cr.CloseAll(a)
	if _, err := a1peer.Write([]byte("x")); err == nil {
		t.Fatal("closeAll left a connection open")
	}
	if _, ok := cr.byKey[a]; ok {
		t.Fatal("closeAll kept the key")
	}
	ta1.Close() // the proxy's own close, after closeAll's: harmless
	go b1peer.Write([]byte("y"))
	if _, err := tb1.Read(make([]byte, 1)); err != nil {
		t.Fatalf("another key's connection was closed: %v", err)
	}
	tb1.Close()
	if len(cr.byKey) != 0 {
		t.Fatalf("closed connections left entries: %v", cr.byKey)
	}
}
