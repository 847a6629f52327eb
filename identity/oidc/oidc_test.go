package oidc

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/edgesession/edgesession/cookie"
	"go.uber.org/zap"
)

func testProvider(t *testing.T, cfg Provider) *Client {
	t.Helper()
	cfg.Issuer, cfg.ClientID = "https://idp.example", "app"
	if cfg.Name == "" {
		cfg.Name = "idp"
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &Client{Provider: cfg, logger: zap.NewNop()}
}

func TestOIDCIdentify(t *testing.T) {
	p := testProvider(t, Provider{Claims: []string{"groups", "preferred_username", "locale"}})
	tests := []struct {
		name   string
		claims map[string]any
		user   string // "" when refused
		groups []string
		data   map[string]string
		err    string // part of the refusal
	}{
		{"preferred_username", map[string]any{"sub": "1", "preferred_username": "alice", "email": "a@x.org", "email_verified": true, "name": "Alice", "groups": []any{"staff", "ops"}},
			"alice", []string{"staff", "ops"}, map[string]string{"email": "a@x.org", "name": "Alice", "groups": "staff,ops", "preferred-username": "alice"}, ""},
		{"no preferred_username: the verified email", map[string]any{"sub": "1", "email": "a@x.org", "email_verified": "true"}, "a@x.org", nil, map[string]string{"email": "a@x.org"}, ""},
		{"null preferred_username: the verified email", map[string]any{"sub": "1", "preferred_username": nil, "email": "a@x.org", "email_verified": true}, "a@x.org", nil, map[string]string{"email": "a@x.org"}, ""},
		{"empty preferred_username: the verified email", map[string]any{"sub": "1", "preferred_username": "", "email": "a@x.org", "email_verified": true}, "a@x.org", nil, map[string]string{"email": "a@x.org"}, ""},
		{"email_verified \"false\"", map[string]any{"sub": "1", "email": "a@x.org", "email_verified": "false"}, "", nil, nil, "nor a verified email"},
		{"email_verified \"True\" is not verified", map[string]any{"sub": "1", "email": "a@x.org", "email_verified": "True"}, "", nil, nil, "nor a verified email"},
		{"email_verified 1 is not verified", map[string]any{"sub": "1", "email": "a@x.org", "email_verified": 1.0}, "", nil, nil, "nor a verified email"},
		{"missing email_verified is unverified", map[string]any{"sub": "1", "email": "a@x.org"}, "", nil, nil, "nor a verified email"},
		// sub is no fallback: another user may pick it as username.
		{"sub is no fallback", map[string]any{"sub": "1"}, "", nil, nil, "nor a verified email"},
		// An unusable name is refused, not replaced by the next claim:
		// another user could pick that one as username.
		{"unusable name refused", map[string]any{"sub": "1", "preferred_username": "a:b", "email": "a@x.org", "email_verified": true}, "", nil, nil, "cannot be used here"},
		{"dot name refused", map[string]any{"sub": "1", "preferred_username": "..", "email": "a@x.org", "email_verified": true}, "", nil, nil, "cannot be used here"},
		{"slash name refused", map[string]any{"sub": "1", "preferred_username": "a/../b", "email": "a@x.org", "email_verified": true}, "", nil, nil, "cannot be used here"},
		{"percent name refused", map[string]any{"sub": "1", "preferred_username": "%2E%2E"}, "", nil, nil, "cannot be used here"},
		{"format character refused", map[string]any{"sub": "1", "preferred_username": "ali\u200bce"}, "", nil, nil, "format character"},
		{"noncharacter refused", map[string]any{"sub": "1", "preferred_username": "alice\uFFFE"}, "", nil, nil, "noncharacter"},
		{"name not text", map[string]any{"sub": "1", "preferred_username": 12.0, "email": "a@x.org", "email_verified": true}, "", nil, nil, "is not text"},
		{"another's email as username", map[string]any{"sub": "1", "preferred_username": "b@x.org", "email": "a@x.org", "email_verified": true}, "", nil, nil, "not your verified one"},
		{"an unverified email as username", map[string]any{"sub": "1", "preferred_username": "a@x.org", "email": "a@x.org"}, "", nil, nil, "not your verified one"},
		{"own verified email as username", map[string]any{"sub": "1", "preferred_username": "A@x.org", "email": "a@X.org", "email_verified": true},
			"A@x.org", nil, map[string]string{"email": "a@X.org", "preferred-username": "A@x.org"}, ""},
		{"bad groups skipped", map[string]any{"sub": "1", "preferred_username": "p", "groups": []any{"ok", "has space", "ok", 3, "a,b", "o\u202Ek", strings.Repeat("g", 253)}}, "p", []string{"ok"}, map[string]string{"groups": "ok", "preferred-username": "p"}, ""},
		{"one group as a string", map[string]any{"sub": "1", "preferred_username": "p", "groups": "staff"}, "p", []string{"staff"}, map[string]string{"groups": "staff", "preferred-username": "p"}, ""},
		{"other claim types", map[string]any{"sub": "1", "preferred_username": "p", "locale": map[string]any{"x": 1.0}}, "p", nil, map[string]string{"locale": `{"x":1}`, "preferred-username": "p"}, ""},
		{"control characters dropped", map[string]any{"sub": "1", "preferred_username": "p", "name": "A\nB"}, "p", nil, map[string]string{"name": "AB", "preferred-username": "p"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := p.identify(tt.claims)
			if tt.err != "" {
				if _, ok := err.(claimsError); !ok || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got user %q, error %v; want a refusal: %s", u.user, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.user != tt.user || strings.Join(u.groups, "|") != strings.Join(tt.groups, "|") {
				t.Errorf("got user %q groups %q; want %q %q", u.user, u.groups, tt.user, tt.groups)
			}
			if len(u.data) != len(tt.data) {
				t.Errorf("data %v; want %v", u.data, tt.data)
			}
			for k, v := range tt.data {
				if u.data[k] != v {
					t.Errorf("data %v; want %v", u.data, tt.data)
				}
			}
		})
	}
}

// TestOIDCIdentifyExplicitClaim: with username_claim set, the name comes
// from that claim alone; there is no fallback, so any value is allowed
// (an '@' included) and an email claim must be verified.
func TestOIDCIdentifyExplicitClaim(t *testing.T) {
	pu := testProvider(t, Provider{UsernameClaim: "preferred_username"})
	if u, err := pu.identify(map[string]any{"sub": "1", "email": "a@x.org", "email_verified": true}); err == nil {
		t.Errorf("username_claim preferred_username, none sent: named %q", u.user)
	}
	if u, err := pu.identify(map[string]any{"sub": "1", "preferred_username": "b@x.org", "email": "a@x.org", "email_verified": true}); err != nil || u.user != "b@x.org" {
		t.Errorf("username_claim preferred_username b@x.org: %q, %v", u.user, err)
	}
	sub := testProvider(t, Provider{UsernameClaim: "sub"})
	if u, err := sub.identify(map[string]any{"sub": "1", "preferred_username": "x"}); err != nil || u.user != "1" {
		t.Errorf("username_claim sub: %q, %v", u.user, err)
	}
	email := testProvider(t, Provider{UsernameClaim: "email"})
	if u, err := email.identify(map[string]any{"sub": "1", "email": "a@x.org"}); err == nil {
		t.Errorf("username_claim email, not verified: named %q", u.user)
	}
	if u, err := email.identify(map[string]any{"sub": "1", "email": "a@x.org", "email_verified": true}); err != nil || u.user != "a@x.org" {
		t.Errorf("username_claim email, verified: %q, %v", u.user, err)
	}
}

func TestOIDCAllowLists(t *testing.T) {
	p := testProvider(t, Provider{AllowDomains: []string{"Example.com", "kelvin.example"}, AllowEmails: []string{"Guest@other.org"}, AllowGroups: []string{"staff"}})
	tests := []struct {
		name string
		u    user
		want string // "" admitted, else part of the reason
	}{
		{"domain", user{user: "a", email: "a@EXAMPLE.com", emailVerified: true}, ""},
		{"email", user{user: "g", email: "guest@other.org", emailVerified: true}, ""},
		{"group", user{user: "s", groups: []string{"x", "staff"}}, ""},
		{"unverified domain", user{user: "m", email: "m@example.com"}, "is not verified"},
		{"unverified email", user{user: "m", email: "guest@other.org"}, "is not verified"},
		{"subdomain is another domain", user{user: "m", email: "m@evil.example.com", emailVerified: true}, "may not sign in here"},
		{"suffix is another domain", user{user: "m", email: "m@notexample.com", emailVerified: true}, "may not sign in here"},
		{"no email", user{user: "m"}, "did not tell us your email"},
		// Unicode case folding would admit these: the Kelvin sign folds
		// to k, the long s to s.
		{"Kelvin sign in the domain", user{user: "m", email: "m@\u212Aelvin.example", emailVerified: true}, "may not sign in here"},
		{"long s in the email", user{user: "m", email: "gue\u017Ft@other.org", emailVerified: true}, "may not sign in here"},
		{"Cyrillic a in the domain", user{user: "m", email: "m@ex\u0430mple.com", emailVerified: true}, "may not sign in here"},
		{"ASCII kelvin", user{user: "k", email: "k@KELVIN.example", emailVerified: true}, ""},
		{"wrong group", user{user: "m", groups: []string{"guests"}}, "none of the groups"},
		// One address: exactly one '@', something before it.
		{"two @", user{user: "m", email: "m@evil.example@example.com", emailVerified: true}, "may not sign in here"},
		{"no local part", user{user: "m", email: "@example.com", emailVerified: true}, "may not sign in here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.admit(tt.u)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("admit = %q; want %q", got, tt.want)
			}
		})
	}
	if open := testProvider(t, Provider{}); open.admit(user{user: "x"}) != "" {
		t.Error("a provider without allow-lists refused someone")
	}
}

