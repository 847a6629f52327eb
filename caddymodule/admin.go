package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/sessionstore"
)

func init() {
	caddy.RegisterModule(AdminSessions{})
}

// AdminSessions serves the session endpoints of Caddy's admin API, so that
// an operator can see who is signed in and sign anyone out, at once, on
// every instance that shares the store:
//
//	GET    /session/users/<user>           the user's sessions
//	DELETE /session/users/<user>           revoke all of the user's sessions
//	DELETE /session/users/<user>/<handle>  revoke one session
//	POST   /session/revoke-all             revoke every session; the body
//	                                       must be {"confirm":"every session"}
//	POST   /session/mfa/reset              remove every second factor of a
//	                                       user: body {"user":"alice"}
//
// <user> is the name as X-Session-User carries it (a provider's user as
// <provider>:<name>), path-escaped; a name no source can issue (".",
// "..", one with '/', '\' or '%') is a 400. Revoking everything is a
// POST with a body that says so, under a path that is no user's: a client
// or mux that cleans a per-user path (a DELETE with "%2E%2E" read as
// "..") can never turn it into revoking everything.
//
// It covers every server-side store of this Caddy process (the ones the
// session handlers of the running config use, reached through the same
// pool, never through a handler) and every realm in them; each session says which site it is
// for. Sessions are named by a handle (sessionstore.Handle), never by their
// ID: nothing here can be turned into a cookie. The cookie store keeps
// nothing on the server and cannot be listed or revoked.
//
// Every revocation is logged at info level. The admin API itself is
// Caddy's: who may reach it is the admin endpoint's configuration.
type AdminSessions struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (AdminSessions) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.session",
		New: func() caddy.Module { return new(AdminSessions) },
	}
}

// Provision implements caddy.Provisioner.
func (a *AdminSessions) Provision(caddy.Context) error {
	a.logger = caddy.Log().Named("admin.api.session")
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *AdminSessions) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminSessionPath, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

const adminSessionPath = "/session/"

// AdminSession is one session as the admin API lists it: what a person
// needs to recognise it, and nothing that could be turned into a cookie.
type AdminSession struct {
	Handle    string    `json:"handle"`
	Site      string    `json:"site,omitempty"`
	Source    string    `json:"source,omitempty"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	Expires   time.Time `json:"expires"`
	ClientIP  string    `json:"client_ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// Store is the kind of store that holds it: memory, bolt or redis.
	Store string `json:"store"`
}

// AdminSessionList is the answer to GET /session/users/<user>.
type AdminSessionList struct {
	User     string         `json:"user"`
	Sessions []AdminSession `json:"sessions"`
	// Stores is how many server-side stores were searched.
	Stores int `json:"stores"`
}

// AdminRevoked is the answer to a revocation.
type AdminRevoked struct {
	Revoked int `json:"revoked"`
	Stores  int `json:"stores"`
}

func (a *AdminSessions) serve(w http.ResponseWriter, r *http.Request) error {
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), adminSessionPath)
	switch parts := strings.Split(rest, "/"); {
	case rest == adminMFAReset:
		if err := allow(r, http.MethodPost); err != nil {
			return err
		}
		return a.resetMFA(w, r)
	case rest == adminRevokeAll:
		if err := allow(r, http.MethodPost); err != nil {
			return err
		}
		if err := confirmedAll(r); err != nil {
			return err
		}
		return a.revokeAll(w, r)
	case parts[0] == "users" && (len(parts) == 2 || len(parts) == 3):
		user, err := url.PathUnescape(parts[1])
		if err != nil || user == "" {
			return apiError(http.StatusBadRequest, "want /session/users/<user>, the user's name path-escaped")
		}
		if err := identity.ValidUserRef(user); err != nil {
			return apiError(http.StatusBadRequest, "user %q: %v: no session can have this name", user, err)
		}
		if len(parts) == 3 {
			h, err := sessionstore.ParseHandle(parts[2])
			if err != nil {
				return apiError(http.StatusBadRequest, "%s", err)
			}
			if err := allow(r, http.MethodDelete); err != nil {
				return err
			}
			return a.revoke(w, r, user, []sessionstore.Handle{h})
		}
		switch r.Method {
		case http.MethodGet:
			return a.list(w, r, user)
		case http.MethodDelete:
			return a.revoke(w, r, user, nil)
		}
		return allow(r, http.MethodGet, http.MethodDelete)
	}
	return apiError(http.StatusNotFound, "no such endpoint: want /session/users/<user>[/<handle>], POST /session/%s with %s, or POST /session/%s with {\"user\":\"<user>\"}", adminRevokeAll, adminRevokeAllBody, adminMFAReset)
}

