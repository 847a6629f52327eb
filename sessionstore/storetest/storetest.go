// Package storetest is the conformance suite that every sessionstore.Store
// runs. A new backend is added by implementing the interface and calling
// Run from its tests.
package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// Backend describes the store under test.
type Backend struct {
	// New returns an empty store. It is called once per subtest.
	New func(t *testing.T) sessionstore.Store
	// AtRest returns every byte the store holds (file contents, every key
	// and value), so the suite can check that no session ID is kept. Nil
	// skips that check.
	AtRest func(t *testing.T, s sessionstore.Store) []byte
	// MaxValue is the largest data value the store must round-trip; 0
	// means 1 MiB.
	MaxValue int
}

// Records returns sessions every store must keep and give back unchanged:
// empty, user-only, Unicode, many keys and a large value. Codecs that are
// not a Store (the cookie codec) run these too.
func Records(now time.Time, maxValue int) map[string]sessionstore.Record {
	base := sessionstore.Record{Created: now.Add(-time.Minute), LastSeen: now, Expires: now.Add(time.Hour)}
	with := func(user string, data map[string]string) sessionstore.Record {
		r := base
		r.User, r.Data = user, data
		return r
	}
	many := map[string]string{}
	for i := range 100 {
		many[fmt.Sprintf("key-%d", i)] = strings.Repeat("v", i)
	}
	return map[string]sessionstore.Record{
		"empty":     with("", nil),
		"user only": with("alice", nil),
		"unicode":   with("zoë 日本", map[string]string{"greeting": "héllo wörld ✓ 🎉", "empty": ""}),
		"many keys": with("bob", many),
		"large":     with("carol", map[string]string{"blob": strings.Repeat("x", maxValue)}),
	}
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	if b.MaxValue == 0 {
		b.MaxValue = 1 << 20
	}
	ctx := context.Background()
	now := time.Now()
	tests := map[string]func(t *testing.T, s sessionstore.Store){
		"missing key is not found and not an error": func(t *testing.T, s sessionstore.Store) {
			_, found, err := s.Find(ctx, sessionstore.KeyOf(sessionstore.NewID()))
			if err != nil || found {
				t.Fatalf("Find(missing) = found %v, err %v; want false, nil", found, err)
			}
		},
		"records round-trip": func(t *testing.T, s sessionstore.Store) {
			for name, rec := range Records(now, b.MaxValue) {
				key := sessionstore.KeyOf(sessionstore.NewID())
				if err := s.Create(ctx, key, rec); err != nil {
					t.Fatalf("%s: Create: %v", name, err)
				}
				got := mustFind(t, s, key)
				assertEqual(t, name, got, rec)
			}
		},
		"update overwrites": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(now, "alice", map[string]string{"a": "1", "b": "2"})
			mustCreate(t, s, key, rec)
			rec2 := record(now, "alice", map[string]string{"b": "3"})
			rec2.LastSeen = now.Add(time.Second)
			found, err := s.Update(ctx, key, rec2)
			if err != nil || !found {
				t.Fatalf("Update(existing) = %v, %v; want true, nil", found, err)
			}
			assertEqual(t, "after update", mustFind(t, s, key), rec2)
		},
		"create overwrites": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", nil))
			rec2 := record(now, "bob", nil)
			mustCreate(t, s, key, rec2)
			assertEqual(t, "after second create", mustFind(t, s, key), rec2)
		},
		"update of missing key writes nothing": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			found, err := s.Update(ctx, key, record(now, "mallory", nil))
			if err != nil || found {
				t.Fatalf("Update(missing) = %v, %v; want false, nil", found, err)
			}
			if _, found, _ := s.Find(ctx, key); found {
				t.Fatal("Update of a missing key created it")
			}
		},
		"delete then update does not resurrect": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(now, "alice", nil)
			mustCreate(t, s, key, rec)
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, found, err := s.Find(ctx, key); found || err != nil {
				t.Fatalf("Find after Delete = %v, %v", found, err)
			}
			found, err := s.Update(ctx, key, rec)
			if err != nil || found {
				t.Fatalf("Update after Delete = %v, %v; want false, nil", found, err)
			}
			if _, found, _ := s.Find(ctx, key); found {
				t.Fatal("a deleted session came back after Update")
			}
		},
		"delete of missing key is not an error": func(t *testing.T, s sessionstore.Store) {
			if err := s.Delete(ctx, sessionstore.KeyOf(sessionstore.NewID())); err != nil {
				t.Fatal(err)
			}
		},
		"expired record is not found and not updated": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(time.Now(), "alice", nil)
			rec.Expires = time.Now().Add(1200 * time.Millisecond)
			mustCreate(t, s, key, rec)
			mustFind(t, s, key)
			time.Sleep(1500 * time.Millisecond)
			if _, found, err := s.Find(ctx, key); found || err != nil {
				t.Fatalf("Find after expiry = %v, %v; want false, nil", found, err)
			}
			rec.Expires = time.Now().Add(time.Hour)
			if found, err := s.Update(ctx, key, rec); found || err != nil {
				t.Fatalf("Update after expiry = %v, %v; want false, nil", found, err)
			}
			if _, found, _ := s.Find(ctx, key); found {
				t.Fatal("an expired session came back after Update")
			}
		},
		"cancelled context is an error, not a miss": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", nil))
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, _, err := s.Find(cctx, key); err == nil {
				t.Error("Find with a cancelled context returned no error")
			}
			if _, err := s.Update(cctx, key, record(now, "x", nil)); err == nil {
				t.Error("Update with a cancelled context returned no error")
			}
			if err := s.Delete(cctx, key); err == nil {
				t.Error("Delete with a cancelled context returned no error")
			}
			// Nothing the failed calls did may lose the session.
			assertEqual(t, "after cancelled calls", mustFind(t, s, key), record(now, "alice", nil))
		},
		"concurrent writers": func(t *testing.T, s sessionstore.Store) {
			const writers, rounds = 8, 25
			keys := make([]sessionstore.Key, writers)
			for i := range keys {
				keys[i] = sessionstore.KeyOf(sessionstore.NewID())
				mustCreate(t, s, keys[i], record(now, fmt.Sprint("user", i), nil))
			}
			shared := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, shared, record(now, "shared", nil))
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() {
					for r := range rounds {
						rec := record(now, fmt.Sprint("user", i), map[string]string{"round": fmt.Sprint(r)})
						if _, err := s.Update(ctx, keys[i], rec); err != nil {
							errs <- err
							return
						}
						if _, err := s.Update(ctx, shared, record(now, "shared", map[string]string{"w": fmt.Sprint(i)})); err != nil {
							errs <- err
							return
						}
						if _, _, err := s.Find(ctx, shared); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for i, k := range keys {
				got := mustFind(t, s, k)
				if got.User != fmt.Sprint("user", i) || got.Data["round"] != fmt.Sprint(rounds-1) {
					t.Errorf("writer %d: got %+v, want its last round", i, got)
				}
			}
			if got := mustFind(t, s, shared); got.User != "shared" || len(got.Data["w"]) == 0 {
				t.Errorf("shared key holds %+v, want one writer's whole record", got)
			}
		},
		"lists live sessions (Lister)": func(t *testing.T, s sessionstore.Store) {
			l, ok := s.(sessionstore.Lister)
			if !ok {
				return // an optional power; nothing to check
			}
			live, gone, expired := sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, live, record(now, "alice", nil))
			mustCreate(t, s, gone, record(now, "bob", nil))
			old := record(now, "carol", nil)
			old.Expires = time.Now().Add(-time.Second)
			mustCreate(t, s, expired, old)
			s.Delete(ctx, gone)
			seen := map[sessionstore.Key]string{}
			if err := l.Each(ctx, func(k sessionstore.Key, r sessionstore.Record) bool { seen[k] = r.User; return true }); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 1 || seen[live] != "alice" {
				t.Fatalf("Each saw %v, want only the live session", seen)
			}
		},
		"only hashed keys at rest": func(t *testing.T, s sessionstore.Store) {
			if b.AtRest == nil {
				t.Fatal("the backend gives no view of its data at rest (Backend.AtRest)")
			}
			id := sessionstore.NewID()
			mustCreate(t, s, sessionstore.KeyOf(id), record(now, "alice", map[string]string{"k": "v"}))
			rest := b.AtRest(t, s)
			if !bytes.Contains(rest, []byte("alice")) {
				t.Fatal("AtRest does not show the stored record; the check below would prove nothing")
			}
			for _, form := range [][]byte{id[:], []byte(hex.EncodeToString(id[:])), []byte(base64.RawURLEncoding.EncodeToString(id[:])), []byte(base64.StdEncoding.EncodeToString(id[:]))} {
				if bytes.Contains(rest, form) {
					t.Fatalf("the session ID is stored at rest (%q)", form)
				}
			}
		},
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, b.New(t))
		})
	}
}

