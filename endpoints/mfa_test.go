package endpoints

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
)

var testSecrets = [][]byte{[]byte(strings.Repeat("k", 32))}

// mfaServer is a server over a memory store with alice's, bob's and
// carol's password "secret", second factors on; carol must have one.
func mfaServer(t *testing.T) (*Server, *sessionstore.Memory) {
	t.Helper()
	store := sessionstore.NewMemory(0)
	t.Cleanup(func() { store.Close() })
	cfg := cookie.Config{Name: "caddy_session", Path: "/"}
	codec, err := cookie.NewCodec(cfg.Name, "", testSecrets, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var us []password.User
	for _, name := range []string{"alice", "bob", "carol"} {
		us = append(us, password.User{Name: name, Hash: string(hash)})
	}
	users, err := password.Open(us, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sessions := session.New(session.Config{
		Store: store, Codec: codec, Cookie: cfg, Lifetime: time.Hour,
		Sources: map[string]identity.Source{identity.Password: users, identity.Upstream: identity.UpstreamSource{}},
	})
	ps, err := pages.Load("")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := mfa.NewSealer(testSecrets, "")
	if err != nil {
		t.Fatal(err)
	}
	m := &MFA{Store: &mfa.Store{Vault: store}, Claims: store, Policy: &mfa.Policy{Users: []string{"carol"}}}
	m.Service = &mfa.Service{Store: m.Store, Claims: store, Sealer: sealer, Issuer: "Test"}
	if err := m.SetSecrets(cfg.Name, "", testSecrets); err != nil {
		t.Fatal(err)
	}
	ix, _ := sessionstore.Store(store).(sessionstore.UserIndex)
	return New(Config{
		Prefix:        "/.session",
		Cookie:        cfg,
		Sessions:      sessions,
		Users:         users,
		PasswordUsers: true,
		Throttle:      throttle.NewPrivate(throttle.Limit{Failures: 5, Window: time.Minute}, nil, 100, zap.NewNop()),
		ThrottleScope: "test",
		Pages:         ps,
		UserIndex:     ix,
		HTTPBasic:     true,
		MFA:           m,
	}), store
}

// jar is one browser's cookies.
type jar map[string]string

func (j jar) do(s *Server, r *http.Request) *httptest.ResponseRecorder {
	for name, value := range j {
		r.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	w := serve(s, r)
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j, c.Name)
		} else {
			j[c.Name] = c.Value
		}
	}
	return w
}

func jsonPost(path, body string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

func formPost(path string, v url.Values) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Accept", "text/html")
	return r
}

// enrol gives user a TOTP and returns its secret; the code that enrolled
// it is of the step before now, so that now's is free for a login.
func enrol(t *testing.T, s *Server, user string) string {
	t.Helper()
	key, err := s.c.MFA.Service.NewTOTP(user)
	if err != nil {
		t.Fatal(err)
	}
	// Enrolled as of now, with the code of the step before (so that a
	// step boundary passing meanwhile cannot put it out of the window).
	now := time.Now()
	code, _ := totp.GenerateCode(key.Secret(), now.Add(-30*time.Second))
	s.c.MFA.Service.Now = func() time.Time { return now }
	defer func() { s.c.MFA.Service.Now = nil }()
	if err := s.c.MFA.Service.EnrolTOTP(context.Background(), user, key.Secret(), code); err != nil {
		t.Fatal(err)
	}
	return key.Secret()
}

func nowCode(t *testing.T, secret string) string {
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// passwordLogin logs user in with JSON and returns the answer.
func passwordLogin(s *Server, j jar, user string) *httptest.ResponseRecorder {
	return j.do(s, jsonPost("/.session/login", `{"username":"`+user+`","password":"secret","redirect":"/wiki/page?x=1"}`))
}

func sessionRecord(t *testing.T, s *Server, store *sessionstore.Memory, j jar) (sessionstore.Record, bool) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "caddy_session", Value: j["caddy_session"]})
	sess, err := s.c.Sessions.Load(httptest.NewRecorder(), r)
	if err != nil || sess == nil {
		return sessionstore.Record{}, false
	}
	return sess.Rec, sess.Rec.User != ""
}

