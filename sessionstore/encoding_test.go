package sessionstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// A record with an Amr is version 3: version 2 followed by the Amr, and
// reads back with it. Without an Amr it is written as version 2, byte for
// byte as before second factors, so that an instance from before them (a
// mixed fleet during an upgrade) reads it.
func TestRecordVersion3(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	base := sessionstore.Record{User: "alice", Source: "password", Fingerprint: "fp", Site: "app.example", Groups: []string{"admins"},
		ClientIP: "192.0.2.1", UserAgent: "curl/8", Data: map[string]string{"k": "v", "a": "b"}, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}
	v2, err := base.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Version 2 as an instance before second factors wrote it: by hand.
	want := []byte{2}
	for _, n := range []int64{t0.UnixNano(), t0.UnixNano(), t0.Add(time.Hour).UnixNano()} {
		want = appendVarint(want, n)
	}
	for _, s := range []string{"alice", "password", "fp", "app.example"} {
		want = appendStr(want, s)
	}
	want = appendStr(appendStr(want, "192.0.2.1"), "curl/8")
	want = appendStr(append(want, 1), "admins")
	want = appendStr(appendStr(appendStr(appendStr(append(want, 2), "a"), "b"), "k"), "v")
	if !bytes.Equal(v2, want) {
		t.Fatalf("a record without an Amr encodes as\n%x\nwant version 2 as before\n%x", v2, want)
	}
	for _, empty := range [][]string{nil, {}} {
		r := base
		r.Amr = empty
		if b, _ := r.MarshalBinary(); !bytes.Equal(b, v2) {
			t.Fatalf("Amr %#v encodes as %x, want version 2", empty, b)
		}
	}

	with := base
	with.Amr = []string{"pwd", "otp", "mfa"}
	v3, err := with.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wantV3 := append([]byte{3}, v2[1:]...)
	wantV3 = appendStr(appendStr(appendStr(append(wantV3, 3), "pwd"), "otp"), "mfa")
	if !bytes.Equal(v3, wantV3) {
		t.Fatalf("with an Amr:\n%x\nwant version 2's body and the Amr\n%x", v3, wantV3)
	}
	var got sessionstore.Record
	if err := got.UnmarshalBinary(v3); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Diff(got, with); err != nil {
		t.Fatal(err)
	}
	unicode := sessionstore.Record{Amr: []string{"hwk", "zoë", ""}}
	b, _ := unicode.MarshalBinary()
	if err := got.UnmarshalBinary(b); err != nil || storetest.Diff(got, unicode) != nil {
		t.Fatalf("Amr %q round-trips as %q, %v", unicode.Amr, got.Amr, err)
	}
	if _, err := (sessionstore.Record{Amr: []string{"\xc3\x28"}}).MarshalBinary(); err == nil {
		t.Fatal("an Amr that is not UTF-8 was encoded")
	}

	// Malformed: version 3 with no Amr (count 0: it is written only with
	// one), truncated anywhere, trailing bytes, a count beyond the bytes,
	// an Amr that is not UTF-8, a version 3 with nothing after the data.
	bad := map[string][]byte{
		"count 0":             append(append([]byte{3}, v2[1:]...), 0),
		"no count":            append([]byte{3}, v2[1:]...),
		"trailing byte":       append(bytes.Clone(v3), 0),
		"trailing string":     appendStr(bytes.Clone(v3), "x"),
		"count beyond":        appendStr(append(append([]byte{3}, v2[1:]...), 5), "pwd"),
		"huge count":          append(append([]byte{3}, v2[1:]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"not UTF-8":           append(append(append([]byte{3}, v2[1:]...), 1, 2), 0xc3, 0x28),
		"v2 with an Amr tail": append(bytes.Clone(v2), 1, 3, 'p', 'w', 'd'),
		"version 4":           append([]byte{4}, v3[1:]...),
	}
	for i := 1; i < len(v3); i++ {
		if i == len(v2) {
			continue // v2's body under a version-3 byte: "no count" above
		}
		bad["truncated"+string(rune('A'+i%26))+string(rune('0'+i/26))] = v3[:i]
	}
	for name, b := range bad {
		if err := new(sessionstore.Record).UnmarshalBinary(b); err == nil {
			t.Errorf("%s: UnmarshalBinary(%x) succeeded", name, b)
		}
	}
}

// A session whose record has an Amr (version 3) leaves its user's index
// when it is deleted, replaced or swept, as any other: stores read the user
// out of the stored bytes to find the index entry.
func TestVersion3RecordsLeaveTheIndex(t *testing.T) {
	ctx := context.Background()
	client, _ := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	b, err := sessionstore.OpenBolt(filepath.Join(t.TempDir(), "s.db"), sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := sessionstore.NewRedis(client, prefix)
	defer r.DeleteAll(ctx)
	m := sessionstore.NewMemory(0)
	defer m.Close()
	now := time.Now()
	rec := sessionstore.Record{User: "alice", Amr: []string{"pwd", "otp", "mfa"}, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}
	for _, s := range []sessionstore.Store{m, b, r} {
		deleted, replaced := sessionstore.KeyOf(sessionstore.NewID()), sessionstore.KeyOf(sessionstore.NewID())
		for _, k := range []sessionstore.Key{deleted, replaced} {
			if err := s.Create(ctx, k, rec); err != nil {
				t.Fatal(err)
			}
		}
		if n := sessionstore.IndexSize(s, "alice"); n != 2 {
			t.Fatalf("%T: index of alice holds %d, want 2", s, n)
		}
		if err := s.Delete(ctx, deleted); err != nil {
			t.Fatal(err)
		}
		bob := rec
		bob.User = "bob"
		if err := s.Create(ctx, replaced, bob); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*sessionstore.Redis); ok {
			// Redis drops a member whose session is another user's when
			// the set is next read (index_redis.go); a Delete at once.
			sessionstore.IndexSize(s, "alice")
			s.(*sessionstore.Redis).ListUser(ctx, "alice")
		}
		if n := sessionstore.IndexSize(s, "alice"); n != 0 {
			t.Fatalf("%T: alice's index holds %d after her version-3 sessions went, want 0", s, n)
		}
	}
}

func appendVarint(b []byte, n int64) []byte { return binary.AppendVarint(b, n) }

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
