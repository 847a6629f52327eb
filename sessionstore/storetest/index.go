package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// indexTests are the conformance tests of sessionstore.UserIndex. A store
// that does not implement it fails them, unless the backend says it has no
// index (Backend.NoUserIndex).
func indexTests(b Backend, now time.Time) map[string]func(t *testing.T, s sessionstore.Store) {
	ctx := context.Background()
	index := func(t *testing.T, s sessionstore.Store) sessionstore.UserIndex {
		t.Helper()
		ix, ok := s.(sessionstore.UserIndex)
		if !ok {
			if b.NoUserIndex {
				t.Skip("the backend has no index by user")
			}
			t.Fatalf("%T does not implement sessionstore.UserIndex", s)
		}
		return ix
	}
	return map[string]func(t *testing.T, s sessionstore.Store){
		"user index: lists a user's live sessions, of every realm, oldest first": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			var want []sessionstore.Key
			for i, realm := range []string{"", "site-b", ""} {
				k := sessionstore.RealmKey(realm, sessionstore.NewID())
				rec := identity(record(now, "alice", map[string]string{"n": fmt.Sprint(i)}))
				rec.Created = now.Add(time.Duration(i-10) * time.Minute)
				rec.Site = fmt.Sprintf("site-%d.example", i)
				mustCreate(t, s, k, rec)
				want = append(want, k)
			}
			gone := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, gone, record(now, "alice", nil))
			if err := s.Delete(ctx, gone); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, s, sessionstore.KeyOf(sessionstore.NewID()), record(now, "bob", nil))
			mustCreate(t, s, sessionstore.KeyOf(sessionstore.NewID()), record(now, "", map[string]string{"anonymous": "1"}))
			mustCreate(t, s, sessionstore.KeyOf(sessionstore.NewID()), record(now, "alice2", nil))
			mustCreate(t, s, sessionstore.KeyOf(sessionstore.NewID()), record(now, "Alice", nil))

			es := mustList(t, ix, "alice")
			if len(es) != len(want) {
				t.Fatalf("ListUser(alice) = %d sessions, want %d", len(es), len(want))
			}
			for i, e := range es {
				if e.Handle != want[i].Handle() {
					t.Fatalf("entry %d: handle %s, want %s (oldest first)", i, e.Handle, want[i].Handle())
				}
				assertEqual(t, fmt.Sprintf("entry %d", i), e.Record, mustFind(t, s, want[i]))
			}
			if es := mustList(t, ix, "bob"); len(es) != 1 || es[0].Record.User != "bob" {
				t.Fatalf("ListUser(bob) = %+v", es)
			}
			for _, user := range []string{"nobody", "", "alic", "ALICE"} {
				if es := mustList(t, ix, user); len(es) != 0 {
					t.Fatalf("ListUser(%q) = %d sessions, want none", user, len(es))
				}
			}
		},
		"user index: a user of one identity source is not a namesake of another": func(t *testing.T, s sessionstore.Store) {
			// edgesession names a provider's user <provider>:<name>, and
			// no local name has a ':': the index by user is then an index
			// by (source, name). Listing or revoking one never touches
			// the other's sessions, even with a handle of theirs.
			ix := index(t, s)
			made := map[string][]sessionstore.Key{}
			for i, u := range []struct{ user, source, realm string }{
				{"alice", "password", ""},
				{"corp:alice", "oidc:corp", ""},
				{"corp:alice", "oidc:corp", "site-b"},
				{"other:alice", "oidc:other", ""},
				{"alice:corp", "upstream", ""},
			} {
				k := sessionstore.RealmKey(u.realm, sessionstore.NewID())
				rec := identity(record(now, u.user, nil))
				rec.Source = u.source
				rec.Created = now.Add(time.Duration(i-10) * time.Minute)
				mustCreate(t, s, k, rec)
				made[u.user] = append(made[u.user], k)
			}
			for user, keys := range made {
				es := mustList(t, ix, user)
				if len(es) != len(keys) {
					t.Fatalf("ListUser(%q) = %d sessions, want %d", user, len(es), len(keys))
				}
				for i, e := range es {
					if e.Handle != keys[i].Handle() || e.Record.User != user {
						t.Fatalf("ListUser(%q) entry %d is %s of %q", user, i, e.Handle, e.Record.User)
					}
				}
			}
			if got := mustDeleteUser(t, ix, "alice", made["corp:alice"][0].Handle(), made["other:alice"][0].Handle()); len(got) != 0 {
				t.Fatalf("DeleteUser(alice) with handles of corp:alice and other:alice deleted %d", len(got))
			}
			if got := mustDeleteUser(t, ix, "corp:alice"); len(got) != 2 {
				t.Fatalf("DeleteUser(corp:alice) deleted %d, want 2", len(got))
			}
			for _, user := range []string{"alice", "other:alice", "alice:corp"} {
				mustFind(t, s, made[user][0])
			}
			if es := mustList(t, ix, "corp:alice"); len(es) != 0 {
				t.Fatalf("corp:alice still lists %d sessions", len(es))
			}
		},
		"user index: a create over another user's key moves it": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			k := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, k, record(now, "alice", nil))
			mustCreate(t, s, k, record(now, "bob", nil))
			if es := mustList(t, ix, "alice"); len(es) != 0 {
				t.Fatalf("alice still lists a session that is bob's: %+v", es)
			}
			if es := mustList(t, ix, "bob"); len(es) != 1 || es[0].Handle != k.Handle() {
				t.Fatalf("ListUser(bob) = %+v", es)
			}
			if keys := mustDeleteUser(t, ix, "alice"); len(keys) != 0 {
				t.Fatalf("DeleteUser(alice) deleted %d of bob's sessions", len(keys))
			}
			mustFind(t, s, k)
		},
		"user index: an update keeps the session listed, with its new times": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			k := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, k, record(now, "alice", nil))
			got := mustUpdate(t, s, k, sessionstore.Change{Set: map[string]string{"k": "v"}, Seen: now.Add(time.Minute), Expires: now.Add(3 * time.Hour)})
			es := mustList(t, ix, "alice")
			if len(es) != 1 {
				t.Fatalf("ListUser = %d sessions, want 1", len(es))
			}
			assertEqual(t, "listed", es[0].Record, got)
		},
		"user index: sessions leave it as they expire": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			short := func() sessionstore.Record {
				rec := record(time.Now(), "alice", nil)
				rec.Expires = time.Now().Add(1200 * time.Millisecond)
				return rec
			}
			expiring, extended := sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, expiring, short())
			mustCreate(t, s, extended, short())
			mustUpdate(t, s, extended, sessionstore.Change{Seen: time.Now(), Expires: time.Now().Add(time.Hour)})
			if es := mustList(t, ix, "alice"); len(es) != 2 {
				t.Fatalf("before expiry: %d sessions, want 2", len(es))
			}
			time.Sleep(1500 * time.Millisecond)
			es := mustList(t, ix, "alice")
			if len(es) != 1 || es[0].Handle != extended.Handle() {
				t.Fatalf("after expiry: %+v, want only the extended session", es)
			}
			// An expired session is not revoked (it is gone already), nor
			// brought back.
			keys := mustDeleteUser(t, ix, "alice", expiring.Handle())
			if len(keys) != 0 {
				t.Fatalf("DeleteUser(expired) reports %d deleted", len(keys))
			}
			if _, found, _ := s.Find(ctx, expiring); found {
				t.Fatal("an expired session came back")
			}
			mustFind(t, s, extended)
		},
		"user index: revokes one session, then all of a user's, and no one else's": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			var alice []sessionstore.Key
			for i := range 4 {
				k := sessionstore.RealmKey([]string{"", "r"}[i%2], sessionstore.NewID())
				mustCreate(t, s, k, record(now, "alice", nil))
				alice = append(alice, k)
			}
			bob := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, bob, record(now, "bob", nil))
			anon := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, anon, record(now, "", nil))

			// One, by its handle.
			if keys := mustDeleteUser(t, ix, "alice", alice[1].Handle()); !slices.Equal(keys, alice[1:2]) {
				t.Fatalf("DeleteUser(alice, one) = %v, want %v", keys, alice[1:2])
			}
			if _, found, _ := s.Find(ctx, alice[1]); found {
				t.Fatal("the revoked session is still found")
			}
			if es := mustList(t, ix, "alice"); len(es) != 3 {
				t.Fatalf("%d sessions left, want 3", len(es))
			}
			// Handles that name nothing of alice's: skipped.
			var unknown sessionstore.Handle
			for _, h := range []sessionstore.Handle{unknown, bob.Handle(), anon.Handle(), alice[1].Handle()} {
				if keys := mustDeleteUser(t, ix, "alice", h); len(keys) != 0 {
					t.Fatalf("DeleteUser(alice, %s) deleted %v", h, keys)
				}
			}
			if keys := mustDeleteUser(t, ix, "", anon.Handle()); len(keys) != 0 {
				t.Fatal(`DeleteUser("") deleted an anonymous session`)
			}
			// Two at once, then the rest.
			if keys := mustDeleteUser(t, ix, "alice", alice[0].Handle(), alice[3].Handle()); len(keys) != 2 {
				t.Fatalf("DeleteUser(alice, two) = %v", keys)
			}
			if keys := mustDeleteUser(t, ix, "alice"); !slices.Equal(keys, alice[2:3]) {
				t.Fatalf("DeleteUser(alice) = %v, want %v", keys, alice[2:3])
			}
			for _, k := range alice {
				if _, found, _ := s.Find(ctx, k); found {
					t.Fatal("a revoked session is still found")
				}
			}
			if es := mustList(t, ix, "alice"); len(es) != 0 {
				t.Fatalf("after revoking all: %d sessions listed", len(es))
			}
			mustFind(t, s, bob)
			mustFind(t, s, anon)
			if keys := mustDeleteUser(t, ix, "alice"); len(keys) != 0 {
				t.Fatalf("DeleteUser of a user with no sessions = %v", keys)
			}
		},
		"user index: a revoked session never comes back through an update in flight": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			// In sequence: loaded, revoked, then written back.
			k := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, k, record(now, "alice", nil))
			mustFind(t, s, k)
			mustDeleteUser(t, ix, "alice")
			if _, found, err := s.Update(ctx, k, everything(now)); found || err != nil {
				t.Fatalf("Update after DeleteUser = %v, %v; want false, nil", found, err)
			}
			if _, found, _ := s.Find(ctx, k); found {
				t.Fatal("a revoked session came back after Update")
			}
			// At once: writers keep updating while the user is revoked.
			var keys []sessionstore.Key
			for range 8 {
				k := sessionstore.KeyOf(sessionstore.NewID())
				mustCreate(t, s, k, record(now, "alice", nil))
				keys = append(keys, k)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i, k := range keys {
				wg.Go(func() {
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						ch := sessionstore.Change{Set: map[string]string{"n": fmt.Sprint(n)}, Seen: time.Now(), Expires: time.Now().Add(time.Duration(2+i) * time.Hour)}
						if _, found, err := s.Update(ctx, k, ch); err != nil || !found {
							return
						}
					}
				})
			}
			time.Sleep(20 * time.Millisecond)
			deleted := mustDeleteUser(t, ix, "alice")
			for _, k := range keys {
				if _, found, _ := s.Find(ctx, k); found {
					t.Error("a session is found right after DeleteUser returned")
				}
			}
			time.Sleep(20 * time.Millisecond)
			close(stop)
			wg.Wait()
			if len(deleted) != len(keys) {
				t.Errorf("DeleteUser deleted %d sessions, want %d", len(deleted), len(keys))
			}
			for _, k := range keys {
				if _, found, _ := s.Find(ctx, k); found {
					t.Fatal("a revoked session came back through an update in flight")
				}
			}
			if es := mustList(t, ix, "alice"); len(es) != 0 {
				t.Fatalf("%d sessions listed after revocation", len(es))
			}
		},
		"user index: delete all, of every user and anonymous": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			var keys []sessionstore.Key
			for i, user := range []string{"alice", "alice", "bob", "", "carol"} {
				k := sessionstore.RealmKey(fmt.Sprint(i%2), sessionstore.NewID())
				mustCreate(t, s, k, record(now, user, nil))
				keys = append(keys, k)
			}
			mustFind(t, s, keys[0]) // a request in flight
			n, err := ix.DeleteAll(ctx)
			if err != nil || n != len(keys) {
				t.Fatalf("DeleteAll = %d, %v; want %d, nil", n, err, len(keys))
			}
			if _, found, _ := s.Update(ctx, keys[0], everything(now)); found {
				t.Fatal("Update found a session after DeleteAll")
			}
			for _, k := range keys {
				if _, found, _ := s.Find(ctx, k); found {
					t.Fatal("a session is found after DeleteAll")
				}
			}
			for _, user := range []string{"alice", "bob", "carol"} {
				if es := mustList(t, ix, user); len(es) != 0 {
					t.Fatalf("ListUser(%s) after DeleteAll = %d sessions", user, len(es))
				}
			}
			// The store and its index work on afterwards.
			k := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, k, record(now, "alice", nil))
			if es := mustList(t, ix, "alice"); len(es) != 1 || es[0].Handle != k.Handle() {
				t.Fatalf("after DeleteAll a new session is listed as %+v", es)
			}
			if n, err := ix.DeleteAll(ctx); err != nil || n != 1 {
				t.Fatalf("second DeleteAll = %d, %v; want 1, nil", n, err)
			}
		},
		"user index: concurrent logins, logouts and lists keep it exact": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			const writers, rounds = 8, 12
			kept := make([][]sessionstore.Key, writers)
			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for i := range writers {
				wg.Go(func() {
					for r := range rounds {
						k := sessionstore.KeyOf(sessionstore.NewID())
						if err := s.Create(ctx, k, record(now, "alice", map[string]string{"w": fmt.Sprint(i)})); err != nil {
							errs <- err
							return
						}
						if r%3 == 0 {
							if err := s.Delete(ctx, k); err != nil {
								errs <- err
								return
							}
							continue
						}
						kept[i] = append(kept[i], k)
					}
				})
			}
			wg.Go(func() {
				for range rounds {
					es, err := ix.ListUser(ctx, "alice")
					if err != nil {
						errs <- err
						return
					}
					for _, e := range es {
						if e.Record.User != "alice" {
							errs <- fmt.Errorf("ListUser(alice) lists a session of %q", e.Record.User)
							return
						}
					}
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			var want []sessionstore.Handle
			for _, ks := range kept {
				for _, k := range ks {
					want = append(want, k.Handle())
				}
			}
			var got []sessionstore.Handle
			for _, e := range mustList(t, ix, "alice") {
				got = append(got, e.Handle)
			}
			cmp := func(a, b sessionstore.Handle) int { return slices.Compare(a[:], b[:]) }
			slices.SortFunc(want, cmp)
			slices.SortFunc(got, cmp)
			if !slices.Equal(got, want) {
				t.Fatalf("ListUser lists %d sessions, want the %d kept", len(got), len(want))
			}
			if keys := mustDeleteUser(t, ix, "alice"); len(keys) != len(want) {
				t.Fatalf("DeleteUser deleted %d, want %d", len(keys), len(want))
			}
		},
		"user index: cancelled context is an error": func(t *testing.T, s sessionstore.Store) {
			ix := index(t, s)
			k := sessionstore.KeyOf(sessionstore.NewID())
			mustCreate(t, s, k, record(now, "alice", nil))
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := ix.ListUser(cctx, "alice"); err == nil {
				t.Error("ListUser with a cancelled context returned no error")
			}
			if _, err := ix.DeleteUser(cctx, "alice"); err == nil {
				t.Error("DeleteUser with a cancelled context returned no error")
			}
			if _, err := ix.DeleteAll(cctx); err == nil {
				t.Error("DeleteAll with a cancelled context returned no error")
			}
			mustFind(t, s, k)
			if es := mustList(t, ix, "alice"); len(es) != 1 {
				t.Fatalf("after cancelled calls: %d sessions listed, want 1", len(es))
			}
		},
	}
}
