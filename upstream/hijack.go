package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// A connection handed over to the next handler (a websocket, any other
// protocol upgrade) is no longer a request: the session it was opened
// with is not checked again while it stays open. So that a session that
// ends does not live on in such a socket, the caller keeps each one in a
// Conns under the session's key (Controller.Hijacked), and closes them
// when it ends the session.

// Conns keeps open hijacked connections by a session's key K.
type Conns[K comparable] struct {
	mu    sync.Mutex
	byKey map[K]map[*trackedConn]struct{}
}

// NewConns returns an empty registry.
func NewConns[K comparable]() *Conns[K] {
	return &Conns[K]{byKey: map[K]map[*trackedConn]struct{}{}}
}

// Track keeps conn under key until it is closed, by anyone; it returns
// the connection to use instead of conn.
func (cr *Conns[K]) Track(key K, conn net.Conn) net.Conn {
	tc := &trackedConn{Conn: conn}
	tc.untrack = func() {
		cr.mu.Lock()
		defer cr.mu.Unlock()
		if set := cr.byKey[key]; set != nil {
			delete(set, tc)
			if len(set) == 0 {
				delete(cr.byKey, key)
			}
		}
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.byKey[key] == nil {
		cr.byKey[key] = map[*trackedConn]struct{}{}
	}
	cr.byKey[key][tc] = struct{}{}
	return tc
}

// CloseAll closes every connection kept under key.
func (cr *Conns[K]) CloseAll(key K) {
	cr.mu.Lock()
	set := cr.byKey[key]
	delete(cr.byKey, key)
	cr.mu.Unlock()
	for tc := range set {
		tc.Close()
	}
}

// CloseEvery closes every connection kept under any key.
func (cr *Conns[K]) CloseEvery() {
	cr.mu.Lock()
	keys := make([]K, 0, len(cr.byKey))
	for k := range cr.byKey {
		keys = append(keys, k)
	}
	cr.mu.Unlock()
	for _, k := range keys {
		cr.CloseAll(k)
	}
}

// trackedConn is a hijacked connection that leaves the registry when it
// is closed.
type trackedConn struct {
	net.Conn
	once    sync.Once
	untrack func()
}

// Close implements net.Conn.
func (c *trackedConn) Close() error {
	c.once.Do(c.untrack)
	return c.Conn.Close()
}

// CloseWrite half-closes the connection as *net.TCPConn and *tls.Conn do,
// so that a proxy that propagates a half-close still can.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Hijack implements http.Hijacker; http.NewResponseController finds it
// before it unwraps to the writer below. The connection is handed to the
// Controller (Hijacked), which keeps it under the request's session.
func (rw *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriterWrapper.ResponseWriter).Hijack()
	if err != nil || rw.ctl == nil {
		return conn, brw, err
	}
	return rw.ctl.Hijacked(conn), brw, nil
}

// Interface guards
var (
	_ http.Hijacker = (*Writer)(nil)
	_ io.ReaderFrom = (*Writer)(nil)
	_ io.ReaderFrom = (*Guard)(nil)
)
