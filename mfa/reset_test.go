package mfa

import (
	"context"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/edgesession/edgesession/sessionstore"
)

func TestResetRemovesCredentialsAndTheHandle(t *testing.T) {
	ctx := context.Background()
	m := sessionstore.NewMemory(0)
	defer m.Close()
	s := &Store{Vault: m}
	handle := []byte("0123456789abcdef0123456789abcdef")
	for _, user := range []string{"alice", "bob"} {
		if _, err := s.Update(ctx, user, func(c **Credentials) error {
			*c = &Credentials{TOTP: &TOTP{Sealed: []byte("sealed"), Created: time.Now()}, Recovery: []Recovery{{Hash: []byte("h")}}}
			if user == "alice" {
				(*c).Handle = handle
				(*c).Passkeys = []Passkey{{Name: "key", Credential: webauthn.Credential{ID: []byte("cred")}}}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := m.VaultSwap(ctx, handleName(handle), nil, []byte("alice")); !ok || err != nil {
		t.Fatal(ok, err)
	}

	removed, err := Reset(ctx, m, "alice")
	if err != nil || !removed {
		t.Fatalf("Reset(alice) = %v, %v; want true", removed, err)
	}
	if c, err := s.Load(ctx, "alice"); c != nil || err != nil {
		t.Fatalf("alice's credentials after a reset: %+v, %v", c, err)
	}
	if v, _ := m.VaultGet(ctx, handleName(handle)); v != nil {
		t.Fatalf("the passkey handle still leads to %q", v)
	}
	if c, _ := s.Load(ctx, "bob"); !c.Enrolled() {
		t.Fatal("resetting alice removed bob's credentials")
	}
	// Again: nothing to remove, not an error.
	if removed, err := Reset(ctx, m, "alice"); removed || err != nil {
		t.Fatalf("Reset of a user with nothing = %v, %v; want false, nil", removed, err)
	}
	if removed, err := Reset(ctx, m, "nobody"); removed || err != nil {
		t.Fatalf("Reset(nobody) = %v, %v", removed, err)
	}
	// A user named like another's prefix is another user.
	if removed, _ := Reset(ctx, m, "bo"); removed {
		t.Fatal("Reset(bo) removed something")
	}
	if c, _ := s.Load(ctx, "bob"); !c.Enrolled() {
		t.Fatal("Reset(bo) removed bob's credentials")
	}
}

// Credentials that cannot be read are removed all the same: a reset is the
// way out of them.
func TestResetRemovesUnreadableCredentials(t *testing.T) {
	ctx := context.Background()
	m := sessionstore.NewMemory(0)
	defer m.Close()
	m.VaultSwap(ctx, vaultName("alice"), nil, []byte("{not json"))
	if _, err := (&Store{Vault: m}).Load(ctx, "alice"); err == nil {
		t.Fatal("the fixture is readable")
	}
	if removed, err := Reset(ctx, m, "alice"); !removed || err != nil {
		t.Fatalf("Reset = %v, %v", removed, err)
	}
	if v, _ := m.VaultGet(ctx, vaultName("alice")); v != nil {
		t.Fatalf("left %q", v)
	}
}

// racingVault is a vault in which another instance enrols a passkey for
// the user between Reset's read and its first swap.
type racingVault struct {
	sessionstore.Vault
	raced bool
}

func (r *racingVault) VaultSwap(ctx context.Context, name string, old, value []byte) (bool, error) {
	if !r.raced && name == vaultName("alice") {
		r.raced = true
		(&Store{Vault: r.Vault}).Update(ctx, "alice", func(c **Credentials) error {
			(*c).Passkeys = append((*c).Passkeys, Passkey{Name: "new"})
			return nil
		})
	}
	return r.Vault.VaultSwap(ctx, name, old, value)
}

func TestResetRemovesWhatWasEnrolledMeanwhile(t *testing.T) {
	ctx := context.Background()
	m := sessionstore.NewMemory(0)
	defer m.Close()
	(&Store{Vault: m}).Update(ctx, "alice", func(c **Credentials) error {
		*c = &Credentials{TOTP: &TOTP{Sealed: []byte("x")}}
		return nil
	})
	v := &racingVault{Vault: m}
	if removed, err := Reset(ctx, v, "alice"); !removed || err != nil {
		t.Fatalf("Reset = %v, %v", removed, err)
	}
	if !v.raced {
		t.Fatal("the race did not happen")
	}
	if c, _ := (&Store{Vault: m}).Load(ctx, "alice"); c != nil {
		t.Fatalf("the passkey enrolled meanwhile survived the reset: %+v", c)
	}
}