func record(now time.Time, user string, data map[string]string) sessionstore.Record {
	return sessionstore.Record{User: user, Data: data, Created: now.Add(-time.Minute), LastSeen: now, Expires: now.Add(time.Hour)}
}

func mustCreate(t *testing.T, s sessionstore.Store, key sessionstore.Key, rec sessionstore.Record) {
	t.Helper()
	if err := s.Create(context.Background(), key, rec); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func mustFind(t *testing.T, s sessionstore.Store, key sessionstore.Key) sessionstore.Record {
	t.Helper()
	rec, found, err := s.Find(context.Background(), key)
	if err != nil || !found {
		t.Fatalf("Find = found %v, err %v; want the record", found, err)
	}
	return rec
}

// assertEqual compares records; times to the nanosecond, nil and empty
// maps alike.
func assertEqual(t *testing.T, what string, got, want sessionstore.Record) {
	t.Helper()
	if err := Diff(got, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Diff returns an error describing how got differs from want, or nil.
func Diff(got, want sessionstore.Record) error {
	switch {
	case got.User != want.User:
		return fmt.Errorf("user %q, want %q", got.User, want.User)
	case !got.Created.Equal(want.Created), !got.LastSeen.Equal(want.LastSeen), !got.Expires.Equal(want.Expires):
		return fmt.Errorf("times %v/%v/%v, want %v/%v/%v", got.Created, got.LastSeen, got.Expires, want.Created, want.LastSeen, want.Expires)
	case len(got.Data) != len(want.Data) || !maps.Equal(got.Data, want.Data):
		return errors.New("data differs")
	}
	return nil
}
