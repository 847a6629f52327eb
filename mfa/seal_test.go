package mfa

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

func TestSealer(t *testing.T) {
	old, err := NewSealer(testSecrets("old secret"), "")
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := NewSealer(testSecrets("new secret", "old secret"), "")
	newOnly, _ := NewSealer(testSecrets("new secret"), "")
	realmA, _ := NewSealer(testSecrets("old secret"), "a")
	realmB, _ := NewSealer(testSecrets("old secret"), "b")
	secret := []byte("twenty bytes secret!")

	sealed, err := old.Seal("alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Error("sealed holds the secret")
	}
	again, _ := old.Seal("alice", secret)
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one secret alike (nonce)")
	}
	for _, tc := range []struct {
		name   string
		s      *Sealer
		user   string
		sealed []byte
		ok     bool
	}{
		{"the same secret", old, "alice", sealed, true},
		{"rotated: a new first secret, the old after it", rotated, "alice", sealed, true},
		{"the old secret no longer configured", newOnly, "alice", sealed, false},
		{"another user", old, "bob", sealed, false},
		{"a user named like a prefix", old, "alic", sealed, false},
		{"another realm", realmA, "alice", sealed, false},
		{"tampered", old, "alice", flip(sealed, len(sealed)-1), false},
		{"tampered nonce", old, "alice", flip(sealed, 3), false},
		{"another version", old, "alice", flip(sealed, 0), false},
		{"truncated", old, "alice", sealed[:20], false},
		{"empty", old, "alice", nil, false},
	} {
		got, err := tc.s.Open(tc.user, tc.sealed)
		if tc.ok && (err != nil || !bytes.Equal(got, secret)) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
		if !tc.ok && (got != nil || !errors.Is(err, ErrSealed)) {
			t.Errorf("%s: opened %q, %v; want ErrSealed", tc.name, got, err)
		}
	}
	// The rotated sealer seals with its first secret: the old one alone
	// cannot open that.
	fresh, _ := rotated.Seal("alice", secret)
	if _, err := old.Open("alice", fresh); !errors.Is(err, ErrSealed) {
		t.Errorf("sealed with the new secret, opened with the old one only: %v", err)
	}
	if _, err := newOnly.Open("alice", fresh); err != nil {
		t.Errorf("sealed with the new secret, opened with it: %v", err)
	}
	inA, _ := realmA.Seal("alice", secret)
	if _, err := realmB.Open("alice", inA); !errors.Is(err, ErrSealed) {
		t.Errorf("realm a's seal in realm b: %v", err)
	}
	if _, err := old.Open("alice", inA); !errors.Is(err, ErrSealed) {
		t.Errorf("realm a's seal with no realm: %v", err)
	}

	// Recovery hashes: bound to user, realm and secret; the old ones still
	// match after a rotation (recoveryHashes tries every key).
	h := old.RecoveryHash("alice", "ABCDE12345")
	if bytes.Equal(h, old.RecoveryHash("bob", "ABCDE12345")) || bytes.Equal(h, realmA.RecoveryHash("alice", "ABCDE12345")) ||
		bytes.Equal(h, newOnly.RecoveryHash("alice", "ABCDE12345")) {
		t.Error("a recovery hash alike for another user, realm or secret")
	}
	if hs := rotated.recoveryHashes("alice", "ABCDE12345"); len(hs) != 2 || !bytes.Equal(hs[1], h) || bytes.Equal(hs[0], h) {
		t.Error("the rotated sealer's hashes do not include the old one, second")
	}

	if _, err := NewSealer(nil, ""); err == nil {
		t.Error("a sealer with no secret")
	}
	if _, err := NewSealer([][]byte{{}}, ""); err == nil {
		t.Error("a sealer with an empty secret")
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

// The same through the service: an enrolled TOTP and recovery codes keep
// working after the handler's secrets are rotated; a sealed secret moved
// into another user's credentials (by someone who can write the vault)
// does not verify there; a realm's credentials do not open in another.
func TestSealedThroughService(t *testing.T) {
	ctx := context.Background()
	mem := sessionstore.NewMemory(0)
	defer mem.Close()
	clk := newClock(t0)
	s := newService(t, mem, mem, clk, "old secret")
	secret := enrol(t, s, clk, "alice")
	codes, err := s.NewRecoveryCodes(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	rotated := newService(t, mem, mem, clk, "new secret", "old secret")
	if err := rotated.VerifyTOTP(ctx, "alice", code(t, secret, t0)); err != nil {
		t.Errorf("after rotation: %v", err)
	}
	if err := rotated.UseRecoveryCode(ctx, "alice", codes[0]); err != nil {
		t.Errorf("a recovery code after rotation: %v", err)
	}
	dropped := newService(t, mem, mem, clk, "new secret")
	clk.add(5 * time.Minute)
	if err := dropped.VerifyTOTP(ctx, "alice", code(t, secret, clk.now())); !errors.Is(err, ErrSealed) {
		t.Errorf("with the old secret dropped: %v, want ErrSealed", err)
	}
	if err := dropped.UseRecoveryCode(ctx, "alice", codes[1]); !errors.Is(err, ErrBadCode) {
		t.Errorf("a recovery code with the old secret dropped: %v", err)
	}

	// Move alice's sealed secret (and her recovery hashes) to mallory.
	c, _ := s.Store.Load(ctx, "alice")
	if _, err := s.Store.Update(ctx, "mallory", func(m **Credentials) error { *m = c; return nil }); err != nil {
		t.Fatal(err)
	}
	clk.add(5 * time.Minute)
	if err := s.VerifyTOTP(ctx, "mallory", code(t, secret, clk.now())); err == nil || errors.Is(err, ErrCodeUsed) {
		t.Errorf("alice's sealed secret as mallory's: %v, want ErrSealed", err)
	}
	if err := s.UseRecoveryCode(ctx, "mallory", codes[2]); !errors.Is(err, ErrBadCode) {
		t.Errorf("alice's recovery code as mallory's: %v", err)
	}

	// Another realm on the same secret and store.
	other := newService(t, mem, mem, clk, "old secret")
	other.Sealer, _ = NewSealer(testSecrets("old secret"), "intranet")
	if err := other.VerifyTOTP(ctx, "alice", code(t, secret, clk.now())); !errors.Is(err, ErrSealed) {
		t.Errorf("in another realm: %v, want ErrSealed", err)
	}
}