// TestMFALoginJSON: a user with a TOTP gets no session from the password
// alone but a pending cookie; the right code logs in with amr pwd otp mfa;
// the same code again is refused.
func TestMFALoginJSON(t *testing.T) {
	s, store := mfaServer(t)
	secret := enrol(t, s, "alice")
	j := jar{}
	w := passwordLogin(s, j, "alice")
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"next":"/.session/mfa?redirect=%2Fwiki%2Fpage%3Fx%3D1"`) {
		t.Fatalf("password login: %d %s", w.Code, w.Body)
	}
	if _, ok := j["caddy_session"]; ok {
		t.Fatal("a session cookie before the second factor")
	}
	sc := w.Header().Get("Set-Cookie")
	for _, want := range []string{"caddy_session~mfa=", "Path=/.session", "Max-Age=300", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("pending cookie %q lacks %q", sc, want)
		}
	}
	code := nowCode(t, secret)
	if w = j.do(s, jsonPost("/.session/mfa", `{"code":"000000"}`)); w.Code != 401 || !strings.Contains(w.Body.String(), "wrong code") {
		t.Fatalf("wrong code: %d %s", w.Code, w.Body)
	}
	if code == "000000" {
		t.Skip("the right code is the wrong one this time")
	}
	w = j.do(s, jsonPost("/.session/mfa", `{"code":"`+code+`"}`))
	if w.Code != 200 || w.Body.String() != `{"redirect":"/wiki/page?x=1","user":"alice"}`+"\n" {
		t.Fatalf("right code: %d %s", w.Code, w.Body)
	}
	if _, ok := j["caddy_session~mfa"]; ok {
		t.Error("pending cookie kept after the login")
	}
	rec, ok := sessionRecord(t, s, store, j)
	if !ok || rec.User != "alice" || strings.Join(rec.Amr, " ") != "pwd otp mfa" {
		t.Fatalf("session: %+v", rec)
	}

	// Replayed: another login, the same code.
	j2 := jar{}
	passwordLogin(s, j2, "alice")
	if w = j2.do(s, jsonPost("/.session/mfa", `{"code":"`+code+`"}`)); w.Code != 401 || !strings.Contains(w.Body.String(), "code already used") {
		t.Fatalf("replayed code: %d %s", w.Code, w.Body)
	}
	if _, ok := j2["caddy_session"]; ok {
		t.Fatal("a replayed code logged in")
	}
}

// TestMFAStepRefusals: every way to reach the second step without a
// password just proved in this browser, or with a wrong body, is refused.
func TestMFAStepRefusals(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	enrol(t, s, "bob")

	// Cross-origin.
	j := jar{}
	passwordLogin(s, j, "alice")
	r := jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := j.do(s, r); w.Code != 403 {
		t.Errorf("cross-origin: %d %s", w.Code, w.Body)
	}
	// Malformed, oversized, wrong type: 400, 413, 415 (the code not spent).
	for body, want := range map[string]int{`{"code":`: 400, `["x"]`: 400, `{"code":1}`: 400, "\xff": 400, `{"code":"` + strings.Repeat("1", 20000) + `"}`: 413, `{"code":"` + strings.Repeat("1", 100) + `"}`: 400} {
		if w := j.do(s, jsonPost("/.session/mfa", body)); w.Code != want {
			t.Errorf("body %.20q: %d %s, want %d", body, w.Code, w.Body, want)
		}
	}
	r = jsonPost("/.session/mfa", `{}`)
	r.Header.Set("Content-Type", "text/plain")
	if w := j.do(s, r); w.Code != 415 {
		t.Errorf("text/plain: %d", w.Code)
	}

	// No pending cookie, no session.
	if w := (jar{}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 {
		t.Errorf("no pending cookie: %d %s", w.Code, w.Body)
	}
	// Forged: a value of our own, and the session cookie's value under the pending name.
	for _, v := range []string{"forged", j["caddy_session~mfa"][:len(j["caddy_session~mfa"])-4] + "AAAA"} {
		if w := (jar{"caddy_session~mfa": v}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 || !strings.Contains(w.Body.String(), "login required") {
			t.Errorf("forged pending cookie: %d %s", w.Code, w.Body)
		}
	}
	// Expired: sealed right, issued six minutes ago.
	raw, _ := json.Marshal(pending{User: "alice", Fingerprint: fingerprint(t, s, "alice"), Amr: []string{"pwd"}, Redirect: "/", Site: "example.com", Issued: time.Now().Add(-6 * time.Minute).Unix()})
	old, _ := s.c.MFA.pendingCodec.Encode(raw)
	if w := (jar{"caddy_session~mfa": old}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 || !strings.Contains(w.Body.String(), "login required") {
		t.Errorf("expired pending cookie: %d %s", w.Code, w.Body)
	}
	// Sealed for the session cookie's purpose: does not open as a pending one.
	sessCodec, _ := cookie.NewCodec("caddy_session~mfa", "", testSecrets, time.Hour)
	raw, _ = json.Marshal(pending{User: "alice", Fingerprint: fingerprint(t, s, "alice"), Amr: []string{"pwd"}, Redirect: "/", Site: "example.com", Issued: time.Now().Unix()})
	other, _ := sessCodec.Encode(raw)
	if w := (jar{"caddy_session~mfa": other}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 {
		t.Errorf("pending cookie of another purpose: %d %s", w.Code, w.Body)
	}
}

// TestMFAPendingOfOneSessionOfAnother: bob is signed in; alice's password
// is typed in the same browser. The step is alice's: bob's code does not
// prove it, bob's session stays as it was (not stepped up), and alice's
// code logs alice in in place of bob.
func TestMFAPendingOfOneSessionOfAnother(t *testing.T) {
	s, store := mfaServer(t)
	aliceSecret := enrol(t, s, "alice")
	j := jar{}
	// bob, without a factor, signs in.
	if w := j.do(s, jsonPost("/.session/login", `{"username":"bob","password":"secret"}`)); w.Code != 200 {
		t.Fatalf("bob: %d %s", w.Code, w.Body)
	}
	bobSecret := enrol(t, s, "bob")
	passwordLogin(s, j, "alice")
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, bobSecret)+`"}`)); w.Code != 401 {
		t.Fatalf("bob's code for alice's step: %d %s", w.Code, w.Body)
	}
	if rec, ok := sessionRecord(t, s, store, j); !ok || rec.User != "bob" || identity.HasMFA(rec.Amr) {
		t.Fatalf("bob's session after a refused code: %+v", rec)
	}
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, aliceSecret)+`"}`)); w.Code != 200 {
		t.Fatalf("alice's code: %d %s", w.Code, w.Body)
	}
	if rec, ok := sessionRecord(t, s, store, j); !ok || rec.User != "alice" || !identity.HasMFA(rec.Amr) {
		t.Fatalf("after alice's code: %+v", rec)
	}
}

