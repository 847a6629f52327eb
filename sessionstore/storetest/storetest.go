// Package storetest is the conformance suite that every sessionstore.Store
// runs. A new backend is added by implementing the interface and calling
// Run from its tests.
package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
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
	// Share returns another store over the same data as s (another
	// instance of a shared store), for the tests of what every instance
	// must see. Nil for a store that only one process holds.
	Share func(t *testing.T, s sessionstore.Store) sessionstore.Store
	// NoUserIndex says that the store does not implement
	// sessionstore.UserIndex: its tests are skipped rather than failed.
	NoUserIndex bool
}

// Records returns sessions every store must keep and give back unchanged:
// empty, user-only, every identity field, Unicode, many keys and a large
// value. Codecs that are not a Store (the cookie codec) run these too.
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
		"identity":  identity(with("alice", map[string]string{"role": "admin"})),
		"identity unicode": func() sessionstore.Record {
			r := with("zoë", nil)
			r.Source, r.Fingerprint, r.Site = "oidc:företag", "ø", "xn--bcher-kva.example"
			r.Groups = []string{"ädmins", "", "日本"}
			r.ClientIP, r.UserAgent = "2001:db8::1", "Mozilla/5.0 (X11; Linux) “quoted” ✓"
			return r
		}(),
		"amr": func() sessionstore.Record {
			r := identity(with("alice", map[string]string{"k": "v"}))
			r.Amr = []string{"pwd", "otp", "mfa"}
			return r
		}(),
		"amr alone": func() sessionstore.Record {
			r := with("bob", nil)
			r.Amr = []string{"hwk"}
			return r
		}(),
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
		"update sets and deletes keys": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(now, "alice", map[string]string{"a": "1", "b": "2", "c": "3"})
			mustCreate(t, s, key, rec)
			got := mustUpdate(t, s, key, sessionstore.Change{Delete: []string{"a", "missing"}, Set: map[string]string{"b": "20", "d": "4"}})
			want := rec
			want.Data = map[string]string{"b": "20", "c": "3", "d": "4"}
			assertEqual(t, "returned by Update", got, want)
			assertEqual(t, "after Update", mustFind(t, s, key), want)
		},
		"update deletes before it sets": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", map[string]string{"k": "old"}))
			mustUpdate(t, s, key, sessionstore.Change{Delete: []string{"k"}, Set: map[string]string{"k": "new"}})
			if got := mustFind(t, s, key).Data; !maps.Equal(got, map[string]string{"k": "new"}) {
				t.Fatalf("data %v, want k=new", got)
			}
			mustUpdate(t, s, key, sessionstore.Change{Delete: []string{"k"}})
			if got := mustFind(t, s, key).Data; len(got) != 0 {
				t.Fatalf("data %v after deleting the last key, want none", got)
			}
		},
		"updates apply to the stored record, not a loaded copy": func(t *testing.T, s sessionstore.Store) {
			// Two requests load the session, then each sets its own key:
			// with whole-record write-back the second would drop the first's.
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", map[string]string{"a": "1"}))
			mustFind(t, s, key)
			mustFind(t, s, key)
			mustUpdate(t, s, key, sessionstore.Change{Set: map[string]string{"b": "2"}})
			mustUpdate(t, s, key, sessionstore.Change{Set: map[string]string{"c": "3"}})
			if got, want := mustFind(t, s, key).Data, map[string]string{"a": "1", "b": "2", "c": "3"}; !maps.Equal(got, want) {
				t.Fatalf("data %v, want %v", got, want)
			}
		},
		"a deleted key is not brought back by a later update": func(t *testing.T, s sessionstore.Store) {
			// A fast request demotes the user; a slow one that loaded the
			// session before then sets another key. The demotion stands.
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", map[string]string{"role": "admin", "cart": "apple"}))
			mustFind(t, s, key) // the slow request's load
			mustUpdate(t, s, key, sessionstore.Change{Delete: []string{"role"}})
			got := mustUpdate(t, s, key, sessionstore.Change{Set: map[string]string{"cart": "pear"}, Seen: now.Add(time.Second)})
			for what, rec := range map[string]sessionstore.Record{"returned": got, "stored": mustFind(t, s, key)} {
				if _, ok := rec.Data["role"]; ok || rec.Data["cart"] != "pear" {
					t.Fatalf("%s data %v: want the demotion kept and cart=pear", what, rec.Data)
				}
			}
		},
		"seen and expires never move backwards": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(now, "alice", nil)
			mustCreate(t, s, key, rec)
			want := rec
			check := func(what string, ch sessionstore.Change) {
				t.Helper()
				assertEqual(t, what+" (returned)", mustUpdate(t, s, key, ch), want)
				assertEqual(t, what+" (stored)", mustFind(t, s, key), want)
			}
			check("earlier times", sessionstore.Change{Seen: now.Add(-time.Hour), Expires: now.Add(time.Minute)})
			want.LastSeen, want.Expires = now.Add(time.Minute), now.Add(2*time.Hour)
			check("later times", sessionstore.Change{Seen: want.LastSeen, Expires: want.Expires})
			check("earlier again", sessionstore.Change{Seen: now, Expires: now.Add(time.Hour)})
			want.LastSeen = now.Add(2 * time.Minute)
			check("seen only", sessionstore.Change{Seen: want.LastSeen})
			want.Data = map[string]string{"k": "v"}
			check("data only", sessionstore.Change{Set: want.Data})
		},
		"update never changes identity or creation": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := identity(record(now, "alice", map[string]string{"role": "admin"}))
			mustCreate(t, s, key, rec)
			ch := sessionstore.Change{Delete: []string{"role"}, Set: map[string]string{"user": "mallory", "source": "x"}, Seen: now.Add(time.Minute), Expires: now.Add(2 * time.Hour)}
			got := mustUpdate(t, s, key, ch)
			want := rec.Apply(ch)
			assertEqual(t, "returned by Update", got, want)
			assertEqual(t, "after Update", mustFind(t, s, key), want)
			if err := Diff(withoutChanges(got), withoutChanges(rec)); err != nil {
				t.Fatalf("Update changed identity: %v", err)
			}
		},
		"empty change reports found and changes nothing": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := identity(record(now, "alice", map[string]string{"k": "v"}))
			mustCreate(t, s, key, rec)
			got, found, err := s.Update(ctx, key, sessionstore.Change{})
			if err != nil || !found {
				t.Fatalf("Update(existing, empty) = %v, %v; want true, nil", found, err)
			}
			assertEqual(t, "returned by Update", got, rec)
			assertEqual(t, "after Update", mustFind(t, s, key), rec)
			missing := sessionstore.KeyOf(sessionstore.NewID())
			if _, found, err := s.Update(ctx, missing, sessionstore.Change{}); err != nil || found {
				t.Fatalf("Update(missing, empty) = %v, %v; want false, nil", found, err)
			}
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
			_, found, err := s.Update(ctx, key, everything(now))
			if err != nil || found {
				t.Fatalf("Update(missing) = %v, %v; want false, nil", found, err)
			}
			if _, found, _ := s.Find(ctx, key); found {
				t.Fatal("Update of a missing key created it")
			}
		},
		"delete then update does not resurrect": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, key, record(now, "alice", nil))
			mustFind(t, s, key) // a request in flight loaded it
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, found, err := s.Find(ctx, key); found || err != nil {
				t.Fatalf("Find after Delete = %v, %v", found, err)
			}
			_, found, err := s.Update(ctx, key, everything(now))
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
		"expiry: not found, not updated, kept or extended by update": func(t *testing.T, s sessionstore.Store) {
			short := func() sessionstore.Record {
				rec := record(time.Now(), "alice", nil)
				rec.Expires = time.Now().Add(1200 * time.Millisecond)
				return rec
			}
			// expired is left alone; touched gets data but keeps its
			// expiry; extended is given a later one.
			expired, touched, extended := sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID())
			for _, k := range []sessionstore.Key{expired, touched, extended} {
				mustCreate(t, s, k, short())
			}
			mustUpdate(t, s, touched, sessionstore.Change{Set: map[string]string{"k": "v"}, Seen: time.Now()})
			mustUpdate(t, s, extended, sessionstore.Change{Set: map[string]string{"k": "v"}, Expires: time.Now().Add(time.Hour)})
			time.Sleep(1500 * time.Millisecond)
			for name, k := range map[string]sessionstore.Key{"untouched": expired, "updated without a new expiry": touched} {
				if _, found, err := s.Find(ctx, k); found || err != nil {
					t.Fatalf("Find after expiry (%s) = %v, %v; want false, nil", name, found, err)
				}
				if _, found, err := s.Update(ctx, k, everything(time.Now())); found || err != nil {
					t.Fatalf("Update after expiry (%s) = %v, %v; want false, nil", name, found, err)
				}
				if _, found, _ := s.Find(ctx, k); found {
					t.Fatalf("an expired session (%s) came back after Update", name)
				}
			}
			if got := mustFind(t, s, extended); got.Data["k"] != "v" {
				t.Fatalf("extended session holds %v", got.Data)
			}
		},
		"cancelled context is an error, not a miss, and loses nothing": func(t *testing.T, s sessionstore.Store) {
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(now, "alice", map[string]string{"k": "v"})
			mustCreate(t, s, key, rec)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, _, err := s.Find(cctx, key); err == nil {
				t.Error("Find with a cancelled context returned no error")
			}
			if _, _, err := s.Update(cctx, key, everything(now)); err == nil {
				t.Error("Update with a cancelled context returned no error")
			}
			if _, _, err := s.Update(cctx, key, sessionstore.Change{}); err == nil {
				t.Error("Update (empty change) with a cancelled context returned no error")
			}
			if err := s.Delete(cctx, key); err == nil {
				t.Error("Delete with a cancelled context returned no error")
			}
			if err := s.Create(cctx, sessionstore.KeyOf(sessionstore.NewID()), rec); err == nil {
				t.Error("Create with a cancelled context returned no error")
			}
			// Nothing the failed calls did may lose or change the session.
			assertEqual(t, "after cancelled calls", mustFind(t, s, key), rec)
		},
		"concurrent updates all take effect": func(t *testing.T, s sessionstore.Store) {
			// Every writer sets its own key on one shared session (and
			// counts rounds on a session of its own); none may be lost.
			const writers, rounds = 16, 8
			shared := sessionstore.KeyOf(sessionstore.NewID())
			base := record(now, "shared", map[string]string{"doomed": "x"})
			mustCreate(t, s, shared, base)
			own := make([]sessionstore.Key, writers)
			for i := range own {
				own[i] = sessionstore.KeyOf(sessionstore.NewID())
				mustCreate(t, s, own[i], record(now, fmt.Sprint("user", i), nil))
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() {
					for r := range rounds {
						ch := sessionstore.Change{
							Set:     map[string]string{fmt.Sprintf("w%d-%d", i, r): "1"},
							Seen:    now.Add(time.Duration(i*rounds+r) * time.Millisecond),
							Expires: now.Add(time.Hour + time.Duration(r)*time.Second),
						}
						if i == 0 && r == 0 {
							ch.Delete = []string{"doomed"}
						}
						if _, found, err := s.Update(ctx, shared, ch); err != nil || !found {
							errs <- fmt.Errorf("writer %d: Update(shared) = %v, %v", i, found, err)
							return
						}
						if _, found, err := s.Update(ctx, own[i], sessionstore.Change{Set: map[string]string{"round": fmt.Sprint(r)}}); err != nil || !found {
							errs <- fmt.Errorf("writer %d: Update(own) = %v, %v", i, found, err)
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
			want := base
			want.Data = map[string]string{}
			for i := range writers {
				for r := range rounds {
					want.Data[fmt.Sprintf("w%d-%d", i, r)] = "1"
				}
			}
			want.LastSeen = now.Add(time.Duration(writers*rounds-1) * time.Millisecond)
			want.Expires = now.Add(time.Hour + (rounds-1)*time.Second)
			assertEqual(t, "shared session", mustFind(t, s, shared), want)
			for i, k := range own {
				if got := mustFind(t, s, k); got.User != fmt.Sprint("user", i) || got.Data["round"] != fmt.Sprint(rounds-1) {
					t.Errorf("writer %d: got %+v, want its last round", i, got)
				}
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
	maps.Copy(tests, indexTests(b, now))
	maps.Copy(tests, claimTests(b))
	maps.Copy(tests, vaultTests(b))
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, b.New(t))
		})
	}
}