func TestOIDCFingerprint(t *testing.T) {
	a := testProvider(t, Provider{})
	a.fingerprint = a.configFingerprint()
	b := testProvider(t, Provider{})
	b.ClientID = "other"
	c := testProvider(t, Provider{AllowGroups: []string{"staff"}})
	if a.configFingerprint() == b.configFingerprint() || a.configFingerprint() == c.configFingerprint() {
		t.Error("fingerprint ignores the client or the allow-lists")
	}
	same := testProvider(t, Provider{Label: "another label"})
	if same.configFingerprint() != a.fingerprint {
		t.Error("fingerprint depends on the label")
	}
}

// TestOIDCGroupNames: a provider's groups are <provider>:<group> unless
// the provider vouches for local names.
func TestOIDCGroupNames(t *testing.T) {
	q := testProvider(t, Provider{})
	if got := q.groupNames([]string{"ops", "staff"}); strings.Join(got, ",") != "idp:ops,idp:staff" {
		t.Errorf("names qualified: groups %q", got)
	}
	l := testProvider(t, Provider{Names: NamesLocal})
	if got := l.groupNames([]string{"ops"}); strings.Join(got, ",") != "ops" {
		t.Errorf("names local: groups %q", got)
	}
	if q.configFingerprint() == l.configFingerprint() {
		t.Error("fingerprint ignores names")
	}
	explicit := testProvider(t, Provider{UsernameClaim: "preferred_username"})
	if q.configFingerprint() == explicit.configFingerprint() {
		t.Error("fingerprint ignores whether the username claim falls back")
	}
}

