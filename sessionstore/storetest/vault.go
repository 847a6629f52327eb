package storetest

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// vaultTests are the conformance tests of sessionstore.Vault, which every
// server-side store implements.
func vaultTests(b Backend) map[string]func(t *testing.T, s sessionstore.Store) {
	ctx := context.Background()
	vault := func(t *testing.T, s sessionstore.Store) sessionstore.Vault {
		t.Helper()
		v, ok := s.(sessionstore.Vault)
		if !ok {
			t.Fatalf("%T does not implement sessionstore.Vault", s)
		}
		return v
	}
	return map[string]func(t *testing.T, s sessionstore.Store){
		"vault: a missing name is nil, a swap from nil stores, a wrong old changes nothing": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			name := "mfa/user/alice"
			if got := mustVaultGet(t, v, name); got != nil {
				t.Fatalf("VaultGet(missing) = %q, want nil", got)
			}
			if !mustSwap(t, v, name, nil, []byte("one")) {
				t.Fatal("a swap from nothing to a value lost")
			}
			if got := mustVaultGet(t, v, name); string(got) != "one" {
				t.Fatalf("VaultGet = %q, want one", got)
			}
			for what, old := range map[string][]byte{"nothing": nil, "another value": []byte("two"), "a prefix": []byte("on"), "empty": {}} {
				if mustSwap(t, v, name, old, []byte("mallory")) {
					t.Fatalf("a swap from %s (the stored value is one) won", what)
				}
				if got := mustVaultGet(t, v, name); string(got) != "one" {
					t.Fatalf("after a lost swap from %s: %q, want one", what, got)
				}
			}
			if !mustSwap(t, v, name, []byte("one"), []byte("two")) {
				t.Fatal("a swap from the stored value lost")
			}
			if got := mustVaultGet(t, v, name); string(got) != "two" {
				t.Fatalf("VaultGet = %q, want two", got)
			}
			if mustSwap(t, v, "mfa/user/bob", []byte("two"), []byte("x")) {
				t.Fatal("a swap of another name, from this one's value, won")
			}
			if got := mustVaultGet(t, v, "mfa/user/bob"); got != nil {
				t.Fatalf("another name holds %q", got)
			}
		},
		"vault: a nil value deletes, an empty one is a value": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			name := "mfa/user/alice"
			mustSwap(t, v, name, nil, []byte("one"))
			if mustSwap(t, v, name, []byte("other"), nil) {
				t.Fatal("a delete from a wrong old value won")
			}
			if !mustSwap(t, v, name, []byte("one"), nil) {
				t.Fatal("a delete from the stored value lost")
			}
			if got := mustVaultGet(t, v, name); got != nil {
				t.Fatalf("after the delete: %q, want nil", got)
			}
			if !mustSwap(t, v, name, nil, nil) {
				t.Fatal("deleting what is not there (old nil) lost")
			}
			if mustSwap(t, v, name, []byte("one"), nil) {
				t.Fatal("deleting a deleted value won")
			}
			if !mustSwap(t, v, name, nil, []byte{}) {
				t.Fatal("a swap to an empty value lost")
			}
			if got := mustVaultGet(t, v, name); got == nil || len(got) != 0 {
				t.Fatalf("an empty value reads as %#v, want empty and not nil", got)
			}
			if mustSwap(t, v, name, nil, []byte("x")) {
				t.Fatal("an empty value counts as nothing")
			}
			if !mustSwap(t, v, name, []byte{}, nil) {
				t.Fatal("deleting the empty value lost")
			}
		},
		"vault: binary values and names round-trip": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			value := []byte("\x00\xff{\"json\":true}\r\n\x00")
			for _, name := range []string{"mfa/user/zoë 日本", "a*b?[c]{slot}\\", "\x00", strings.Repeat("n", sessionstore.MaxVaultName)} {
				if !mustSwap(t, v, name, nil, value) {
					t.Fatalf("swap %q lost", name)
				}
				if got := mustVaultGet(t, v, name); !bytes.Equal(got, value) {
					t.Fatalf("%q holds %q, want %q", name, got, value)
				}
			}
			if got := mustVaultGet(t, v, "a*"); got != nil {
				t.Fatalf("a name read as a pattern: %q", got)
			}
		},
		"vault: bounds": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			big := bytes.Repeat([]byte("v"), sessionstore.MaxVaultValue)
			if !mustSwap(t, v, "at the bound", nil, big) {
				t.Fatal("a value of MaxVaultValue bytes lost")
			}
			if got := mustVaultGet(t, v, "at the bound"); !bytes.Equal(got, big) {
				t.Fatalf("the largest value reads back as %d bytes", len(got))
			}
			for what, c := range map[string]struct {
				name  string
				value []byte
			}{
				"a value one byte too long": {"over", append(big, 'x')},
				"a name one byte too long":  {strings.Repeat("n", sessionstore.MaxVaultName+1), []byte("v")},
				"an empty name":             {"", []byte("v")},
			} {
				ok, err := v.VaultSwap(ctx, c.name, nil, c.value)
				if ok || !errors.Is(err, sessionstore.ErrVaultTooLarge) {
					t.Fatalf("%s: VaultSwap = %v, %v; want false, ErrVaultTooLarge", what, ok, err)
				}
				if got := mustVaultGet(t, v, c.name); got != nil {
					t.Fatalf("%s: stored anyway (%d bytes)", what, len(got))
				}
			}
			// A too large value never replaces a stored one.
			if ok, err := v.VaultSwap(ctx, "at the bound", big, append(big, 'x')); ok || !errors.Is(err, sessionstore.ErrVaultTooLarge) {
				t.Fatalf("replacing with a too large value = %v, %v", ok, err)
			}
			if got := mustVaultGet(t, v, "at the bound"); !bytes.Equal(got, big) {
				t.Fatal("a refused swap changed the value")
			}
		},
		"vault: sessions, claims and the index never see it, nor it them": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			alice := sessionstore.KeyOf(sessionstore.NewID())
			rec := identity(record(time.Now(), "alice", map[string]string{"k": "v"}))
			mustCreate(t, s, alice, rec)
			// Names a careless store could confuse with the session, its
			// user or its index: the key itself (raw and hex), the user.
			names := []string{"mfa/user/alice", "alice", alice.String(), string(alice[:]), "user:alice"}
			for _, name := range names {
				mustSwap(t, v, name, nil, []byte("secret of "+name))
			}
			check := func(when string) {
				t.Helper()
				for _, name := range names {
					if got := mustVaultGet(t, v, name); string(got) != "secret of "+name {
						t.Fatalf("%s: vault %q holds %q", when, name, got)
					}
				}
			}
			assertEqual(t, "the session after vault writes", mustFind(t, s, alice), rec)
			mustUpdate(t, s, alice, sessionstore.Change{Set: map[string]string{"k2": "v2"}})
			check("after a session's update")
			if l, ok := s.(sessionstore.Lister); ok {
				n := 0
				if err := l.Each(ctx, func(k sessionstore.Key, _ sessionstore.Record) bool {
					n++
					if k != alice {
						t.Errorf("Each walks %x, which is no session", k)
					}
					return true
				}); err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Fatalf("Each walks %d records, want the one session", n)
				}
			}
			if ix, ok := s.(sessionstore.UserIndex); ok {
				if es := mustList(t, ix, "alice"); len(es) != 1 {
					t.Fatalf("ListUser(alice) = %d entries, want the one session", len(es))
				}
				if keys := mustDeleteUser(t, ix, "alice"); len(keys) != 1 {
					t.Fatalf("DeleteUser(alice) deleted %d, want the one session", len(keys))
				}
				check("after DeleteUser")
				mustCreate(t, s, alice, rec)
				if n, err := ix.DeleteAll(ctx); err != nil || n != 1 {
					t.Fatalf("DeleteAll = %d, %v; want the one session", n, err)
				}
				check("after DeleteAll")
				mustCreate(t, s, alice, rec)
			}
			if err := s.Delete(ctx, alice); err != nil {
				t.Fatal(err)
			}
			check("after the session's Delete")
			if c, ok := s.(sessionstore.Claimer); ok {
				for _, name := range names[:1] {
					claimKey := sessionstore.ClaimKey(name)
					if won, err := c.Claim(ctx, claimKey, time.Now().Add(time.Minute)); err != nil || !won {
						t.Fatalf("Claim = %v, %v", won, err)
					}
					if err := c.Release(ctx, claimKey); err != nil {
						t.Fatal(err)
					}
				}
				check("after claims")
			}
			if sw, ok := s.(interface {
				Sweep(time.Time) (int, error)
			}); ok {
				// A sweep from far in the future: everything with an
				// expiry has expired; the vault has none.
				if _, err := sw.Sweep(time.Now().Add(100 * 365 * 24 * time.Hour)); err != nil {
					t.Fatal(err)
				}
				check("after a sweep")
			}
		},
		"vault: another instance on the same store sees a swap at once": func(t *testing.T, s sessionstore.Store) {
			if b.Share == nil {
				t.Skip("the backend is one process's: no other instance shares it")
			}
			v, other := vault(t, s), vault(t, b.Share(t, s))
			mustSwap(t, v, "shared", nil, []byte("one"))
			// Read on the other first: a store that kept what it read
			// would then answer from its copy.
			if got := mustVaultGet(t, other, "shared"); string(got) != "one" {
				t.Fatalf("the other instance reads %q", got)
			}
			if !mustSwap(t, v, "shared", []byte("one"), []byte("two")) {
				t.Fatal("swap lost")
			}
			if got := mustVaultGet(t, other, "shared"); string(got) != "two" {
				t.Fatalf("the other instance reads %q after a swap, want two", got)
			}
			if mustSwap(t, other, "shared", []byte("one"), []byte("three")) {
				t.Fatal("the other instance swapped from a value that is gone")
			}
			if !mustSwap(t, other, "shared", []byte("two"), nil) {
				t.Fatal("the other instance could not delete")
			}
			if got := mustVaultGet(t, v, "shared"); got != nil {
				t.Fatalf("after a delete elsewhere: %q", got)
			}
		},
		"vault: concurrent compare-and-swap increments lose nothing": func(t *testing.T, s sessionstore.Store) {
			vs := []sessionstore.Vault{vault(t, s)}
			if b.Share != nil {
				vs = append(vs, vault(t, b.Share(t, s)))
			}
			const perWriter, writers = 10, 8
			var wg sync.WaitGroup
			for _, v := range vs {
				for range writers {
					wg.Go(func() {
						for range perWriter {
							if err := increment(ctx, v, "counter"); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			want := len(vs) * writers * perWriter
			if got := mustVaultGet(t, vs[0], "counter"); string(got) != strconv.Itoa(want) {
				t.Fatalf("counter = %s after %d increments", got, want)
			}
		},
		"vault: cancelled context is an error and changes nothing": func(t *testing.T, s sessionstore.Store) {
			v := vault(t, s)
			mustSwap(t, v, "n", nil, []byte("one"))
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := v.VaultGet(cctx, "n"); err == nil {
				t.Error("VaultGet with a cancelled context returned no error")
			}
			if ok, err := v.VaultSwap(cctx, "n", []byte("one"), []byte("two")); ok || err == nil {
				t.Errorf("VaultSwap with a cancelled context = %v, %v", ok, err)
			}
			if got := mustVaultGet(t, v, "n"); string(got) != "one" {
				t.Fatalf("after a cancelled swap: %q", got)
			}
		},
	}
}

// increment adds one to the decimal number stored under name in v, as
// every user of a vault does: read, change, swap, and again on a lost race.
func increment(ctx context.Context, v sessionstore.Vault, name string) error {
	for {
		old, err := v.VaultGet(ctx, name)
		if err != nil {
			return err
		}
		n := 0
		if old != nil {
			if n, err = strconv.Atoi(string(old)); err != nil {
				return err
			}
		}
		ok, err := v.VaultSwap(ctx, name, old, []byte(strconv.Itoa(n+1)))
		if err != nil || ok {
			return err
		}
	}
}

// VaultIncrement is increment, for a store's own tests (two Redis clients).
func VaultIncrement(ctx context.Context, v sessionstore.Vault, name string) error {
	return increment(ctx, v, name)
}

func mustVaultGet(t *testing.T, v sessionstore.Vault, name string) []byte {
	t.Helper()
	got, err := v.VaultGet(context.Background(), name)
	if err != nil {
		t.Fatalf("VaultGet(%q): %v", name, err)
	}
	return got
}

func mustSwap(t *testing.T, v sessionstore.Vault, name string, old, value []byte) bool {
	t.Helper()
	ok, err := v.VaultSwap(context.Background(), name, old, value)
	if err != nil {
		t.Fatalf("VaultSwap(%q): %v", name, err)
	}
	return ok
}
