package mfa

import (
	"context"
	"encoding/base32"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// t0 is the tests' clock at the start: 10 s into a step, far from the
// machine's clock (the claims' times are converted, see claimUntil).
var t0 = time.Date(2031, 3, 4, 5, 6, 30+10, 0, time.UTC)

// clock is a settable clock for Service.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock      { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time        { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)       { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration)   { c.ns.Add(int64(d)) }
func testSecrets(s ...string) [][]byte { return bytesOf(s) }
func bytesOf(ss []string) (b [][]byte) {
	for _, s := range ss {
		b = append(b, []byte(s))
	}
	return b
}

// newService is a Service over vault and claims (a new memory store for
// each that is nil), sealing with secrets (default: one), at clk.
func newService(t testing.TB, vault sessionstore.Vault, claims sessionstore.Claimer, clk *clock, secrets ...string) *Service {
	t.Helper()
	if vault == nil || claims == nil {
		m := sessionstore.NewMemory(0)
		t.Cleanup(func() { m.Close() })
		if vault == nil {
			vault = m
		}
		if claims == nil {
			claims = m
		}
	}
	if len(secrets) == 0 {
		secrets = []string{"the first secret of the handler, long enough"}
	}
	sealer, err := NewSealer(testSecrets(secrets...), "")
	if err != nil {
		t.Fatal(err)
	}
	return &Service{Store: &Store{Vault: vault}, Claims: claims, Sealer: sealer, Issuer: "Acme Wiki", Now: clk.now}
}

func code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol makes and enrols a TOTP secret for user at the service's clock
// minus 5 minutes (so that the enrolment's claim is of no step the test
// then uses) and returns the secret.
func enrol(t testing.TB, s *Service, clk *clock, user string) string {
	t.Helper()
	key, err := s.NewTOTP(user)
	if err != nil {
		t.Fatal(err)
	}
	back := clk.now()
	clk.add(-5 * time.Minute)
	defer clk.set(back)
	if err := s.EnrolTOTP(context.Background(), user, key.Secret(), code(t, key.Secret(), clk.now())); err != nil {
		t.Fatalf("EnrolTOTP with the right code: %v", err)
	}
	return key.Secret()
}

func TestNewTOTPKey(t *testing.T) {
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	key, err := s.NewTOTP("alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key.Secret())
	if err != nil || len(raw) != 20 {
		t.Errorf("secret %q: %d bytes, %v; want 20", key.Secret(), len(raw), err)
	}
	if key.Issuer() != "Acme Wiki" || key.AccountName() != "alice" || key.Period() != 30 ||
		key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Errorf("key %s: issuer %q account %q period %d digits %v algorithm %v", key.URL(), key.Issuer(), key.AccountName(), key.Period(), key.Digits(), key.Algorithm())
	}
	if !strings.HasPrefix(key.URL(), "otpauth://totp/Acme%20Wiki:alice?") {
		t.Errorf("URL %s", key.URL())
	}
	other, _ := s.NewTOTP("alice")
	if other.Secret() == key.Secret() {
		t.Error("two secrets alike")
	}
	if _, err := s.NewTOTP(""); err == nil {
		t.Error("a secret for no user")
	}
	// Nothing is stored until enrolment.
	if c, err := s.Store.Load(context.Background(), "alice"); c != nil || err != nil {
		t.Errorf("after NewTOTP: %+v, %v", c, err)
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		offset time.Duration
		want   error
	}{
		{-30 * time.Second, nil},
		{0, nil},
		{30 * time.Second, nil},
		{-60 * time.Second, ErrBadCode},
		{60 * time.Second, ErrBadCode},
		{-90 * time.Second, ErrBadCode},
	} {
		// At the first second of a step, in its middle, at its last.
		for _, into := range []time.Duration{0, 10 * time.Second, 29 * time.Second} {
			clk := newClock(t0.Truncate(30 * time.Second).Add(into))
			s := newService(t, nil, nil, clk)
			secret := enrol(t, s, clk, "alice")
			err := s.VerifyTOTP(ctx, "alice", code(t, secret, clk.now().Add(tc.offset)))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("the code of now%+v, %v into the step: %v, want %v", tc.offset, into, err, tc.want)
			}
		}
	}
}