// adminRevokeAll is the path, under /session/, that revokes every session,
// and adminRevokeAllBody what its body must say.
const (
	adminRevokeAll     = "revoke-all"
	adminRevokeAllBody = `{"confirm":"every session"}`
)

// confirmedAll checks that a request to revoke everything says so in its
// body.
func confirmedAll(r *http.Request) error {
	var body struct {
		Confirm string `json:"confirm"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&body); err != nil || body.Confirm != "every session" {
		return apiError(http.StatusBadRequest, "revoking every session needs the body %s", adminRevokeAllBody)
	}
	return nil
}

func (a *AdminSessions) list(w http.ResponseWriter, r *http.Request, user string) error {
	out := AdminSessionList{User: user, Sessions: []AdminSession{}}
	seen := map[sessionstore.Handle]bool{}
	err := eachIndex(func(kind string, ix sessionstore.UserIndex) error {
		out.Stores++
		es, err := ix.ListUser(r.Context(), user)
		for _, e := range es {
			if seen[e.Handle] {
				continue // two pool entries for one Redis and prefix
			}
			seen[e.Handle] = true
			out.Sessions = append(out.Sessions, AdminSession{
				Handle:    e.Handle.String(),
				Site:      e.Record.Site,
				Source:    e.Record.Source,
				Created:   e.Record.Created,
				LastSeen:  e.Record.LastSeen,
				Expires:   e.Record.Expires,
				ClientIP:  e.Record.ClientIP,
				UserAgent: e.Record.UserAgent,
				Store:     kind,
			})
		}
		return err
	})
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "listing sessions: %v", err)
	}
	slices.SortStableFunc(out.Sessions, func(a, b AdminSession) int { return a.Created.Compare(b.Created) })
	return writeAdminJSON(w, out)
}

// revoke deletes user's sessions (those named by handles, or all).
func (a *AdminSessions) revoke(w http.ResponseWriter, r *http.Request, user string, handles []sessionstore.Handle) error {
	out := AdminRevoked{}
	err := eachIndex(func(_ string, ix sessionstore.UserIndex) error {
		out.Stores++
		keys, err := ix.DeleteUser(r.Context(), user, handles...)
		out.Revoked += len(keys)
		// Sockets this process handed over under those sessions end too.
		for _, k := range keys {
			hijackedConns.CloseAll(k)
		}
		return err
	})
	fields := []zap.Field{zap.String("user", user), zap.Int("revoked", out.Revoked), zap.String("by", "admin_api"), zap.String("remote_ip", remoteIP(r))}
	if handles != nil {
		fields = append(fields, zap.String("handle", handles[0].String()))
	}
	if err != nil {
		a.logger.Error("revoking sessions failed", append(fields, zap.Error(err))...)
		return apiError(http.StatusServiceUnavailable, "revoking sessions (%d revoked before the error): %v", out.Revoked, err)
	}
	a.logger.Info("sessions revoked", fields...)
	if handles != nil && out.Revoked == 0 {
		return apiError(http.StatusNotFound, "user %q has no live session %s", user, handles[0])
	}
	return writeAdminJSON(w, out)
}

// revokeAll deletes every session of every server-side store.
func (a *AdminSessions) revokeAll(w http.ResponseWriter, r *http.Request) error {
	out := AdminRevoked{}
	err := eachIndex(func(_ string, ix sessionstore.UserIndex) error {
		out.Stores++
		n, err := ix.DeleteAll(r.Context())
		out.Revoked += n
		return err
	})
	hijackedConns.CloseEvery()
	fields := []zap.Field{zap.String("user", "*"), zap.Int("revoked", out.Revoked), zap.Int("stores", out.Stores), zap.String("by", "admin_api"), zap.String("remote_ip", remoteIP(r))}
	if err != nil {
		a.logger.Error("revoking every session failed", append(fields, zap.Error(err))...)
		return apiError(http.StatusServiceUnavailable, "revoking every session (%d revoked before the error): %v", out.Revoked, err)
	}
	a.logger.Info("every session revoked", fields...)
	return writeAdminJSON(w, out)
}

// adminMFAReset is the path, under /session/, that removes a user's second
// factors.
const adminMFAReset = "mfa/reset"

// AdminMFAReset is the answer to POST /session/mfa/reset.
type AdminMFAReset struct {
	User string `json:"user"`
	// Reset is how many stores held second factors of the user, now
	// removed: 0 for a user who had none enrolled (not an error).
	Reset int `json:"reset"`
	// Stores is how many server-side stores were searched.
	Stores int `json:"stores"`
}

// resetMFA removes every second factor (TOTP, passkeys, recovery codes,
// the passkey handle's entry) of the user the body names, in every
// server-side store: for a user who lost their authenticator. Their
// sessions are left alone (revoke them with DELETE /session/users/<user>).
// The body must be JSON ({"user":"alice"}, sent as application/json: a
// browser cannot send that across origins without asking first), and the
// name one a user can have.
func (a *AdminSessions) resetMFA(w http.ResponseWriter, r *http.Request) error {
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return apiError(http.StatusUnsupportedMediaType, `resetting second factors needs a JSON body (Content-Type: application/json): {"user":"<user>"}`)
	}
	var body struct {
		User *string `json:"user"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.User == nil || dec.More() {
		return apiError(http.StatusBadRequest, `resetting second factors needs the body {"user":"<user>"} and nothing else`)
	}
	user := *body.User
	if err := identity.ValidUserRef(user); err != nil {
		return apiError(http.StatusBadRequest, "user %q: %v: no user can have this name", user, err)
	}
	out := AdminMFAReset{User: user}
	err := eachVault(func(_ string, v sessionstore.Vault) error {
		out.Stores++
		removed, err := mfa.Reset(r.Context(), v, user)
		if removed {
			out.Reset++
		}
		return err
	})
	fields := []zap.Field{zap.String("user", user), zap.Int("reset", out.Reset), zap.Int("stores", out.Stores), zap.String("by", "admin_api"), zap.String("remote_ip", remoteIP(r))}
	if out.Reset > 0 {
		processMetrics.mfaEvent("reset", "all")
	}
	if err != nil {
		a.logger.Error("resetting second factors failed", append(fields, zap.Error(err))...)
		return apiError(http.StatusServiceUnavailable, "resetting second factors (%d stores reset before the error): %v", out.Reset, err)
	}
	a.logger.Info("second factors reset", fields...)
	return writeAdminJSON(w, out)
}

// eachVault calls fn with every server-side store of this process that
// keeps second factors (a sessionstore.Vault), as eachIndex does.
func eachVault(fn func(kind string, v sessionstore.Vault) error) error {
	return eachPooled(func(kind string, s sessionstore.Store) error {
		if v, ok := s.(sessionstore.Vault); ok {
			return fn(kind, v)
		}
		return nil
	})
}

// eachIndex calls fn with every server-side store of this process that
// has an index by user, in a stable order, with the kind of store (the
// pool key's first word: memory, bolt, redis). It goes on past a store
// that fails, and returns the first error.
//
// The stores are those in the pool at the moment of the call. One that a
// config reload drops meanwhile is closed under fn's feet; fn then fails
// with the store's own error, which is the truth: it is gone.
func eachIndex(fn func(kind string, ix sessionstore.UserIndex) error) error {
	return eachPooled(func(kind string, s sessionstore.Store) error {
		if ix, ok := s.(sessionstore.UserIndex); ok {
			return fn(kind, ix)
		}
		return nil
	})
}

// eachPooled calls fn with every store in the pool, in a stable order (see
// eachIndex), going on past a store that fails.
func eachPooled(fn func(kind string, s sessionstore.Store) error) error {
	type entry struct {
		key string
		s   sessionstore.Store
	}
	var all []entry
	stores.Range(func(k, v any) bool {
		key, _ := k.(string)
		if p, ok := v.(pooledStore); ok {
			all = append(all, entry{key, p.Store})
		}
		return true
	})
	slices.SortFunc(all, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	var errs []error
	for _, e := range all {
		kind, _, _ := strings.Cut(e.key, ":")
		if err := fn(kind, e.s); err != nil {
			errs = append(errs, fmt.Errorf("%s store: %w", kind, err))
		}
	}
	return errors.Join(errs...)
}

func allow(r *http.Request, methods ...string) error {
	if slices.Contains(methods, r.Method) {
		return nil
	}
	return caddy.APIError{
		HTTPStatus: http.StatusMethodNotAllowed,
		Err:        fmt.Errorf("method %s not allowed; want %s", r.Method, strings.Join(methods, " or ")),
	}
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

// remoteIP is who asked the admin API (its listener is local, or guarded
// by Caddy's remote admin access control).
func remoteIP(r *http.Request) string {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return ip
	}
	return r.RemoteAddr
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminSessions)(nil)
	_ caddy.AdminRouter = (*AdminSessions)(nil)
)
