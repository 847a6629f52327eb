package mfa

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

func TestRecoveryCodes(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	codes, err := s.NewRecoveryCodes(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	shape := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !shape.MatchString(c) {
			t.Errorf("code %q: not xxxxx-xxxxx of the alphabet", c)
		}
		seen[c] = true
	}
	if len(codes) != 10 || len(seen) != 10 {
		t.Fatalf("%d codes, %d distinct: %q", len(codes), len(seen), codes)
	}
	stored, _ := s.Store.Load(ctx, "alice")
	if stored == nil || len(stored.Recovery) != 10 {
		t.Fatalf("stored: %+v", stored)
	}
	for _, r := range stored.Recovery {
		for _, c := range codes {
			if strings.Contains(string(r.Hash), strings.ReplaceAll(c, "-", "")) {
				t.Error("a code is stored readable")
			}
		}
	}
	// Recovery codes alone are no factor enrolled.
	if stored.Enrolled() {
		t.Error("recovery codes alone count as enrolled")
	}

	wrongOf := func(c string) string { // one character changed
		b := []byte(c)
		if b[0] == '2' {
			b[0] = '3'
		} else {
			b[0] = '2'
		}
		return string(b)
	}
	spellings := []func(string) string{
		func(c string) string { return c },
		strings.ToUpper,
		func(c string) string { return strings.ReplaceAll(c, "-", "") },
		func(c string) string { return " " + strings.ReplaceAll(strings.ToUpper(c), "-", " ") + " " },
		func(c string) string { return c[:2] + "-" + c[2:] },
		// 0 typed as O, 1 as I or l.
		func(c string) string {
			return strings.NewReplacer("0", "O", "1", "l").Replace(c)
		},
		func(c string) string { return strings.NewReplacer("0", "o", "1", "I").Replace(c) },
	}
	for i, c := range codes {
		if err := s.UseRecoveryCode(ctx, "alice", wrongOf(c)); !errors.Is(err, ErrBadCode) {
			t.Errorf("a wrong code %q: %v, want ErrBadCode", wrongOf(c), err)
		}
		if err := s.UseRecoveryCode(ctx, "bob", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("alice's code as bob: %v, want ErrBadCode", err)
		}
		typed := spellings[i%len(spellings)](c)
		if err := s.UseRecoveryCode(ctx, "alice", typed); err != nil {
			t.Errorf("code %q typed %q: %v", c, typed, err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("code %q again: %v, want ErrBadCode", c, err)
		}
		if got, _ := s.Store.Load(ctx, "alice"); got != nil && len(got.Recovery) != 9-i {
			t.Errorf("after %d used, %d kept", i+1, len(got.Recovery))
		}
	}
	for _, bad := range []string{"", "-", "abcde-abcd", "abcde-abcdef", "uuuuu-uuuuu", "ééééé-ééééé", strings.Repeat("a", 1<<16)} {
		if err := s.UseRecoveryCode(ctx, "alice", bad); !errors.Is(err, ErrBadCode) {
			t.Errorf("%.20q: %v, want ErrBadCode", bad, err)
		}
	}

	// New codes replace the old ones.
	first, _ := s.NewRecoveryCodes(ctx, "alice")
	second, _ := s.NewRecoveryCodes(ctx, "alice")
	if err := s.UseRecoveryCode(ctx, "alice", first[0]); !errors.Is(err, ErrBadCode) {
		t.Errorf("a replaced code: %v, want ErrBadCode", err)
	}
	if err := s.UseRecoveryCode(ctx, "alice", second[0]); err != nil {
		t.Errorf("a new code: %v", err)
	}
	if _, err := s.NewRecoveryCodes(ctx, ""); err == nil {
		t.Error("recovery codes for no user")
	}
}

// Using the last code of a user with a TOTP keeps the TOTP.
func TestRecoveryLastCodeKeepsTOTP(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)
	enrol(t, s, clk, "alice")
	codes, _ := s.NewRecoveryCodes(ctx, "alice")
	for _, c := range codes {
		if err := s.UseRecoveryCode(ctx, "alice", c); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.Store.Load(ctx, "alice")
	if c == nil || c.TOTP == nil || len(c.Recovery) != 0 {
		t.Errorf("after every code used: %+v", c)
	}
}

// Two instances given one code at once: exactly one succeeds, through the
// store's compare-and-swap, for every code.
func TestRecoveryRace(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		mem := sessionstore.NewMemory(0)
		defer mem.Close()
		raceRecovery(t, mem, mem)
	})
	t.Run("redis", func(t *testing.T) {
		prefix := storetest.RedisPrefix(t)
		r1, _ := redisStore(t, prefix)
		r2, _ := redisStore(t, prefix)
		raceRecovery(t, r1, r2)
	})
}

func raceRecovery(t *testing.T, v1, v2 sessionstore.Vault) {
	ctx := context.Background()
	clk := newClock(t0)
	s1 := newService(t, v1, nil, clk)
	s2 := newService(t, v2, nil, clk)
	for round := range 5 {
		codes, err := s1.NewRecoveryCodes(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, s := range []*Service{s1, s2} {
				wg.Go(func() { errs[i] = s.UseRecoveryCode(ctx, "alice", c) })
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errs[0], ErrBadCode) && !errors.Is(errs[1], ErrBadCode) {
				t.Errorf("round %d, code %s: %v and %v, want one nil and one ErrBadCode", round, c, errs[0], errs[1])
			}
		}
		if c, _ := s2.Store.Load(ctx, "alice"); c != nil {
			t.Errorf("round %d: after every code used, %+v", round, c)
		}
	}
}
