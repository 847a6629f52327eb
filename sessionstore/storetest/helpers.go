// Helpers the conformance tests share: records, must* calls, comparison.

package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

func record(now time.Time, user string, data map[string]string) sessionstore.Record {
	return sessionstore.Record{User: user, Data: data, Created: now.Add(-time.Minute), LastSeen: now, Expires: now.Add(time.Hour)}
}

// identity fills every identity field of r.
func identity(r sessionstore.Record) sessionstore.Record {
	r.Source = "password"
	r.Fingerprint = "pwfp:3q2+7w"
	r.Site = "app.example.com"
	r.Groups = []string{"admins", "staff"}
	r.ClientIP = "192.0.2.7"
	r.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	return r
}

// everything is a change that touches every field Update may change.
func everything(now time.Time) sessionstore.Change {
	return sessionstore.Change{Delete: []string{"k"}, Set: map[string]string{"mallory": "was here"}, Seen: now.Add(time.Minute), Expires: now.Add(24 * time.Hour)}
}

// withoutChanges clears what Update may change, leaving what it must not.
func withoutChanges(r sessionstore.Record) sessionstore.Record {
	r.Data, r.LastSeen, r.Expires = nil, time.Time{}, time.Time{}
	return r
}

func mustUpdate(t *testing.T, s sessionstore.Store, key sessionstore.Key, ch sessionstore.Change) sessionstore.Record {
	t.Helper()
	rec, found, err := s.Update(context.Background(), key, ch)
	if err != nil || !found {
		t.Fatalf("Update(existing) = found %v, err %v; want true, nil", found, err)
	}
	return rec
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
// Times are compared to the nanosecond; nil and empty maps and slices are
// alike.
func Diff(got, want sessionstore.Record) error {
	switch {
	case got.User != want.User:
		return fmt.Errorf("user %q, want %q", got.User, want.User)
	case got.Source != want.Source:
		return fmt.Errorf("source %q, want %q", got.Source, want.Source)
	case got.Fingerprint != want.Fingerprint:
		return fmt.Errorf("fingerprint %q, want %q", got.Fingerprint, want.Fingerprint)
	case got.Site != want.Site:
		return fmt.Errorf("site %q, want %q", got.Site, want.Site)
	case !slices.Equal(got.Groups, want.Groups):
		return fmt.Errorf("groups %q, want %q", got.Groups, want.Groups)
	case got.ClientIP != want.ClientIP:
		return fmt.Errorf("client IP %q, want %q", got.ClientIP, want.ClientIP)
	case got.UserAgent != want.UserAgent:
		return fmt.Errorf("user agent %q, want %q", got.UserAgent, want.UserAgent)
	case !got.Created.Equal(want.Created), !got.LastSeen.Equal(want.LastSeen), !got.Expires.Equal(want.Expires):
		return fmt.Errorf("times %v/%v/%v, want %v/%v/%v", got.Created, got.LastSeen, got.Expires, want.Created, want.LastSeen, want.Expires)
	case !slices.Equal(got.Amr, want.Amr):
		return fmt.Errorf("amr %q, want %q", got.Amr, want.Amr)
	case !maps.Equal(got.Data, want.Data):
		return fmt.Errorf("data %s, want %s", shortData(got.Data), shortData(want.Data))
	}
	return nil
}

// shortData prints data for an error message, cutting long values.
func shortData(d map[string]string) string {
	parts := make([]string, 0, len(d))
	for _, k := range slices.Sorted(maps.Keys(d)) {
		v := d[k]
		if len(v) > 32 {
			v = fmt.Sprintf("%.32s…(%d bytes)", v, len(v))
		}
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func mustList(t *testing.T, ix sessionstore.UserIndex, user string) []sessionstore.Entry {
	t.Helper()
	es, err := ix.ListUser(context.Background(), user)
	if err != nil {
		t.Fatalf("ListUser(%q): %v", user, err)
	}
	return es
}

func mustDeleteUser(t *testing.T, ix sessionstore.UserIndex, user string, handles ...sessionstore.Handle) []sessionstore.Key {
	t.Helper()
	keys, err := ix.DeleteUser(context.Background(), user, handles...)
	if err != nil {
		t.Fatalf("DeleteUser(%q): %v", user, err)
	}
	return keys
}
