package tests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// The OpenID Provider of these tests is zitadel/oidc's example provider
// (a certified OIDC library), run in the test process on 127.0.0.1, with
// its example storage. Around it, only what the example lacks: users of
// our own (one with an unverified email), a groups claim, a client that
// puts the user's claims in the ID token, and a hook on the token
// endpoint's answer, to hand Caddy ID tokens that a provider or an
// attacker could produce (signed with the provider's real key unless the
// test says otherwise).

// opUser is a user of the test provider.
type opUser struct {
	id, password, email string
	verified            bool
	groups              []string
}

var opUsers = []opUser{
	{"alice", "alice-pw", "alice@example.com", true, []string{"staff", "ops"}},
	{"mallory", "mallory-pw", "mallory@example.com", false, nil},
	{"bob", "bob-pw", "bob@other.org", true, []string{"guests"}},
	{"carol", "carol-pw", "carol@other.org", true, []string{"staff"}},
	// The domain is written with the Kelvin sign (U+212A), which Unicode
	// case folding takes for a k.
	{"kelvin", "kelvin-pw", "k@\u212Aelvin.example", true, nil},
}

// opUserStore implements the example storage's UserStore.
type opUserStore map[string]*storage.User

func (s opUserStore) GetUserByID(id string) *storage.User { return s[id] }
func (s opUserStore) GetUserByUsername(name string) *storage.User {
	return s[name] // the ID is the user name
}
func (opUserStore) ExampleClientID() string { return storage.ServiceUserID }

// opStorage is the example storage with a groups claim, and clients that
// want the user's claims in the ID token.
type opStorage struct {
	*storage.Storage
	mu           sync.Mutex
	groups       map[string][]string // guarded by mu
	claimsInIDTk map[string]bool
	postLogout   []string // every client's post_logout_redirect_uris
}

func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if g := s.groupsOf(req.GetSubject()); g != nil && len(scopes) > 0 {
		ui.AppendClaims("groups", g)
	}
	return nil
}

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	if g := s.groupsOf(subject); g != nil {
		ui.AppendClaims("groups", g)
	}
	return nil
}

func (s *opStorage) groupsOf(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[user]
}

// SetGroups changes the groups the provider says user is in.
func (o *OP) SetGroups(user string, groups ...string) {
	o.storage.mu.Lock()
	defer o.storage.mu.Unlock()
	o.storage.groups[user] = groups
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return opClientOf{Client: c, claimsInIDToken: s.claimsInIDTk[id], postLogout: s.postLogout}, nil
}

// opClientOf is a client of the example with what the example cannot
// set: claims in the ID token, post-logout redirect URIs.
type opClientOf struct {
	op.Client
	claimsInIDToken bool
	postLogout      []string
}

func (c opClientOf) IDTokenUserinfoClaimsAssertion() bool { return c.claimsInIDToken }
func (c opClientOf) PostLogoutRedirectURIs() []string     { return c.postLogout }

// OP is a running test provider.
type OP struct {
	Issuer  string
	storage *opStorage
	srv     *http.Server

	mu       sync.Mutex
	tamper   func(t testing.TB, idToken string) string
	userinfo func(claims map[string]any)

	// KeyFetches counts the requests for the provider's keys.
	KeyFetches atomic.Int64
}

// Client IDs and secret of the test provider.
const (
	opClient        = "edge"    // claims from userinfo
	opClientIDToken = "edge-id" // claims in the ID token
	opOtherClient   = "other"   // another application of the provider
	opSecret        = "edge-client-secret"
)

// StartOP starts the test provider on 127.0.0.1:port (a free one if 0),
// for Caddy sites at each of sites (their callback URIs are registered
// for providers "test" and "idclaims").
func StartOP(t testing.TB, port int, sites ...string) *OP {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	o := newOP(t, port, sites...)
	go o.srv.Serve(l)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// newOP makes the provider without serving it yet.
func newOP(t testing.TB, port int, sites ...string) *OP {
	users := opUserStore{}
	groups := map[string][]string{}
	for _, u := range opUsers {
		users[u.id] = &storage.User{ID: u.id, Username: u.id, Password: u.password, FirstName: strings.ToUpper(u.id[:1]) + u.id[1:], LastName: "Example",
			Email: u.email, EmailVerified: u.verified, PreferredLanguage: language.English}
		groups[u.id] = u.groups
	}
	var edge, edgeID, postLogout []string
	for _, s := range sites {
		postLogout = append(postLogout, s+"/")
		edge = append(edge, s+"/.session/oidc/test/callback")
		edgeID = append(edgeID, s+"/.session/oidc/idclaims/callback")
	}
	clients := map[string]*storage.Client{}
	for _, c := range []*storage.Client{
		storage.WebClient(opClient, opSecret, edge...),
		storage.WebClient(opClientIDToken, opSecret, edgeID...),
		storage.WebClient(opOtherClient, opSecret, edge...),
	} {
		clients[c.GetID()] = c
	}
	o := &OP{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port)}
	o.storage = &opStorage{Storage: storage.NewStorageWithClients(users, clients), groups: groups, claimsInIDTk: map[string]bool{opClientIDToken: true}, postLogout: postLogout}
	// The example logs every request through slog's default logger, which
	// it replaces with the one given: one that keeps quiet.
	router := exampleop.SetupServer(o.Issuer, o.storage, slog.New(slog.DiscardHandler), false)
	o.srv = &http.Server{Handler: o.hook(t, router), ReadHeaderTimeout: 10 * time.Second}
	return o
}

