package assertion

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// testKeyring returns a keyring in a storage of its own, synced at the
// time it returns.
func testKeyring(t testing.TB, rotateEvery time.Duration) (*Keyring, time.Time) {
	k := NewKeyring(&certmagic.FileStorage{Path: t.TempDir()}, "", rotateEvery, zap.NewNop())
	now := time.Now()
	if err := k.Sync(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	return k, now
}

func publishedKIDs(t testing.TB, k *Keyring) []string {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range set.Keys {
		if !key.IsPublic() {
			t.Fatal("a private key is published")
		}
		kids = append(kids, key.KeyID)
	}
	return kids
}

// TestKeyringRotation: one key is generated and kept; a rotation makes a
// new one sign while the old one stays published until its tokens have
// all expired; a second keyring on the same storage follows.
func TestKeyringRotation(t *testing.T) {
	ctx := context.Background()
	k, t0 := testKeyring(t, time.Hour)
	_, kid1 := k.current()
	other := NewKeyring(k.storage, "", 0, zap.NewNop())
	if err := other.Sync(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, kid := other.current(); kid != kid1 {
		t.Fatalf("a second keyring on the same storage signs with %s, not %s", kid, kid1)
	}
	if err := k.Sync(ctx, t0.Add(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, kid := k.current(); kid != kid1 {
		t.Fatal("rotated before rotate_every")
	}

	t1 := t0.Add(time.Hour)
	if err := k.Sync(ctx, t1); err != nil {
		t.Fatal(err)
	}
	_, kid2 := k.current()
	if kid2 == kid1 {
		t.Fatal("not rotated after rotate_every")
	}
	if kids := publishedKIDs(t, k); len(kids) != 2 {
		t.Fatalf("published %v, want the old and the new key", kids)
	}
	if err := other.Sync(ctx, t1); err != nil {
		t.Fatal(err)
	}
	if _, kid := other.current(); kid != kid2 {
		t.Fatal("the second keyring did not follow the rotation")
	}

	// Once every token of the old key has expired, it goes.
	if err := other.Sync(ctx, t1.Add(retiredKeyKept+time.Second)); err != nil {
		t.Fatal(err)
	}
	if kids := publishedKIDs(t, other); len(kids) != 1 || kids[0] != kid2 {
		t.Fatalf("published %v, want only %s", kids, kid2)
	}
}

// TestStorageKey: the keys of handlers without a realm stay where they
// were kept before realms had keys of their own; each realm has its own.
func TestStorageKey(t *testing.T) {
	for realm, want := range map[string]string{
		"":     "edgesession/assertion-keys.json",
		"wiki": "edgesession/assertion-keys-realm-wiki.json",
	} {
		if got := StorageKey(realm); got != want {
			t.Errorf("StorageKey(%q) = %q, want %q", realm, got, want)
		}
	}
}
