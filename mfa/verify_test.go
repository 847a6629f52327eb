package mfa

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// givePasskey stores a passkey and a handle index for user as package
// passkey code would (branch passkey): only what Reset must remove.
func givePasskey(t *testing.T, s *Service, user string, handle []byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil {
			*c = new(Credentials)
		}
		(*c).Handle = handle
		(*c).Passkeys = append((*c).Passkeys, Passkey{Name: "laptop", Created: t0})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Store.Vault.VaultSwap(ctx, handleName(handle), nil, []byte(user)); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	mem := sessionstore.NewMemory(0)
	defer mem.Close()
	clk := newClock(t0)
	s := newService(t, mem, mem, clk)
	secret := enrol(t, s, clk, "alice")
	codes, _ := s.NewRecoveryCodes(ctx, "alice")
	givePasskey(t, s, "alice", []byte("alice's handle, 32 bytes long..."))
	bobSecret := enrol(t, s, clk, "bob")
	givePasskey(t, s, "bob", []byte("bob's handle, 32 bytes long....."))

	if err := s.Reset(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Store.Load(ctx, "alice"); c != nil || err != nil {
		t.Errorf("alice after reset: %+v, %v", c, err)
	}
	if v, _ := mem.VaultGet(ctx, handleName([]byte("alice's handle, 32 bytes long..."))); v != nil {
		t.Errorf("alice's handle index after reset: %q", v)
	}
	if err := s.VerifyTOTP(ctx, "alice", code(t, secret, t0)); !errors.Is(err, ErrBadCode) {
		t.Errorf("alice's TOTP after reset: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, "alice", codes[0]); !errors.Is(err, ErrBadCode) {
		t.Errorf("alice's recovery code after reset: %v", err)
	}
	// bob keeps his.
	if c, _ := s.Store.Load(ctx, "bob"); c == nil || c.TOTP == nil || len(c.Passkeys) != 1 {
		t.Errorf("bob after alice's reset: %+v", c)
	}
	if v, _ := mem.VaultGet(ctx, handleName([]byte("bob's handle, 32 bytes long....."))); string(v) != "bob" {
		t.Errorf("bob's handle index after alice's reset: %q", v)
	}
	if err := s.VerifyTOTP(ctx, "bob", code(t, bobSecret, t0)); err != nil {
		t.Errorf("bob's TOTP after alice's reset: %v", err)
	}
	// Resetting nothing is no error; alice can enrol again.
	if err := s.Reset(ctx, "alice"); err != nil {
		t.Errorf("a second reset: %v", err)
	}
	if err := s.Reset(ctx, "nobody"); err != nil {
		t.Errorf("reset of a user with nothing: %v", err)
	}
	clk.add(time.Minute)
	enrol(t, s, clk, "alice")
}

func TestRemoveTOTP(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(t, nil, nil, clk)

	// The only factor: its recovery codes go with it.
	secret := enrol(t, s, clk, "alice")
	codes, _ := s.NewRecoveryCodes(ctx, "alice")
	if err := s.RemoveTOTP(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyTOTP(ctx, "alice", code(t, secret, t0)); !errors.Is(err, ErrBadCode) {
		t.Errorf("TOTP after removal: %v", err)
	}
	if c, _ := s.Store.Load(ctx, "alice"); c != nil {
		t.Errorf("after removing the only factor: %+v", c)
	}
	if err := s.UseRecoveryCode(ctx, "alice", codes[0]); !errors.Is(err, ErrBadCode) {
		t.Errorf("a recovery code after the only factor was removed: %v", err)
	}

	// With a passkey left: the passkey and the codes stay.
	enrol(t, s, clk, "bob")
	codes, _ = s.NewRecoveryCodes(ctx, "bob")
	givePasskey(t, s, "bob", []byte("bob's handle, 32 bytes long....."))
	if err := s.RemoveTOTP(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Store.Load(ctx, "bob"); c == nil || c.TOTP != nil || len(c.Passkeys) != 1 || len(c.Recovery) != 10 {
		t.Errorf("bob after removing his TOTP: %+v", c)
	}
	if err := s.UseRecoveryCode(ctx, "bob", codes[0]); err != nil {
		t.Errorf("bob's recovery code with a passkey left: %v", err)
	}
	if err := s.RemoveTOTP(ctx, "nobody"); err != nil {
		t.Errorf("removing what is not there: %v", err)
	}
}

// The cost of a login's second step: load, open, three HMACs, one claim.
func BenchmarkVerifyTOTP(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchVerify(b, nil, nil)
	})
	b.Run("redis", func(b *testing.B) {
		r, _ := redisStore(b, storetest.RedisPrefix(b))
		benchVerify(b, r, r)
	})
}

func benchVerify(b *testing.B, vault sessionstore.Vault, claims sessionstore.Claimer) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(b, vault, claims, clk)
	secret := enrol(b, s, clk, "alice")
	// A new step for each round (a used code is refused), its code made
	// before the timer.
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = code(b, secret, t0.Add(time.Duration(i)*30*time.Second))
	}
	b.ResetTimer()
	for i := range b.N {
		clk.set(t0.Add(time.Duration(i) * 30 * time.Second))
		if err := s.VerifyTOTP(ctx, "alice", codes[i]); err != nil {
			b.Fatal(err)
		}
	}
}