// Tamper makes the token endpoint hand out f(idToken) instead of each ID
// token it issues, until the test ends.
func (o *OP) Tamper(t testing.TB, f func(t testing.TB, idToken string) string) {
	o.mu.Lock()
	o.tamper = f
	o.mu.Unlock()
	t.Cleanup(func() { o.mu.Lock(); o.tamper = nil; o.mu.Unlock() })
}

// TamperUserinfo makes the userinfo endpoint answer with its claims
// changed by f, until the test ends: what a provider that writes a claim
// its own way sends.
func (o *OP) TamperUserinfo(t testing.TB, f func(claims map[string]any)) {
	o.mu.Lock()
	o.userinfo = f
	o.mu.Unlock()
	t.Cleanup(func() { o.mu.Lock(); o.userinfo = nil; o.mu.Unlock() })
}

func (o *OP) hook(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			o.KeyFetches.Add(1)
		}
		o.mu.Lock()
		f, ui := o.tamper, o.userinfo
		o.mu.Unlock()
		if ui != nil && r.URL.Path == "/userinfo" {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var claims map[string]any
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &claims) != nil {
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			}
			ui(claims)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(claims)
			return
		}
		if f == nil || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["id_token"] == nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		body["id_token"] = f(t, body["id_token"].(string))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	})
}

// Resign returns idToken with its claims changed by change and signed
// again: with the provider's own key when key is nil, else with key
// under the provider's key ID.
func (o *OP) Resign(t testing.TB, idToken string, key *rsa.PrivateKey, change func(claims map[string]any)) string {
	t.Helper()
	parts := strings.Split(idToken, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	change(claims)
	return o.sign(t, key, "JWT", claims)
}

// Sign signs claims with the provider's key (or key, under the
// provider's key ID), as a logout token: typ logout+jwt.
func (o *OP) Sign(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	return o.sign(t, key, "logout+jwt", claims)
}

// sign signs claims as a JWT of type typ with the provider's key (or key,
// under the provider's key ID).
func (o *OP) sign(t testing.TB, key *rsa.PrivateKey, typ jose.ContentType, claims map[string]any) string {
	t.Helper()
	sk, err := o.storage.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signWith := sk.Key()
	if key != nil {
		signWith = key
	}
	return signJWT(t, jose.SigningKey{Algorithm: sk.SignatureAlgorithm(), Key: signWith},
		(&jose.SignerOptions{}).WithType(typ).WithHeader("kid", sk.ID()), claims)
}

// signJWT signs claims as a compact JWT with key, its header as opts says
// (type, key ID, an embedded JWK).
func signJWT(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// otherKey is an RSA key the provider never published.
var otherKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// StartOIDCLogin starts a login with provider at Caddy and signs in at
// the provider as user, and returns the callback URL the provider sent
// the browser to, not yet visited.
func StartOIDCLogin(t testing.TB, c *Client, provider, redirect, user, password string) string {
	t.Helper()
	path := "/.session/login?provider=" + provider
	if redirect != "" {
		path += "&redirect=" + url.QueryEscape(redirect)
	}
	r := c.Get(path, "Accept: text/html")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("starting a login with %s: %d %s", provider, r.StatusCode, r.Body)
	}
	next := r.Header.Get("Location")
	for range 10 {
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(next, c.Base+"/") {
			return next
		}
		var resp *http.Response
		if u.Path == "/login/username" {
			// The provider's login form: post it as a person would.
			resp, err = c.Client.PostForm(u.Scheme+"://"+u.Host+"/login/username", url.Values{
				"id": {u.Query().Get("authRequestID")}, "username": {user}, "password": {password}})
		} else {
			resp, err = c.Client.Get(next)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			t.Fatalf("%s at the provider: %d %s", next, resp.StatusCode, body)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		next = loc.String()
	}
	t.Fatalf("no callback after 10 redirects, at %s", next)
	return ""
}

// FinishOIDCLogin visits the callback URL.
func FinishOIDCLogin(t testing.TB, c *Client, callback string, headers ...string) *Response {
	t.Helper()
	return c.Get(strings.TrimPrefix(callback, c.Base), append([]string{"Accept: text/html"}, headers...)...)
}

// OIDCLogin logs in through provider as user and fails the test if that
// does not end in a session.
func OIDCLogin(t testing.TB, c *Client, provider, user, password string) {
	t.Helper()
	cb := StartOIDCLogin(t, c, provider, "", user, password)
	if r := FinishOIDCLogin(t, c, cb); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback as %s: %d %s", user, r.StatusCode, r.Body)
	}
}

// WithSitePort makes Caddy's site listen on port (chosen beforehand, so
// that the provider knows the redirect URI).
func WithSitePort(port int) Option {
	return func(c *Caddy) {
		c.SitePort = port
		c.Site = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
}