func fingerprint(t *testing.T, s *Server, user string) string {
	fp, ok := s.c.Users.Fingerprint(user)
	if !ok {
		t.Fatal("no fingerprint")
	}
	return fp
}

// TestMFAPasswordChangedMeanwhile: a pending cookie whose fingerprint is
// not the user's now (the password changed) is refused.
func TestMFAPasswordChangedMeanwhile(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	raw, _ := json.Marshal(pending{User: "alice", Fingerprint: "an-old-one", Amr: []string{"pwd"}, Redirect: "/", Site: "example.com", Issued: time.Now().Unix()})
	v, _ := s.c.MFA.pendingCodec.Encode(raw)
	if w := (jar{"caddy_session~mfa": v}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 {
		t.Fatalf("stale fingerprint: %d %s", w.Code, w.Body)
	}
	// And another site's.
	raw, _ = json.Marshal(pending{User: "alice", Fingerprint: fingerprint(t, s, "alice"), Amr: []string{"pwd"}, Redirect: "/", Site: "evil.example", Issued: time.Now().Unix()})
	v, _ = s.c.MFA.pendingCodec.Encode(raw)
	if w := (jar{"caddy_session~mfa": v}).do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 401 {
		t.Fatalf("another site's pending cookie: %d %s", w.Code, w.Body)
	}
}

// TestMFACodesThrottled: wrong codes are throttled per user and address,
// 429 as a login.
func TestMFACodesThrottled(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	j := jar{}
	passwordLogin(s, j, "alice")
	for i := range 5 {
		if w := j.do(s, jsonPost("/.session/mfa", `{"code":"12345x"}`)); w.Code != 401 {
			t.Fatalf("wrong code %d: %d", i, w.Code)
		}
	}
	w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after 5 wrong codes: %d %s", w.Code, w.Body)
	}
	// The password throttle is another scope: the password still works.
	if w := passwordLogin(s, jar{}, "alice"); w.Code != 401 || !strings.Contains(w.Body.String(), "second factor required") {
		t.Fatalf("password after wrong codes: %d %s", w.Code, w.Body)
	}
}

// TestMFARecoveryCodeOnce: a recovery code logs in once, in any case and
// without its dash.
func TestMFARecoveryCodeOnce(t *testing.T) {
	s, _ := mfaServer(t)
	enrol(t, s, "alice")
	codes, err := s.c.MFA.Service.NewRecoveryCodes(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	j := jar{}
	passwordLogin(s, j, "alice")
	typed := strings.ToLower(strings.ReplaceAll(codes[3], "-", ""))
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+typed+`","kind":"recovery"}`)); w.Code != 200 {
		t.Fatalf("recovery code: %d %s", w.Code, w.Body)
	}
	j = jar{}
	passwordLogin(s, j, "alice")
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+codes[3]+`"}`)); w.Code != 401 {
		t.Fatalf("recovery code again: %d %s", w.Code, w.Body)
	}
}

