package mfa

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/edgesession/edgesession/sessionstore"
)

// The user handle's index: written before any credential carries the
// handle, it leads back to the user while they have a passkey and is
// removed with the last one; a handle that is not the user's (any more)
// names no one.
func TestPasskeyHandleIndex(t *testing.T) {
	ctx := context.Background()
	mem := sessionstore.NewMemory(time.Hour)
	defer mem.Close()
	store := &Store{Vault: mem}
	p, err := NewPasskeys(store, "Test", "example.com", []string{"https://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	handle := make([]byte, 32)
	handle[0] = 7
	if err := p.indexHandle(ctx, handle, "alice"); err != nil {
		t.Fatal(err)
	}
	// Indexed but not (yet) alice's handle: no one.
	if _, err := p.userByHandle(ctx, handle); !errors.Is(err, ErrNoPasskey) {
		t.Fatalf("a handle not in the credentials: %v", err)
	}
	// Another user cannot take the same handle.
	if err := p.indexHandle(ctx, handle, "bob"); !errors.Is(err, ErrHandleChanged) {
		t.Fatalf("bob taking alice's handle: %v", err)
	}
	add := func(id byte) {
		t.Helper()
		if _, err := store.Update(ctx, "alice", func(c **Credentials) error {
			if *c == nil {
				*c = new(Credentials)
			}
			(*c).Handle = handle
			(*c).Passkeys = append((*c).Passkeys, Passkey{Name: "k", Credential: webauthn.Credential{ID: []byte{id}}})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	add(1)
	add(2)
	u, err := p.userByHandle(ctx, handle)
	if err != nil || u.WebAuthnName() != "alice" || len(u.WebAuthnCredentials()) != 2 {
		t.Fatalf("by handle: %v %v", u, err)
	}
	if _, err := p.userByHandle(ctx, make([]byte, 32)); !errors.Is(err, ErrNoPasskey) {
		t.Fatalf("an unknown handle: %v", err)
	}
	if _, err := p.userByHandle(ctx, []byte("alice")); !errors.Is(err, ErrNoPasskey) {
		t.Fatalf("a short handle: %v", err)
	}
	if err := store.RemovePasskey(ctx, "alice", []byte{3}); !errors.Is(err, ErrNoPasskey) {
		t.Fatalf("removing a passkey alice does not have: %v", err)
	}
	if err := store.RemovePasskey(ctx, "alice", []byte{1}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mem.VaultGet(ctx, handleName(handle)); string(v) != "alice" {
		t.Fatalf("with a passkey left the index says %q", v)
	}
	if err := store.RemovePasskey(ctx, "alice", []byte{2}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mem.VaultGet(ctx, handleName(handle)); v != nil {
		t.Fatalf("with no passkey left the index says %q", v)
	}
	if c, _ := store.Load(ctx, "alice"); c != nil {
		t.Fatalf("alice's credentials after the last passkey: %+v", c)
	}
}
