package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// claimTests are the conformance tests of sessionstore.Claimer, which every
// server-side store implements.
func claimTests(b Backend) map[string]func(t *testing.T, s sessionstore.Store) {
	ctx := context.Background()
	claimer := func(t *testing.T, s sessionstore.Store) sessionstore.Claimer {
		t.Helper()
		c, ok := s.(sessionstore.Claimer)
		if !ok {
			t.Fatalf("%T does not implement sessionstore.Claimer", s)
		}
		return c
	}
	claim := func(t *testing.T, c sessionstore.Claimer, key sessionstore.Key, until time.Time) bool {
		t.Helper()
		ok, err := c.Claim(ctx, key, until)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		return ok
	}
	return map[string]func(t *testing.T, s sessionstore.Store){
		"claim: the first claim wins, later ones lose until it ends": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.ClaimKey("test", "jti-1")
			until := time.Now().Add(time.Minute)
			if !claim(t, c, key, until) {
				t.Fatal("the first claim of a key lost")
			}
			for i := range 3 {
				if claim(t, c, key, until.Add(time.Hour)) {
					t.Fatalf("claim %d of a claimed key won", i+2)
				}
			}
			if !claim(t, c, sessionstore.ClaimKey("test", "jti-2"), until) {
				t.Fatal("a claim of another key lost")
			}
			if !claim(t, c, sessionstore.ClaimKey("other purpose", "jti-1"), until) {
				t.Fatal("a claim of the same name for another purpose lost")
			}
		},
		"claim: ends at its time, and can be claimed again": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.ClaimKey("test", "short")
			if !claim(t, c, key, time.Now().Add(300*time.Millisecond)) {
				t.Fatal("the first claim lost")
			}
			time.Sleep(500 * time.Millisecond) // past its time
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("a claim whose time has passed still holds")
			}
			if claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("the renewed claim does not hold")
			}
		},
		"claim: a time that has passed claims nothing": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.ClaimKey("test", "past")
			for _, until := range []time.Time{{}, time.Now().Add(-time.Second), time.Now()} {
				if claim(t, c, key, until) {
					t.Fatalf("Claim(until %v) won", until)
				}
			}
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("a key claimed in the past could not be claimed")
			}
		},
		"claim: release lets it be claimed again": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.ClaimKey("test", "released")
			until := time.Now().Add(time.Minute)
			claim(t, c, key, until)
			if err := c.Release(ctx, key); err != nil {
				t.Fatal(err)
			}
			if !claim(t, c, key, until) {
				t.Fatal("a released key could not be claimed")
			}
			if err := c.Release(ctx, sessionstore.ClaimKey("test", "never claimed")); err != nil {
				t.Fatalf("Release of a key never claimed: %v", err)
			}
		},
		"claim: claims and sessions do not see each other": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.KeyOf(sessionstore.NewID())
			rec := record(time.Now(), "alice", map[string]string{"k": "v"})
			mustCreate(t, s, key, rec)
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("a session's key counts as claimed")
			}
			assertEqual(t, "session after a claim of its key", mustFind(t, s, key), rec)
			if err := c.Release(ctx, key); err != nil {
				t.Fatal(err)
			}
			assertEqual(t, "session after a release of its key", mustFind(t, s, key), rec)
			claimed := sessionstore.ClaimKey("test", "not a session")
			claim(t, c, claimed, time.Now().Add(time.Minute))
			if _, found, err := s.Find(ctx, claimed); found || err != nil {
				t.Fatalf("Find(a claimed key) = %v, %v; want false, nil", found, err)
			}
			if _, found, err := s.Update(ctx, claimed, sessionstore.Change{Set: map[string]string{"k": "v"}}); found || err != nil {
				t.Fatalf("Update(a claimed key) = %v, %v; want false, nil", found, err)
			}
			if err := s.Delete(ctx, claimed); err != nil {
				t.Fatal(err)
			}
			if claim(t, c, claimed, time.Now().Add(time.Minute)) {
				t.Fatal("deleting a session's key released a claim")
			}
			if l, ok := s.(sessionstore.Lister); ok {
				n := 0
				if err := l.Each(ctx, func(sessionstore.Key, sessionstore.Record) bool { n++; return true }); err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Fatalf("Each walks %d records, want the one session (claims are no sessions)", n)
				}
			}
		},
		"claim: of many at once, exactly one wins": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			var others []sessionstore.Claimer
			for range 3 {
				others = append(others, c)
				if b.Share != nil {
					others = append(others, claimer(t, b.Share(t, s)))
				}
			}
			key := sessionstore.ClaimKey("test", "contended")
			until := time.Now().Add(time.Minute)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for _, o := range others {
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ok, err := o.Claim(ctx, key, until)
						if err != nil {
							t.Error(err)
						}
						if ok {
							wins.Add(1)
						}
					}()
				}
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d of %d concurrent claims won, want 1", wins.Load(), 8*len(others))
			}
		},
		"claim: another instance on the same store sees it": func(t *testing.T, s sessionstore.Store) {
			if b.Share == nil {
				t.Skip("the backend is one process's: no other instance shares it")
			}
			c, other := claimer(t, s), claimer(t, b.Share(t, s))
			key := sessionstore.ClaimKey("test", "shared")
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("the first claim lost")
			}
			if claim(t, other, key, time.Now().Add(time.Minute)) {
				t.Fatal("another instance claimed what this one holds")
			}
			if err := other.Release(ctx, key); err != nil {
				t.Fatal(err)
			}
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("a key released on another instance could not be claimed")
			}
		},
		"claim: cancelled context is an error and claims nothing": func(t *testing.T, s sessionstore.Store) {
			c := claimer(t, s)
			key := sessionstore.ClaimKey("test", "cancelled")
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if ok, err := c.Claim(cctx, key, time.Now().Add(time.Minute)); err == nil || ok {
				t.Fatalf("Claim with a cancelled context = %v, %v; want false and an error", ok, err)
			}
			if err := c.Release(cctx, key); err == nil {
				t.Error("Release with a cancelled context returned no error")
			}
			if !claim(t, c, key, time.Now().Add(time.Minute)) {
				t.Fatal("a cancelled Claim claimed the key")
			}
		},
	}
}