// TestMFABasicRefused: HTTP Basic cannot carry a second factor: a user
// who has one, or must, gets 401.
func TestMFABasicRefused(t *testing.T) {
	s, _ := mfaServer(t)
	enrol(t, s, "alice")
	for user, want := range map[string]bool{"alice": false, "carol": false, "bob": true} {
		r := httptest.NewRequest("GET", "/dav/", nil)
		r.SetBasicAuth(user, "secret")
		w := httptest.NewRecorder()
		sess, _ := s.BasicLogin(w, r, s.TakeBasic(r))
		if (sess != nil) != want || !want && w.Code != 401 {
			t.Errorf("%s: session %v, %d %s", user, sess != nil, w.Code, w.Body)
		}
	}
}

var (
	sealedField = regexp.MustCompile(`name="sealed" value="([^"]+)"`)
	secretText  = regexp.MustCompile(`id="secret"[^>]*>([A-Z2-7 ]+)<`)
)

// TestMFAEnrolFromSession: the sessions page's enrolment asks for the
// password again, shows a sealed secret bound to the user, and the first
// code turns TOTP on, gives recovery codes and steps the session up.
func TestMFAEnrolFromSession(t *testing.T) {
	s, store := mfaServer(t)
	alice, bob := jar{}, jar{}
	for user, j := range map[string]jar{"alice": alice, "bob": bob} {
		if w := j.do(s, jsonPost("/.session/login", `{"username":"`+user+`","password":"secret"}`)); w.Code != 200 {
			t.Fatalf("%s: %d", user, w.Code)
		}
	}
	r := httptest.NewRequest("GET", "/.session/mfa/totp", nil)
	r.Header.Set("Accept", "text/html")
	if w := alice.do(s, r); w.Code != 200 || !strings.Contains(w.Body.String(), `type="password"`) || strings.Contains(w.Body.String(), "sealed") {
		t.Fatalf("enrolment asks the password first: %d %s", w.Code, w.Body)
	}
	if w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"password": {"wrong"}})); w.Code != 401 || strings.Contains(w.Body.String(), "sealed") {
		t.Fatalf("wrong password: %d", w.Code)
	}
	// Cross-origin with the right password: refused.
	r = formPost("/.session/mfa/totp", url.Values{"password": {"secret"}})
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := alice.do(s, r); w.Code != 403 {
		t.Fatalf("cross-origin enrolment: %d", w.Code)
	}
	page := func(j jar) (sealed, secret string) {
		w := j.do(s, formPost("/.session/mfa/totp", url.Values{"password": {"secret"}}))
		m, k := sealedField.FindStringSubmatch(w.Body.String()), secretText.FindStringSubmatch(w.Body.String())
		if w.Code != 200 || m == nil || k == nil || !strings.Contains(w.Body.String(), "<svg") {
			t.Fatalf("enrolment page: %d %s", w.Code, w.Body)
		}
		return html.UnescapeString(m[1]), strings.ReplaceAll(k[1], " ", "")
	}
	aliceSealed, aliceSecret := page(alice)
	bobSealed, bobSecret := page(bob)
	if strings.Contains(aliceSealed, aliceSecret) {
		t.Fatal("the secret in plain in the form")
	}
	// bob's sealed secret in alice's session: refused.
	if w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"sealed": {bobSealed}, "code": {nowCode(t, bobSecret)}})); w.Code != 400 {
		t.Fatalf("another user's sealed secret: %d", w.Code)
	}
	if w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"sealed": {aliceSealed}, "code": {"000000"}})); w.Code != 401 || !strings.Contains(w.Body.String(), aliceSealed[:20]) {
		t.Fatalf("wrong first code: %d", w.Code)
	}
	w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"sealed": {aliceSealed}, "code": {nowCode(t, aliceSecret)}}))
	if w.Code != 200 || strings.Count(w.Body.String(), "<li><code>") != 10 {
		t.Fatalf("first code: %d %s", w.Code, w.Body)
	}
	creds, _ := s.c.MFA.Store.Load(context.Background(), "alice")
	if creds == nil || creds.TOTP == nil || len(creds.Recovery) != 10 {
		t.Fatalf("credentials: %+v", creds)
	}
	if rec, ok := sessionRecord(t, s, store, alice); !ok || strings.Join(rec.Amr, " ") != "pwd otp mfa" {
		t.Fatalf("session after enrolment: %+v", rec)
	}
	// bob's enrolment form is still his, and the sessions page shows alice's.
	r = httptest.NewRequest("GET", "/.session/sessions", nil)
	r.Header.Set("Accept", "text/html")
	if w := alice.do(s, r); !strings.Contains(w.Body.String(), "Second factors") || !strings.Contains(w.Body.String(), "10 unused codes left") {
		t.Fatalf("sessions page: %s", w.Body)
	}
}