func TestVerifyTOTPOnce(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	secret := enrol(t, s, clk, "alice")
	now := code(t, secret, t0)
	prev := code(t, secret, t0.Add(-30*time.Second))
	if err := s.VerifyTOTP(ctx, "alice", now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := s.VerifyTOTP(ctx, "alice", now); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("the same code again: %v, want ErrCodeUsed", err)
	}
	// The previous step's code is another code: accepted once.
	if err := s.VerifyTOTP(ctx, "alice", prev); err != nil {
		t.Errorf("the previous step's code after the current one: %v", err)
	}
	if err := s.VerifyTOTP(ctx, "alice", prev); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("the previous step's code again: %v", err)
	}
	// Refused for as long as any window accepts it: the last second of
	// the step after, with the clock moved on.
	clk.set(t0.Truncate(30 * time.Second).Add(59 * time.Second))
	if err := s.VerifyTOTP(ctx, "alice", now); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("the used code at the end of the next step: %v, want ErrCodeUsed", err)
	}
	clk.set(t0.Truncate(30 * time.Second).Add(60 * time.Second))
	if err := s.VerifyTOTP(ctx, "alice", now); !errors.Is(err, ErrBadCode) {
		t.Errorf("the used code two steps on: %v, want ErrBadCode", err)
	}
	// Formatting forgiven, content not.
	clk.set(t0.Add(5 * time.Minute))
	c := code(t, secret, clk.now())
	if err := s.VerifyTOTP(ctx, "alice", c[:3]+" "+c[3:]); err != nil {
		t.Errorf("%q: %v", c[:3]+" "+c[3:], err)
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "١٢٣٤٥٦", strings.Repeat("1", 1<<16), c + "\x00"} {
		if err := s.VerifyTOTP(ctx, "alice", bad); !errors.Is(err, ErrBadCode) {
			t.Errorf("%.20q: %v, want ErrBadCode", bad, err)
		}
	}
}

// A claim is per user: alice's code claimed does not refuse bob's of the
// same step (nor the other way), even with the same secret.
func TestVerifyTOTPClaimPerUser(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	secret := enrol(t, s, clk, "alice")
	clk.add(-5 * time.Minute)
	if err := s.EnrolTOTP(ctx, "bob", secret, code(t, secret, clk.now().Add(30*time.Second))); err != nil {
		t.Fatal(err)
	}
	clk.set(t0)
	c := code(t, secret, t0)
	if err := s.VerifyTOTP(ctx, "alice", c); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyTOTP(ctx, "bob", c); err != nil {
		t.Errorf("bob, after alice used the same code: %v", err)
	}
}

func TestVerifyTOTPNotEnrolled(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	secret := enrol(t, s, clk, "alice")
	// bob has no TOTP, only recovery codes: alice's code, or any, is
	// the same answer as a wrong code.
	if _, err := s.NewRecoveryCodes(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"bob", "carol", ""} {
		if err := s.VerifyTOTP(ctx, user, code(t, secret, t0)); !errors.Is(err, ErrBadCode) {
			t.Errorf("%q: %v, want ErrBadCode", user, err)
		}
	}
	if err := s.VerifyTOTP(ctx, "alice", code(t, secret, t0)); err != nil {
		t.Errorf("alice after the others tried her code: %v", err)
	}
}

