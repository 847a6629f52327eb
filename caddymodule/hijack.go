package caddymodule

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// A connection handed over to the next handler (a websocket, any other
// protocol upgrade) is no longer a request: the session it was opened
// with is not checked again while it stays open. So that a session that
// ends does not live on in such a socket, each one is kept under the
// session's store key, and when this instance deletes that key (a logout,
// the upstream's <prefix>Logout, a login that replaces the session) it
// closes them.
//
// What this does not reach: a session deleted by another instance that
// shares the store, or one that only expires (idle timeout, lifetime);
// sessions in the cookie store (no key, and a logout revokes nothing
// there); streams that are not hijacked (server-sent events, websockets
// over HTTP/2 extended CONNECT).

// hijackedConns is process-wide, not per handler: a logout served after a
// config reload must close a socket opened before it.
var hijackedConns = connRegistry{byKey: map[sessionstore.Key]map[*trackedConn]struct{}{}}

// connRegistry keeps open hijacked connections by session key.
type connRegistry struct {
	mu    sync.Mutex
	byKey map[sessionstore.Key]map[*trackedConn]struct{}
}

// track keeps conn under key until it is closed, by anyone.
func (cr *connRegistry) track(key sessionstore.Key, conn net.Conn) *trackedConn {
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

// closeAll closes every connection kept under key.
func (cr *connRegistry) closeAll(key sessionstore.Key) {
	cr.mu.Lock()
	set := cr.byKey[key]
	delete(cr.byKey, key)
	cr.mu.Unlock()
	for tc := range set {
		tc.Close()
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
// before it unwraps to the writer below. The connection is kept under the
// session the request was made with.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriterWrapper.ResponseWriter).Hijack()
	if err != nil || rw.s == nil || !rw.s.Saved || rw.h.store == nil {
		return conn, brw, err
	}
	key := rw.h.sessions.Key(rw.s.ID)
	tc := hijackedConns.track(key, conn)
	// The session may be gone already: logged out while this request was
	// on its way, or by the upstream's control headers on this very
	// response. Tracked first, checked second, so that no logout falls
	// between the two.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rw.r.Context()), 5*time.Second)
	defer cancel()
	if _, found, err := rw.h.store.Find(ctx, key); err == nil && !found {
		tc.Close()
	}
	return tc, brw, nil
}

// closingStore closes the connections hijacked under a session when the
// session is deleted.
type closingStore struct {
	sessionstore.Store
}

// Unwrap returns the store below.
func (s closingStore) Unwrap() sessionstore.Store { return s.Store }

// Delete implements sessionstore.Store.
func (s closingStore) Delete(ctx context.Context, key sessionstore.Key) error {
	if err := s.Store.Delete(ctx, key); err != nil {
		return err
	}
	hijackedConns.closeAll(key)
	return nil
}

// Interface guards
var (
	_ http.Hijacker      = (*responseWriter)(nil)
	_ sessionstore.Store = closingStore{}
)