// TestMFAChangesNeedTheFactor: a session without a second factor (from
// before the user enrolled one) cannot remove it or make new codes, even
// with the password: it is sent to prove the factor first.
func TestMFAChangesNeedTheFactor(t *testing.T) {
	s, _ := mfaServer(t)
	j := jar{}
	j.do(s, jsonPost("/.session/login", `{"username":"alice","password":"secret"}`))
	enrol(t, s, "alice")
	for _, path := range []string{"/.session/mfa/totp/remove", "/.session/mfa/recovery", "/.session/mfa/totp"} {
		w := j.do(s, formPost(path, url.Values{"password": {"secret"}}))
		if w.Code != 303 || !strings.HasPrefix(w.Header().Get("Location"), "/.session/mfa?") {
			t.Errorf("%s from a password-only session: %d %v", path, w.Code, w.Header())
		}
	}
	creds, _ := s.c.MFA.Store.Load(context.Background(), "alice")
	if creds.TOTP == nil {
		t.Fatal("removed")
	}
	// A pending login cannot enrol over an existing factor either.
	p := jar{}
	passwordLogin(s, p, "alice")
	r := httptest.NewRequest("GET", "/.session/mfa/totp", nil)
	r.Header.Set("Accept", "text/html")
	if w := p.do(s, r); w.Code != 303 || !strings.HasPrefix(w.Header().Get("Location"), "/.session/mfa?") {
		t.Fatalf("enrolment during a pending login of an enrolled user: %d %v", w.Code, w.Header())
	}
}

// TestMFARequiredSendsToEnrolment: carol must have a factor and has none:
// her login goes to the second step, which sends her to enrol without
// asking the password again; enrolling logs her in.
func TestMFARequiredSendsToEnrolment(t *testing.T) {
	s, store := mfaServer(t)
	j := jar{}
	w := j.do(s, formPost("/.session/login", url.Values{"username": {"carol"}, "password": {"secret"}, "redirect": {"/app"}}))
	if w.Code != 303 || w.Header().Get("Location") != "/.session/mfa?redirect=%2Fapp" {
		t.Fatalf("login: %d %v", w.Code, w.Header())
	}
	r := httptest.NewRequest("GET", "/.session/mfa?redirect=%2Fapp", nil)
	r.Header.Set("Accept", "text/html")
	if w = j.do(s, r); w.Code != 303 || w.Header().Get("Location") != "/.session/mfa/totp?redirect=%2Fapp" {
		t.Fatalf("second step: %d %v", w.Code, w.Header())
	}
	r = httptest.NewRequest("GET", "/.session/mfa/totp?redirect=%2Fapp", nil)
	r.Header.Set("Accept", "text/html")
	w = j.do(s, r)
	m, k := sealedField.FindStringSubmatch(w.Body.String()), secretText.FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil || k == nil {
		t.Fatalf("enrolment: %d %s", w.Code, w.Body)
	}
	w = j.do(s, formPost("/.session/mfa/totp", url.Values{"sealed": {html.UnescapeString(m[1])}, "code": {nowCode(t, strings.ReplaceAll(k[1], " ", ""))}}))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `href="/app"`) {
		t.Fatalf("first code: %d %s", w.Code, w.Body)
	}
	if rec, ok := sessionRecord(t, s, store, j); !ok || rec.User != "carol" || !identity.HasMFA(rec.Amr) {
		t.Fatalf("session: %+v", rec)
	}
}

// TestMFAStepUpFromSession: a password-only session proves a factor at
// <prefix>/mfa: a new session ID with amr pwd otp mfa, the old one gone,
// back to the redirect; once proved, the page only sends it on.
func TestMFAStepUpFromSession(t *testing.T) {
	s, store := mfaServer(t)
	j := jar{}
	j.do(s, jsonPost("/.session/login", `{"username":"alice","password":"secret"}`))
	secret := enrol(t, s, "alice")
	before := j["caddy_session"]
	r := httptest.NewRequest("GET", "/.session/mfa?redirect=%2Fadmin", nil)
	r.Header.Set("Accept", "text/html")
	if w := j.do(s, r); w.Code != 200 || !strings.Contains(w.Body.String(), "Signed in as <strong>alice</strong>") {
		t.Fatalf("step-up page: %d %s", w.Code, w.Body)
	}
	w := j.do(s, formPost("/.session/mfa", url.Values{"code": {nowCode(t, secret)}, "redirect": {"/admin"}}))
	if w.Code != 303 || w.Header().Get("Location") != "/admin" {
		t.Fatalf("step-up: %d %v", w.Code, w.Header())
	}
	if j["caddy_session"] == before {
		t.Fatal("the session ID did not change")
	}
	if rec, ok := sessionRecord(t, s, store, j); !ok || strings.Join(rec.Amr, " ") != "pwd otp mfa" {
		t.Fatalf("after step-up: %+v", rec)
	}
	if _, ok := sessionRecord(t, s, store, jar{"caddy_session": before}); ok {
		t.Fatal("the old session still works")
	}
	r = httptest.NewRequest("GET", "/.session/mfa?redirect=%2Fadmin", nil)
	r.Header.Set("Accept", "text/html")
	if w := j.do(s, r); w.Code != 303 || w.Header().Get("Location") != "/admin" {
		t.Fatalf("proved already: %d %v", w.Code, w.Header())
	}
}

