package caddymodule

import (
	"context"
	"net"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/upstream"
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
var hijackedConns = upstream.NewConns[sessionstore.Key]()

// Hijacked implements upstream.Controller: the connection is kept under
// the session the request was made with.
func (ws *writers) Hijacked(conn net.Conn) net.Conn {
	h, s := ws.h, ws.s
	if s == nil || !s.Saved || h.store == nil {
		return conn
	}
	key := h.sessions.Key(s.ID)
	tc := hijackedConns.Track(key, conn)
	// The session may be gone already: logged out while this request was
	// on its way, or by the upstream's control headers on this very
	// response. Tracked first, checked second, so that no logout falls
	// between the two.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ws.r.Context()), 5*time.Second)
	defer cancel()
	if _, found, err := h.store.Find(ctx, key); err == nil && !found {
		tc.Close()
	}
	return tc
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
	hijackedConns.CloseAll(key)
	return nil
}

// Interface guards
var _ sessionstore.Store = closingStore{}
