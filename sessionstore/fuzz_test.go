package sessionstore_test

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgesession/edgesession/sessionstore"
)

// FuzzRecordUnmarshal feeds arbitrary bytes to Record.UnmarshalBinary: it
// must never panic, and whatever it accepts must be a record that survives
// MarshalBinary and UnmarshalBinary unchanged, with every string valid
// UTF-8.
func FuzzRecordUnmarshal(f *testing.F) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for _, rec := range []sessionstore.Record{
		{},
		{User: "alice"},
		{User: "alice", Created: t0, LastSeen: t0.Add(time.Minute), Expires: t0.Add(12 * time.Hour)},
		{Data: map[string]string{"cart": "3 items", "theme": "dark"}, Created: t0, Expires: t0.Add(time.Hour)},
		{User: "zoë ☃", Data: map[string]string{"": "", "k": "\t tab", "ü": "日本語"}, Created: time.Unix(0, -1), LastSeen: time.Unix(0, 1), Expires: time.Unix(1<<40, 0)},
		{User: string(bytes.Repeat([]byte("x"), 300)), Data: map[string]string{"big": string(bytes.Repeat([]byte("v"), 200))}},
		{User: "alice", Source: "password", Fingerprint: "fp", Site: "app.example", Groups: []string{"admins", "staff"}, ClientIP: "192.0.2.1", UserAgent: "curl/8", Data: map[string]string{"role": "admin"}, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)},
		{Source: "oidc:ü", Groups: []string{"", "", "日本"}},
		{Groups: []string{}},
		// Version 3: with an Amr.
		{User: "alice", Source: "password", Amr: []string{"pwd", "otp", "mfa"}, Data: map[string]string{"k": "v"}, Created: t0, Expires: t0.Add(time.Hour)},
		{Amr: []string{"hwk"}},
		{Amr: []string{"", "zoë", "swk"}, Groups: []string{"g"}},
	} {
		b, err := rec.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Nasty inputs: wrong version, truncated, huge lengths and counts,
	// duplicate keys, invalid UTF-8, trailing bytes, overlong varints.
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 0, 0, 0, 0})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'a', 1, 'b'})
	f.Add([]byte{1, 0, 0, 0, 0, 2, 1, 'a', 1, 'b', 1, 'a', 1, 'c'})
	f.Add([]byte{1, 0, 0, 0, 2, 0xc3, 0x28, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 1, 1, 'k', 1, 0xff})
	f.Add([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0})
	f.Add([]byte{1, 0x80, 0x00, 0, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 'x'})
	// Version 2: truncated identity, huge group count, invalid UTF-8 in a
	// group, a version-1 body under a version-2 byte.
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'g', 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xff, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 'a', 1, 'a', 0})
	f.Add([]byte{2, 0, 0, 0, 2, 'a', 'l', 1, 1, 'k', 1, 'v'})
	// Version 3: an Amr count of 0 (written only with one), none at all,
	// a huge count, an Amr that is not UTF-8, trailing bytes, a version-2
	// body with an Amr after it, version 4.
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'a'})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0xc3, 0x28})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'p', 'w', 'd', 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 'p', 'w', 'd'})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'p', 'w', 'd'})
	f.Add([]byte{4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'p', 'w', 'd'})

	f.Fuzz(func(t *testing.T, b []byte) {
		var r sessionstore.Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		checkUTF8 := func(what, s string) {
			if !utf8.ValidString(s) {
				t.Fatalf("decoded %s %q is not valid UTF-8", what, s)
			}
		}
		checkUTF8("user", r.User)
		checkUTF8("source", r.Source)
		checkUTF8("fingerprint", r.Fingerprint)
		checkUTF8("site", r.Site)
		checkUTF8("client IP", r.ClientIP)
		checkUTF8("user agent", r.UserAgent)
		for _, g := range r.Groups {
			checkUTF8("group", g)
		}
		for _, a := range r.Amr {
			checkUTF8("amr", a)
		}
		for k, v := range r.Data {
			checkUTF8("data key", k)
			checkUTF8("data value", v)
		}

		enc, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded record: %v", err)
		}
		var r2 sessionstore.Record
		if err := r2.UnmarshalBinary(enc); err != nil {
			t.Fatalf("UnmarshalBinary(MarshalBinary(r)) = %v\nrecord: %#v\nbytes: %x", err, r, enc)
		}
		if !recordsEqual(r, r2) {
			t.Fatalf("round trip changed the record\nbefore: %#v\nafter:  %#v", r, r2)
		}
		// The encoding is canonical once written by MarshalBinary.
		enc2, err := r2.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", enc, enc2)
		}
	})
}

func recordsEqual(a, b sessionstore.Record) bool {
	sameTime := func(x, y time.Time) bool {
		return x.IsZero() == y.IsZero() && x.Equal(y) && x.UnixNano() == y.UnixNano()
	}
	return a.User == b.User && a.Source == b.Source && a.Fingerprint == b.Fingerprint &&
		a.Site == b.Site && a.ClientIP == b.ClientIP && a.UserAgent == b.UserAgent &&
		slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Amr, b.Amr) &&
		len(a.Data) == len(b.Data) && maps.Equal(a.Data, b.Data) &&
		sameTime(a.Created, b.Created) &&
		sameTime(a.LastSeen, b.LastSeen) &&
		sameTime(a.Expires, b.Expires)
}
