package cookie

import (
	"bytes"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// Fuzz targets for the cookie codec and the Cookie header readers; run one
// with, e.g.,
//
//	go test ./cookie -run '^$' -fuzz '^FuzzCookieDecode$' -fuzztime 60s -parallel 1

const fuzzCookieName = "caddy_session"

var fuzzSecret = []byte("fuzz-secret-0123456789-abcdefghijklmnop")

// fuzzSeedPayloads are the only plaintexts the seed tokens carry. Nothing
// but a seed token (or a token that decodes to the same bytes) may decode.
func fuzzSeedPayloads() [][]byte {
	id := sessionstore.ID{}
	for i := range id {
		id[i] = byte(i * 7)
	}
	rec, err := sessionstore.Record{
		User:    "alice",
		Data:    map[string]string{"theme": "dark"},
		Created: time.Unix(1700000000, 0), LastSeen: time.Unix(1700000100, 0), Expires: time.Unix(1700003600, 0),
	}.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return [][]byte{{}, {0}, id[:], rec, []byte("hello, world"), bytes.Repeat([]byte{0xa5}, 100)}
}

// fuzzEncodedLen is the length securecookie's token has for a payload of n
// bytes: base64(date|base64(iv+ciphertext)|mac), the name left out.
func fuzzEncodedLen(n int) int {
	inner := base64.URLEncoding.EncodedLen(aes.BlockSize + n)
	date := len(strconv.FormatInt(time.Now().Unix(), 10))
	return base64.URLEncoding.EncodedLen(date + 1 + inner + 1 + sha256.Size)
}

func FuzzCookieDecode(f *testing.F) {
	codec, err := NewCodec(fuzzCookieName, "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// Same secret, other cookie name: the name is under the MAC.
	otherName, err := NewCodec("other_session", "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// Other secret first, ours second: rotation still decodes ours.
	rotated, err := NewCodec(fuzzCookieName, "", [][]byte{bytes.Repeat([]byte("n"), 32), fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	limit := MaxBytes - len(fuzzCookieName) - 1
	maxPayload := 0
	for fuzzEncodedLen(maxPayload+1) <= limit {
		maxPayload++
	}
	seeds := fuzzSeedPayloads()

	for _, p := range seeds {
		tok, err := codec.Encode(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok, p, uint(len(tok)-1), byte(1))
		f.Add(tok, p, uint(len(tok)-3), byte(0x20))
		f.Add(tok[:len(tok)-1], p, uint(0), byte(0))
		f.Add(tok+"=", p, uint(10), byte(0x80))
		f.Add(strings.ToUpper(tok), p, uint(len(tok)/2), byte(0xff))
	}
	for _, s := range []string{
		"", "=", "|", "||", "a|b|c", "MTcwMDAwMDAwMHx4fHk=",
		base64.URLEncoding.EncodeToString([]byte("1700000000|eA==|")),
		base64.URLEncoding.EncodeToString([]byte("99999999999999999999|eA==|" + strings.Repeat("\x00", 32))),
		strings.Repeat("A", limit), strings.Repeat("A", limit+1), "\x00\xff", "\r\n",
	} {
		f.Add(s, []byte(s), uint(0), byte(1))
	}
	f.Add("", make([]byte, maxPayload), uint(7), byte(2))
	f.Add("", make([]byte, maxPayload+1), uint(7), byte(2))

	f.Fuzz(func(t *testing.T, input string, payload []byte, pos uint, xor byte) {
		// Arbitrary input: never panics; decodes only to a seed payload.
		if got, err := codec.Decode(input); err == nil {
			if !slices.ContainsFunc(seeds, func(s []byte) bool { return bytes.Equal(s, got) }) {
				t.Fatalf("decode accepted a token it never issued: %q -> %x", input, got)
			}
		}

		// encode succeeds exactly up to the size limit, and decodes back.
		tok, err := codec.Encode(payload)
		want := fuzzEncodedLen(len(payload))
		if want > limit {
			if err == nil || !errors.Is(err, sessionstore.ErrTooLarge) {
				t.Fatalf("encode of %d bytes (token %d > %d): err = %v, want ErrTooLarge", len(payload), want, limit, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("encode of %d bytes (token %d <= %d): %v", len(payload), want, limit, err)
		}
		if len(tok) != want {
			t.Fatalf("token for %d bytes is %d long, want %d", len(payload), len(tok), want)
		}
		if len(payload) == 0 {
			// securecookie cannot decrypt an IV with no ciphertext; the
			// handler never encodes nothing (an ID, or a record).
			return
		}
		if got, err := codec.Decode(tok); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("decode(encode(%x)) = %x, %v", payload, got, err)
		}
		if got, err := rotated.Decode(tok); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("rotated codec: decode(encode(%x)) = %x, %v", payload, got, err)
		}
		if _, err := otherName.Decode(tok); err == nil {
			t.Fatalf("a token for %q decodes as another cookie", fuzzCookieName)
		}

		// One changed byte: rejected, unless the change is invisible to
		// base64 (the unused low bits of the last character), in which
		// case the MAC'd bytes, and so the payload, are the same.
		if xor == 0 {
			return
		}
		i := int(pos % uint(len(tok)))
		b := []byte(tok)
		b[i] ^= xor
		flipped := string(b)
		got, err := codec.Decode(flipped)
		if err != nil {
			return
		}
		raw, err1 := base64.URLEncoding.DecodeString(tok)
		rawFlipped, err2 := base64.URLEncoding.DecodeString(flipped)
		if err1 != nil || err2 != nil || !bytes.Equal(raw, rawFlipped) || !bytes.Equal(got, payload) {
			t.Fatalf("token with byte %d ^ %#x still decodes, to %x (was %x)\n%s\n%s", i, xor, got, payload, tok, flipped)
		}
	})
}

// TestCookieSingleByteChanges tries every one-byte change of a token. The
// only ones that decode are invisible to base64 (the unused low bits of
// the last character before the padding) and give the same plaintext:
// securecookie does not decode base64 strictly. A session ID's token has
// no such bits.
func TestCookieSingleByteChanges(t *testing.T) {
	codec, err := NewCodec(fuzzCookieName, "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(sessionstore.ID{}), 33} {
		payload := bytes.Repeat([]byte{7}, n)
		tok, err := codec.Encode(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.URLEncoding.DecodeString(tok)
		accepted := 0
		for i := range len(tok) {
			for x := 1; x < 256; x++ {
				b := []byte(tok)
				b[i] ^= byte(x)
				got, err := codec.Decode(string(b))
				if err != nil {
					continue
				}
				accepted++
				if raw2, _ := base64.URLEncoding.DecodeString(string(b)); !bytes.Equal(raw2, raw) || !bytes.Equal(got, payload) {
					t.Fatalf("%d-byte payload: byte %d ^ %#x decodes to %x", n, i, x, got)
				}
			}
		}
		if n == len(sessionstore.ID{}) && accepted != 0 {
			t.Errorf("an ID token has %d one-byte variants that decode", accepted)
		}
		t.Logf("%d-byte payload, %d-byte token: %d one-byte variants decode to the same bytes", n, len(tok), accepted)
	}
}

// fuzzCookieParts is the list of non-empty ';'-separated parts of the
// Cookie lines, trimmed of HTTP whitespace.
func fuzzCookieParts(lines []string) []string {
	var parts []string
	for _, line := range lines {
		for p := range strings.SplitSeq(line, ";") {
			if p = textproto.TrimString(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	return parts
}

func fuzzNamedCookies(h http.Header, keep func(string) bool) []string {
	var out []string
	for _, c := range (&http.Request{Header: h}).Cookies() {
		if keep(c.Name) {
			out = append(out, c.Name+"="+c.Value+"|"+strconv.FormatBool(c.Quoted))
		}
	}
	return out
}

func FuzzCookieValues(f *testing.F) {
	for _, s := range [][2]string{
		{"caddy_session=abc", ""},
		{"a=1; caddy_session=abc; b=2", "caddy_session=def"},
		{"a=1;caddy_session=abc;b=2", "c=3"},
		{`caddy_session="quoted"; x=y`, ""},
		{"caddy_session=; caddy_session=\"\"", "caddy_session"},
		{"caddy_session2=keep; xcaddy_session=keep; caddy_sessio=keep", ""},
		{"caddy_session =spaced; caddy_session\t=tab", ""},
		{" ; ;; caddy_session=x ;", " "},
		{"a=1; b=caddy_session=2", "caddy_session=x=y=z"},
		{"Caddy_Session=upper; CADDY_SESSION=x", ""},
		{"\u00a0caddy_session=nbsp\u00a0; a=\u2028", "\x00caddy_session=nul"},
		{"a=\"b;c\"; caddy_session=v", ""},
	} {
		f.Add(s[0], s[1])
	}

	f.Fuzz(func(t *testing.T, line1, line2 string) {
		lines := []string{line1, line2}
		h := http.Header{"Cookie": slices.Clone(lines)}
		// Ours is what net/http would read as ours: the name with HTTP
		// whitespace trimmed. Parts with no name carry nothing and go too.
		isOurs := func(part string) bool {
			name, _, _ := strings.Cut(part, "=")
			name = textproto.TrimString(name)
			return name == fuzzCookieName || name == ""
		}
		otherBefore := fuzzNamedCookies(h, func(n string) bool { return n != fuzzCookieName })

		Remove(h, fuzzCookieName)

		if v := Values(&http.Request{Header: h}, fuzzCookieName); len(v) != 0 {
			t.Fatalf("after Remove(%q) still %q", lines, v)
		}
		// Lines that do not mention the cookie are kept byte for byte;
		// the others lose our cookie and are joined with "; ".
		var wantLines []string
		for _, l := range lines {
			if !strings.Contains(l, fuzzCookieName) {
				wantLines = append(wantLines, l)
				continue
			}
			var ps []string
			for _, p := range fuzzCookieParts([]string{l}) {
				if !isOurs(p) {
					ps = append(ps, p)
				}
			}
			if len(ps) > 0 {
				wantLines = append(wantLines, strings.Join(ps, "; "))
			}
		}
		want := fuzzCookieParts(wantLines)
		got := fuzzCookieParts(h["Cookie"])
		if !slices.Equal(got, want) {
			t.Fatalf("Remove(%q): other cookies\n got %q\nwant %q", lines, got, want)
		}
		if gotLines, ok := h["Cookie"]; !slices.Equal(gotLines, wantLines) || ok != (len(wantLines) > 0) {
			t.Fatalf("Remove(%q) = %q (present %v), want %q", lines, gotLines, ok, wantLines)
		}
		// net/http reads the other cookies exactly as before.
		otherAfter := fuzzNamedCookies(h, func(n string) bool { return n != fuzzCookieName })
		if !slices.Equal(otherBefore, otherAfter) {
			t.Fatalf("Remove(%q): net/http sees other cookies\nbefore %q\nafter  %q", lines, otherBefore, otherAfter)
		}
	})
}