// TestMFANewCodesAndRemove: from a session that proved its factor, new
// recovery codes and removal take the password again, refuse a
// cross-origin form, and work.
func TestMFANewCodesAndRemove(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	j := jar{}
	passwordLogin(s, j, "alice")
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/.session/mfa/recovery", "/.session/mfa/totp/remove"} {
		r := formPost(path, url.Values{"password": {"secret"}})
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		if w := j.do(s, r); w.Code != 403 {
			t.Errorf("%s cross-origin: %d", path, w.Code)
		}
		if w := j.do(s, formPost(path, url.Values{"password": {"wrong"}})); w.Code != 401 {
			t.Errorf("%s wrong password: %d", path, w.Code)
		}
		r = httptest.NewRequest("GET", path, nil)
		if w := j.do(s, r); w.Code != 405 {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	w := j.do(s, formPost("/.session/mfa/recovery", url.Values{"password": {"secret"}}))
	if w.Code != 200 || strings.Count(w.Body.String(), "<li><code>") != 10 {
		t.Fatalf("new codes: %d %s", w.Code, w.Body)
	}
	w = j.do(s, formPost("/.session/mfa/totp/remove", url.Values{"password": {"secret"}}))
	if w.Code != 303 || w.Header().Get("Location") != "/.session/sessions?mfa=removed" {
		t.Fatalf("remove: %d %v", w.Code, w.Header())
	}
	if creds, _ := s.c.MFA.Store.Load(context.Background(), "alice"); creds != nil {
		t.Fatalf("after removal: %+v", creds)
	}
	if w := passwordLogin(s, jar{}, "alice"); w.Code != 200 {
		t.Fatalf("password login after removal: %d %s", w.Code, w.Body)
	}
}

// TestMFASessionOfAnotherSource: a session the password users did not
// issue (a provider's, the upstream's), sent to /mfa by a rule that says
// mfa, gets a 403 that says why, not the login page (which would send it
// back here: a loop).
func TestMFASessionOfAnotherSource(t *testing.T) {
	s, _ := mfaServer(t)
	w := httptest.NewRecorder()
	if _, err := s.c.Sessions.Login(context.Background(), w, httptest.NewRequest("GET", "/", nil), nil, identity.Identity{User: "dave", Source: identity.Upstream}, nil); err != nil {
		t.Fatal(err)
	}
	j := jar{}
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		j[c.Name] = c.Value
	}
	r := httptest.NewRequest("GET", "/.session/mfa?redirect=%2Fadmin", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	if w := j.do(s, r); w.Code != 403 || !strings.Contains(w.Body.String(), "A second factor is needed") {
		t.Fatalf("navigation: %d %v %s", w.Code, w.Header(), w.Body)
	}
	r = httptest.NewRequest("GET", "/.session/mfa", nil)
	r.Header.Set("Accept", "application/json")
	if w := j.do(s, r); w.Code != 403 || !strings.Contains(w.Body.String(), "second factor required") {
		t.Fatalf("script: %d %s", w.Code, w.Body)
	}
	w = j.do(s, jsonPost("/.session/mfa", `{"code":"123456"}`))
	if w.Code != 403 {
		t.Fatalf("a code posted by it: %d %s", w.Code, w.Body)
	}
}

// TestMFARecoveryCodesForPasskeyUsers: a user whose only factor is a
// passkey is offered recovery codes on the sessions page too.
func TestMFARecoveryCodesForPasskeyUsers(t *testing.T) {
	s, _ := mfaServer(t)
	j := jar{}
	if w := passwordLogin(s, j, "bob"); w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	page := func() string {
		r := httptest.NewRequest("GET", "/.session/sessions", nil)
		r.Header.Set("Accept", "text/html")
		w := j.do(s, r)
		if w.Code != 200 {
			t.Fatalf("sessions page: %d %s", w.Code, w.Body)
		}
		return w.Body.String()
	}
	if strings.Contains(page(), `id="recovery"`) {
		t.Fatal("recovery codes offered to a user with no factor")
	}
	if _, err := s.c.MFA.Store.Update(context.Background(), "bob", func(c **mfa.Credentials) error {
		*c = &mfa.Credentials{Handle: []byte("0123456789abcdef0123456789abcdef"), Passkeys: []mfa.Passkey{{Name: "Laptop", Created: time.Now()}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if body := page(); !strings.Contains(body, `id="recovery"`) || !strings.Contains(body, "0 unused codes left") {
		t.Fatalf("a passkey user is not offered recovery codes:\n%s", body)
	}
}

// TestMFAOwingSessionIsNoOnesOnTheEndpoints: a session from before the
// policy named its user (carol must prove a second factor) is no one's on
// the endpoints that act as the user either: whoami says a second factor
// is required, the sessions page sends to the second step, and its POST
// signs nothing out (an attacker with only the password could otherwise
// end the user's proved sessions, or list where they are).
func TestMFAOwingSessionIsNoOnesOnTheEndpoints(t *testing.T) {
	s, store := mfaServer(t)
	login := func() jar {
		w := httptest.NewRecorder()
		id := identity.Identity{User: "carol", Source: identity.Password, Fingerprint: fingerprint(t, s, "carol")}
		if _, err := s.c.Sessions.Login(context.Background(), w, httptest.NewRequest("GET", "/", nil), nil, id, nil); err != nil {
			t.Fatal(err)
		}
		j := jar{}
		for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
			j[c.Name] = c.Value
		}
		return j
	}
	j, other := login(), login()
	if w := j.do(s, httptest.NewRequest("GET", "/.session/whoami", nil)); w.Code != 401 || !strings.Contains(w.Body.String(), "second factor required") {
		t.Fatalf("whoami: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "/.session/sessions", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	if w := j.do(s, r); w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/.session/mfa?redirect=") {
		t.Fatalf("sessions page: %d %v", w.Code, w.Header())
	}
	if w := j.do(s, formPost("/.session/sessions", url.Values{"others": {"1"}})); w.Code != 401 {
		t.Fatalf("signing out the others: %d %s", w.Code, w.Body)
	}
	if _, ok := sessionRecord(t, s, store, other); !ok {
		t.Fatal("the owing session signed out another session of the user")
	}
}

// TestMFAUnsupportedBodyLogged: a POST of another content type is a 415
// with a log line, on every endpoint that reads a body.
func TestMFAUnsupportedBodyLogged(t *testing.T) {
	s, _ := mfaServer(t)
	core, logs := observer.New(zap.WarnLevel)
	s.c.Logger = zap.New(core)
	for _, path := range []string{"/.session/login", "/.session/mfa", "/.session/passkey/login"} {
		r := httptest.NewRequest("POST", path, strings.NewReader("--x--"))
		r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		before := logs.Len()
		if w := serve(s, r); w.Code != 415 {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
		if logs.Len() == before {
			t.Errorf("%s: 415 without a log line", path)
		}
	}
}

// TestMFACodesThrottledOverAddresses: an attacker who has the password
// gains nothing by guessing codes from many addresses: the user's codes
// are counted over every address too (login_limit's 5 failures), and
// then even the right code waits, from a new address as well; and a burst
// of parallel guesses gets no more checked than one at a time.
func TestMFACodesThrottledOverAddresses(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	j := jar{}
	passwordLogin(s, j, "alice")
	from := func(n int, body string) *httptest.ResponseRecorder {
		r := jsonPost("/.session/mfa", body)
		r.RemoteAddr = fmt.Sprintf("2001:db8:%x::1:1234", n) // a /64 of its own each
		r.RemoteAddr = "[" + strings.TrimSuffix(r.RemoteAddr, ":1234") + "]:1234"
		return j.do(s, r)
	}
	for i := range 5 {
		if w := from(i, `{"code":"12345x"}`); w.Code != 401 {
			t.Fatalf("wrong code %d from a new address: %d %s", i, w.Code, w.Body)
		}
	}
	if w := from(99, `{"code":"`+nowCode(t, secret)+`"}`); w.Code != 429 {
		t.Fatalf("after 5 wrong codes from 5 addresses, from a 6th: %d %s", w.Code, w.Body)
	}
	// Another user's codes are theirs: bob is not paused.
	bob := jar{}
	enrol(t, s, "bob")
	passwordLogin(s, bob, "bob")
	r := jsonPost("/.session/mfa", `{"code":"12345x"}`)
	r.RemoteAddr = "[2001:db8:99::1]:1234"
	if w := bob.do(s, r); w.Code != 401 {
		t.Fatalf("bob's wrong code: %d %s", w.Code, w.Body)
	}
}

// TestMFAPendingCookieOnce: a copy of the pending cookie, taken before the
// login completed, does not complete a second login, even with another
// right code (a recovery code): one password, one login.
func TestMFAPendingCookieOnce(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	codes, err := s.c.MFA.Service.NewRecoveryCodes(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	j := jar{}
	passwordLogin(s, j, "alice")
	copied := jar{"caddy_session~mfa": j["caddy_session~mfa"]}
	if copied["caddy_session~mfa"] == "" {
		t.Fatal("no pending cookie")
	}
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 200 {
		t.Fatalf("the code: %d %s", w.Code, w.Body)
	}
	w := copied.do(s, jsonPost("/.session/mfa", `{"code":"`+codes[0]+`","kind":"recovery"}`))
	if w.Code != 401 || !strings.Contains(w.Body.String(), "already completed") {
		t.Fatalf("the copied pending cookie with a recovery code: %d %s", w.Code, w.Body)
	}
	if _, ok := copied["caddy_session"]; ok {
		t.Fatal("the copy made a session")
	}
}

// TestMFAEnrolmentEndsPasswordOnlySessions: once alice sets up a factor,
// her other sessions that proved only the password (one an attacker may
// hold) are signed out; the one she enrolled from goes on, with the
// factor; bob's are not touched.
func TestMFAEnrolmentEndsPasswordOnlySessions(t *testing.T) {
	s, store := mfaServer(t)
	alice, phone, bob := jar{}, jar{}, jar{}
	for j, user := range map[*jar]string{&alice: "alice", &phone: "alice", &bob: "bob"} {
		if w := passwordLogin(s, *j, user); w.Code != 200 {
			t.Fatalf("%s: %d", user, w.Code)
		}
	}
	w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"password": {"secret"}}))
	m, k := sealedField.FindStringSubmatch(w.Body.String()), secretText.FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil || k == nil {
		t.Fatalf("enrolment page: %d %s", w.Code, w.Body)
	}
	code := nowCode(t, strings.ReplaceAll(k[1], " ", ""))
	if w := alice.do(s, formPost("/.session/mfa/totp", url.Values{"sealed": {html.UnescapeString(m[1])}, "code": {code}})); w.Code != 200 {
		t.Fatalf("first code: %d %s", w.Code, w.Body)
	}
	if rec, ok := sessionRecord(t, s, store, alice); !ok || !identity.HasMFA(rec.Amr) {
		t.Fatalf("the session enrolled from: %+v %v", rec, ok)
	}
	if _, ok := sessionRecord(t, s, store, phone); ok {
		t.Fatal("alice's password-only session on the phone outlived her new factor")
	}
	if _, ok := sessionRecord(t, s, store, bob); !ok {
		t.Fatal("bob's session was ended")
	}
}

// TestMFACodeAfterProvedIsNotChecked: a session that proved its factor
// and posts a code (any code) is told it was not checked, never 200.
func TestMFACodeAfterProvedIsNotChecked(t *testing.T) {
	s, _ := mfaServer(t)
	secret := enrol(t, s, "alice")
	j := jar{}
	passwordLogin(s, j, "alice")
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"`+nowCode(t, secret)+`"}`)); w.Code != 200 {
		t.Fatalf("the code: %d %s", w.Code, w.Body)
	}
	if w := j.do(s, jsonPost("/.session/mfa", `{"code":"garbage"}`)); w.Code != 409 || !strings.Contains(w.Body.String(), "not checked") {
		t.Fatalf("a code after the factor was proved: %d %s", w.Code, w.Body)
	}
}

// TestMFACodesBurstOverAddresses: 40 wrong codes sent at once, each from
// an address of its own, get at most login_limit's 5 checked: the count
// over every address holds its attempts in flight too.
func TestMFACodesBurstOverAddresses(t *testing.T) {
	s, _ := mfaServer(t)
	enrol(t, s, "alice")
	j := jar{}
	passwordLogin(s, j, "alice")
	pending := j["caddy_session~mfa"]
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := range 40 {
		wg.Go(func() {
			r := jsonPost("/.session/mfa", `{"code":"12345x"}`)
			r.RemoteAddr = fmt.Sprintf("[2001:db8:%x::1]:1234", i)
			r.AddCookie(&http.Cookie{Name: "caddy_session~mfa", Value: pending})
			codes <- serve(s, r).Code
		})
	}
	wg.Wait()
	close(codes)
	checked := 0
	for c := range codes {
		switch c {
		case 401:
			checked++
		case 429:
		default:
			t.Errorf("a guess answered %d", c)
		}
	}
	if checked > 5 {
		t.Fatalf("%d of 40 parallel wrong codes were checked, want at most 5", checked)
	}
}
