package cookie

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

func testCodec(t testing.TB, secrets ...string) *Codec {
	t.Helper()
	var bs [][]byte
	for _, s := range secrets {
		bs = append(bs, []byte(s))
	}
	c, err := NewCodec("caddy_session", "", bs, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCookieCodecConformance runs the conformance suite's records through
// the cookie store's codec: whatever fits in a cookie comes back unchanged,
// and what does not is ErrTooLarge, never a silent cut.
func TestCookieCodecConformance(t *testing.T) {
	c := testCodec(t, strings.Repeat("s", 32))
	for name, rec := range storetest.Records(time.Now(), 1000) {
		if name == "many keys" {
			continue // 100 keys with values up to 99 bytes: ~5 KB, checked below
		}
		b, _ := rec.MarshalBinary()
		v, err := c.Encode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := c.Decode(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got sessionstore.Record
		if err := got.UnmarshalBinary(out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := storetest.Diff(got, rec); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"many keys", "large"} {
		b, _ := storetest.Records(time.Now(), 4000)[name].MarshalBinary()
		if _, err := c.Encode(b); !errors.Is(err, sessionstore.ErrTooLarge) {
			t.Errorf("%s: encode = %v, want ErrTooLarge", name, err)
		}
	}
}

func TestCookieCodecRotation(t *testing.T) {
	oldKey, newKey := strings.Repeat("o", 32), strings.Repeat("n", 32)
	old := testCodec(t, oldKey)
	rotated := testCodec(t, newKey, oldKey)
	dropped := testCodec(t, newKey)
	v, _ := old.Encode([]byte("id"))
	if b, err := rotated.Decode(v); err != nil || string(b) != "id" {
		t.Fatalf("rotated codec refused an old cookie: %v", err)
	}
	if _, err := dropped.Decode(v); err == nil {
		t.Fatal("a codec without the old secret accepted its cookie")
	}
	v2, _ := rotated.Encode([]byte("id"))
	if _, err := dropped.Decode(v2); err != nil {
		t.Fatal("the rotated codec does not sign with its first secret")
	}
	// The cookie's name is bound in: the same value under another name is
	// refused.
	other, _ := NewCodec("other", "", [][]byte{[]byte(newKey)}, time.Hour)
	if _, err := other.Decode(v2); err == nil {
		t.Fatal("a cookie value was accepted under another cookie name")
	}
}

func TestDecodeCacheOnlyHoldsVerifiedValues(t *testing.T) {
	c := testCodec(t, strings.Repeat("s", 32))
	v, _ := c.Encode([]byte("id"))
	for range 3 {
		if _, err := c.Decode(v[:len(v)-1] + "x"); err == nil {
			t.Fatal("a tampered value decoded")
		}
	}
	if len(c.cache.entries) != 0 {
		t.Fatal("a value that failed to verify was cached")
	}
	if b, err := c.Decode(v); err != nil || string(b) != "id" {
		t.Fatal(err)
	}
	if b, err := c.Decode(v); err != nil || string(b) != "id" || len(c.cache.entries) != 1 {
		t.Fatalf("cached decode: %q %v (%d entries)", b, err, len(c.cache.entries))
	}
	// A full cache makes room instead of growing.
	for i := range decodeCacheSize + 10 {
		c.cache.put(strings.Repeat("k", 8)+strconv.Itoa(i), nil, time.Now())
	}
	if n := len(c.cache.entries); n > decodeCacheSize {
		t.Fatalf("cache grew to %d entries", n)
	}
}