func TestEnrolTOTP(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	key, _ := s.NewTOTP("alice")
	right := code(t, key.Secret(), t0)
	wrong := code(t, key.Secret(), t0.Add(2*time.Minute))
	if err := s.EnrolTOTP(ctx, "alice", key.Secret(), wrong); !errors.Is(err, ErrBadCode) {
		t.Errorf("a wrong code: %v, want ErrBadCode", err)
	}
	other, _ := s.NewTOTP("alice")
	if err := s.EnrolTOTP(ctx, "alice", other.Secret(), right); !errors.Is(err, ErrBadCode) {
		t.Errorf("another secret's code: %v, want ErrBadCode", err)
	}
	for _, bad := range []string{"", "not base32!", "AAAA", strings.Repeat("A", 200)} {
		if err := s.EnrolTOTP(ctx, "alice", bad, right); !errors.Is(err, ErrBadSecret) {
			t.Errorf("secret %.20q: %v, want ErrBadSecret", bad, err)
		}
	}
	if c, err := s.Store.Load(ctx, "alice"); c != nil || err != nil {
		t.Fatalf("after wrong enrolments, stored: %+v, %v", c, err)
	}
	// As a person copies it: lower case, in groups.
	var typed []string
	for i := 0; i < len(key.Secret()); i += 4 {
		typed = append(typed, strings.ToLower(key.Secret()[i:min(i+4, len(key.Secret()))]))
	}
	if err := s.EnrolTOTP(ctx, "alice", strings.Join(typed, " "), right); err != nil {
		t.Fatalf("the right code: %v", err)
	}
	c, err := s.Store.Load(ctx, "alice")
	if err != nil || c == nil || c.TOTP == nil || !c.TOTP.Created.Equal(t0) || !c.Enrolled() {
		t.Fatalf("stored: %+v, %v", c, err)
	}
	if strings.Contains(string(c.TOTP.Sealed), key.Secret()) {
		t.Error("the secret is stored readable")
	}
	// The enrolment's code cannot log in.
	if err := s.VerifyTOTP(ctx, "alice", right); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("the enrolment's code at login: %v, want ErrCodeUsed", err)
	}
	// Enrolling again replaces the secret; recovery codes stay.
	codes, err := s.NewRecoveryCodes(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	if err := s.EnrolTOTP(ctx, "alice", other.Secret(), code(t, other.Secret(), clk.now())); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	if err := s.VerifyTOTP(ctx, "alice", code(t, key.Secret(), clk.now())); !errors.Is(err, ErrBadCode) {
		t.Errorf("the replaced secret's code: %v", err)
	}
	if err := s.VerifyTOTP(ctx, "alice", code(t, other.Secret(), clk.now())); err != nil {
		t.Errorf("the new secret's code: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, "alice", codes[0]); err != nil {
		t.Errorf("a recovery code after enrolling again: %v", err)
	}
}

// A claim that cannot be made is no pass: a Redis that is down answers an
// error, and nothing is stored at enrolment.
func TestTOTPClaimStoreDown(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	mem := sessionstore.NewMemory(0)
	defer mem.Close()
	good := newService(t, mem, mem, clk)
	secret := enrol(t, good, clk, "alice")

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	s := newService(t, mem, sessionstore.NewRedis(down, "mfa-test:"), clk)
	err := s.VerifyTOTP(ctx, "alice", code(t, secret, t0))
	if err == nil || errors.Is(err, ErrBadCode) || errors.Is(err, ErrCodeUsed) {
		t.Errorf("with the claim store down: %v, want its error", err)
	}
	key, _ := s.NewTOTP("bob")
	err = s.EnrolTOTP(ctx, "bob", key.Secret(), code(t, key.Secret(), t0))
	if err == nil || errors.Is(err, ErrBadCode) {
		t.Errorf("enrolment with the claim store down: %v, want its error", err)
	}
	if c, _ := s.Store.Load(ctx, "bob"); c != nil {
		t.Errorf("enrolled with the claim store down: %+v", c)
	}
	// The code was not spent by the failure.
	if err := good.VerifyTOTP(ctx, "alice", code(t, secret, t0)); err != nil {
		t.Errorf("the code once the store is back: %v", err)
	}
}

// redisStore is a sessionstore.Redis on a client of its own, under prefix,
// in the Redis the tests share (EDGESESSION_REDIS_URL; B1's is DB 11).
func redisStore(t testing.TB, prefix string) (*sessionstore.Redis, *redis.Client) {
	client, _ := storetest.RedisClient(t)
	return sessionstore.NewRedis(client, prefix), client
}

// Two instances, each with its own Redis client (credentials and claims in
// Redis): a code one accepted, the other refuses, and the claim lasts until the end of the step after
// next, in Redis's own clock.
func TestVerifyTOTPTwoInstancesRedis(t *testing.T) {
	ctx := context.Background()
	prefix := storetest.RedisPrefix(t)
	r1, c1 := redisStore(t, prefix)
	r2, _ := redisStore(t, prefix)
	clk := newClock(t0)
	s1 := newService(t, r1, r1, clk)
	s2 := newService(t, r2, r2, clk)
	secret := enrol(t, s1, clk, "alice")

	c := code(t, secret, t0)
	if err := s1.VerifyTOTP(ctx, "alice", c); err != nil {
		t.Fatalf("instance 1: %v", err)
	}
	if err := s2.VerifyTOTP(ctx, "alice", c); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("instance 2, the same code: %v, want ErrCodeUsed", err)
	}
	counter := uint64(t0.Unix() / 30)
	ttl, err := c1.PTTL(ctx, prefix+"claim:"+totpClaimKey("alice", counter).String()).Result()
	want := time.Unix(int64(counter+3)*30, 0).Sub(t0) // 80 s: to the end of step counter+2
	if err != nil || ttl > want || ttl < want-5*time.Second {
		t.Errorf("the claim's TTL in Redis: %v, %v; want %v", ttl, err, want)
	}
	// Both at once, many times: exactly one wins each code.
	for i := range 20 {
		clk.set(t0.Add(time.Duration(i+1) * 5 * time.Minute))
		c := code(t, secret, clk.now())
		errs := make(chan error, 2)
		for _, s := range []*Service{s1, s2} {
			go func() { errs <- s.VerifyTOTP(ctx, "alice", c) }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) || !errors.Is(e1, ErrCodeUsed) && !errors.Is(e2, ErrCodeUsed) {
			t.Errorf("round %d: %v and %v, want one nil and one ErrCodeUsed", i, e1, e2)
		}
	}
}