func TestMergeUserInfo(t *testing.T) {
	claims := map[string]any{"sub": "1", "email": "a@x.org"}
	mergeUserInfo(claims, map[string]any{"sub": "2", "email": "b@x.org", "email_verified": true, "name": "A"})
	if claims["sub"] != "1" || claims["email"] != "a@x.org" || claims["email_verified"] != nil || claims["name"] != "A" {
		t.Errorf("merged %v", claims)
	}
	claims = map[string]any{"sub": "1"}
	mergeUserInfo(claims, map[string]any{"email": "b@x.org", "email_verified": true})
	if claims["email"] != "b@x.org" || claims["email_verified"] != true {
		t.Errorf("merged %v", claims)
	}
}

func TestOIDCProviderValidateJSON(t *testing.T) {
	for _, p := range []Provider{
		{Name: "a", ClientID: "x"},
		{Name: "a", Issuer: "https://idp.example"},
		{Issuer: "https://idp.example", ClientID: "x"},
		{Name: "a", Issuer: "ftp://idp.example", ClientID: "x"},
		{Name: "a", Issuer: "https://idp.example", ClientID: "x", Scopes: []string{"openid", "a b"}},
		{Name: "a", Issuer: "https://idp.example", ClientID: "x", PostLogoutRedirectURL: "/bye"},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
	p := Provider{Name: "a", Issuer: "https://idp.example", ClientID: "x", Scopes: []string{"email"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Scopes[0] != "openid" || p.UsernameClaim != "preferred_username" || p.GroupsClaim != "groups" || p.Label != "Sign in with a" {
		t.Errorf("defaults: %+v", p)
	}
}

func TestStateRedirect(t *testing.T) {
	long := "/" + strings.Repeat("p", maxStateRedirect)
	tests := []struct {
		in, want string
		cut      bool
	}{
		{"/reports?q=1", "/reports?q=1", false},
		{"/r?" + strings.Repeat("q", maxStateRedirect-3), "/r?" + strings.Repeat("q", maxStateRedirect-3), false},
		{"/r?" + strings.Repeat("q", maxStateRedirect), "/r", true},
		{"/r#" + strings.Repeat("f", maxStateRedirect), "/r", true},
		{long, "/home/", true},
		{long + "?q=1", "/home/", true},
	}
	for _, tt := range tests {
		got, cut := stateRedirect(tt.in, "/home/")
		if got != tt.want || cut != tt.cut {
			t.Errorf("stateRedirect(%.20q…) = %.20q, %v; want %.20q, %v", tt.in, got, cut, tt.want, tt.cut)
		}
		if len(got) > maxStateRedirect {
			t.Errorf("stateRedirect kept %d bytes", len(got))
		}
	}
}

func TestEmailVerified(t *testing.T) {
	for _, tt := range []struct {
		v               any
		verified, known bool
	}{
		{true, true, true}, {false, false, true}, {"true", true, true}, {"false", false, true},
		{"True", false, false}, {"TRUE", false, false}, {"1", false, false}, {1.0, false, false},
		{nil, false, false}, {[]any{true}, false, false}, {map[string]any{}, false, false},
	} {
		if verified, known := emailVerified(tt.v); verified != tt.verified || known != tt.known {
			t.Errorf("emailVerified(%#v) = %v, %v; want %v, %v", tt.v, verified, known, tt.verified, tt.known)
		}
	}
}

// TestDropOldOIDCLogins: starting a login with maxOIDCLogins in progress
// expires the oldest state cookies, those that do not decode first, and
// nothing else.
func TestDropOldOIDCLogins(t *testing.T) {
	codec, err := cookie.NewPurposeCodec("edgesession oidc state", "oidc-state", "", [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, stateLifetime)
	if err != nil {
		t.Fatal(err)
	}
	ps := &Set{cookie: cookie.Config{Name: "s", Path: "/"}, stateCodec: codec}
	site := Site{Endpoints: "/.session"}
	seal := func(started int64) string {
		b, _ := json.Marshal(loginState{Provider: "p", State: "x", Started: started})
		v, err := codec.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	r := httptest.NewRequest("GET", "/.session/login?provider=p", nil)
	r.Header.Add("Cookie", "s_oidc_000000000300="+seal(300)+"; s_oidc_000000000100="+seal(100)+"; s_oidc_logout=hint")
	r.Header.Add("Cookie", "s_oidc_0000000000ff=not-sealed; s_oidc_000000000400="+seal(400)+"; s_oidc_000000000200="+seal(200)+"; app=1; s_oidc_zz=1")
	w := httptest.NewRecorder()
	ps.dropOldLogins(w, r, site)
	var expired []string
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 || c.Path != "/.session/" {
			t.Errorf("Set-Cookie %v: want an expiry at /.session/", c)
		}
		expired = append(expired, c.Name)
	}
	// Five logins in progress, one about to start: the two oldest go.
	if want := []string{"s_oidc_0000000000ff", "s_oidc_000000000100"}; !slices.Equal(expired, want) {
		t.Errorf("expired %v; want %v", expired, want)
	}

	// Below the bound, nothing is expired (nor decoded).
	r = httptest.NewRequest("GET", "/.session/login?provider=p", nil)
	r.Header.Add("Cookie", "s_oidc_000000000300=x; s_oidc_000000000100=y; s_oidc_000000000200=z")
	w = httptest.NewRecorder()
	ps.dropOldLogins(w, r, site)
	if got := w.Result().Cookies(); len(got) != 0 {
		t.Errorf("with %d logins in progress, expired %v", 3, got)
	}
}

// TestLoginIDHashes: the sub and sid hashes are read from the end of a
// session's fingerprint under any configuration fingerprint, so that a
// back-channel logout finds the sessions a provider issued before its
// configuration changed.
func TestLoginIDHashes(t *testing.T) {
	for _, tt := range []struct {
		fp, sub, sid string
		ok           bool
	}{
		{"oidc2:0a1b:s1:d1", "s1", "d1", true},
		{"oidc1:ffff:s1:", "s1", "", true},
		{"oidc2:0a1b::d1", "", "d1", true},
		{"oidc2:0a1b", "", "", false},
		{"oidc2", "", "", false},
		{"", "", "", false},
	} {
		sub, sid, ok := loginIDHashes(tt.fp)
		if sub != tt.sub || sid != tt.sid || ok != tt.ok {
			t.Errorf("loginIDHashes(%q) = %q, %q, %v; want %q, %q, %v", tt.fp, sub, sid, ok, tt.sub, tt.sid, tt.ok)
		}
	}
}
