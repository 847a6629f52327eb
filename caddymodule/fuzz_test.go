package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	whatwg "github.com/nlnwa/whatwg-url/url"

	"github.com/edgesession/edgesession/sessionstore"
)

// Fuzz targets for the parsers and validators that see client, upstream
// or operator input. Each runs on its seed corpus (and on any regression
// inputs under testdata/fuzz) as a normal test; run one with, e.g.,
//
//	go test ./caddymodule -run '^$' -fuzz '^FuzzSafeRedirect$' -fuzztime 60s -parallel 1

const (
	fuzzCookieName = "caddy_session"
	// fuzzBcryptHash is bcrypt("hunter2") at cost 4.
	fuzzBcryptHash = "$2a$04$nzevpED6/0lCzqLNEX54RO..pyFr.KxO3S2Ox.BiP6RfQamePLFaG"
	// fuzzArgonHash is a well-formed argon2id hash with tiny parameters.
	fuzzArgonHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
)

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
	codec, err := newCookieCodec(fuzzCookieName, "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// Same secret, other cookie name: the name is under the MAC.
	otherName, err := newCookieCodec("other_session", "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// Other secret first, ours second: rotation still decodes ours.
	rotated, err := newCookieCodec(fuzzCookieName, "", [][]byte{bytes.Repeat([]byte("n"), 32), fuzzSecret}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	limit := maxCookieBytes - len(fuzzCookieName) - 1
	maxPayload := 0
	for fuzzEncodedLen(maxPayload+1) <= limit {
		maxPayload++
	}
	seeds := fuzzSeedPayloads()

	for _, p := range seeds {
		tok, err := codec.encode(p)
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
		if got, err := codec.decode(input); err == nil {
			if !slices.ContainsFunc(seeds, func(s []byte) bool { return bytes.Equal(s, got) }) {
				t.Fatalf("decode accepted a token it never issued: %q -> %x", input, got)
			}
		}

		// encode succeeds exactly up to the size limit, and decodes back.
		tok, err := codec.encode(payload)
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
		if got, err := codec.decode(tok); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("decode(encode(%x)) = %x, %v", payload, got, err)
		}
		if got, err := rotated.decode(tok); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("rotated codec: decode(encode(%x)) = %x, %v", payload, got, err)
		}
		if _, err := otherName.decode(tok); err == nil {
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
		got, err := codec.decode(flipped)
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
	codec, err := newCookieCodec(fuzzCookieName, "", [][]byte{fuzzSecret}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(sessionstore.ID{}), 33} {
		payload := bytes.Repeat([]byte{7}, n)
		tok, err := codec.encode(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.URLEncoding.DecodeString(tok)
		accepted := 0
		for i := range len(tok) {
			for x := 1; x < 256; x++ {
				b := []byte(tok)
				b[i] ^= byte(x)
				got, err := codec.decode(string(b))
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

		removeCookie(h, fuzzCookieName)

		if v := cookieValues(&http.Request{Header: h}, fuzzCookieName); len(v) != 0 {
			t.Fatalf("after removeCookie(%q) still %q", lines, v)
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
			t.Fatalf("removeCookie(%q): other cookies\n got %q\nwant %q", lines, got, want)
		}
		if gotLines, ok := h["Cookie"]; !slices.Equal(gotLines, wantLines) || ok != (len(wantLines) > 0) {
			t.Fatalf("removeCookie(%q) = %q (present %v), want %q", lines, gotLines, ok, wantLines)
		}
		// net/http reads the other cookies exactly as before.
		otherAfter := fuzzNamedCookies(h, func(n string) bool { return n != fuzzCookieName })
		if !slices.Equal(otherBefore, otherAfter) {
			t.Fatalf("removeCookie(%q): net/http sees other cookies\nbefore %q\nafter  %q", lines, otherBefore, otherAfter)
		}
	})
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{
		"/", "", "/account", "/a/b?c=d&e=%2F#frag", "/search?q=//evil.example",
		"//evil", "/\\evil", "\\/evil", "\\\\evil", "https://x", "http:/x", "http:x", "javascript:alert(1)",
		"JaVaScRiPt:alert(1)", "data:text/html,x", "/\t/x", "/\n/x", "/\r\n/evil", "\t//evil", " //evil",
		"/%2F/x", "/%2f%2fevil", "/%5Cevil", "/%5C/evil", "/%09/evil", "/%00", "/\x00", "/\x7f",
		"/.//evil", "/./\\evil", "/..//evil", "/a/../..//evil", "/@evil", "/:@evil", "/user:pass@evil",
		"/\u2028", "/\uff0f\uff0fevil", "/\u3002evil", "/ /evil", "/?//evil", "/#//evil",
		"/" + strings.Repeat("a", 2047), "/" + strings.Repeat("a", 2048), "/\xff\xfe", "/%zz", "/%",
		"%2F%2Fevil", "/;//evil", "/%E2%80%A8",
	} {
		f.Add(s)
	}
	base, err := url.Parse("https://site.example/")
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, s string) {
		out := safeRedirect(s)
		if out != "/" && out != s {
			t.Fatalf("safeRedirect(%q) = %q: neither / nor the input", s, out)
		}
		if out != s {
			return
		}
		if s[0] != '/' || len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
			t.Fatalf("safeRedirect(%q) accepted a target not starting with a single /", s)
		}
		if i := strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }); i >= 0 {
			t.Fatalf("safeRedirect(%q) accepted a control character or backslash at %d", s, i)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("safeRedirect(%q) accepted what url.Parse rejects: %v", s, err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("safeRedirect(%q) accepted scheme %q host %q user %v opaque %q", s, u.Scheme, u.Host, u.User, u.Opaque)
		}
		if r := base.ResolveReference(u); r.Scheme != "https" || r.Host != "site.example" || r.User != nil {
			t.Fatalf("safeRedirect(%q): net/url resolves it to %s", s, r)
		}
		// And as a browser (WHATWG URL) resolves a Location header.
		if r, err := whatwg.ParseRef(base.String(), s); err == nil {
			if r.Scheme() != "https" || r.Host() != "site.example" || r.Username() != "" || r.Password() != "" {
				t.Fatalf("safeRedirect(%q): a browser resolves it to %s", s, r.Href(false))
			}
		}
	})
}

// fuzzArgonParams reads m, t and p of an argon2id hash as DecodeHash does.
func fuzzArgonParams(hash string) (m, t, p uint64, ok bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return 0, 0, 0, false
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	m, err1 = strconv.ParseUint(strings.TrimPrefix(params[0], "m="), 10, 32)
	t, err2 = strconv.ParseUint(strings.TrimPrefix(params[1], "t="), 10, 32)
	p, err3 = strconv.ParseUint(strings.TrimPrefix(params[2], "p="), 10, 8)
	return m, t, p, err1 == nil && err2 == nil && err3 == nil
}

func FuzzUsersFile(f *testing.F) {
	for _, s := range []string{
		"", "\n\n", "# comment only\n", "alice:" + fuzzBcryptHash + "\n",
		"alice:" + fuzzBcryptHash + "\nbob:" + fuzzArgonHash + "\n",
		"  alice:" + fuzzBcryptHash + "  \r\n# c\n\nbob:" + fuzzArgonHash,
		"alice:" + fuzzBcryptHash + "\nalice:" + fuzzBcryptHash,
		"alice", ":" + fuzzBcryptHash, "al:ice:" + fuzzBcryptHash, "alice:plaintext",
		"alice :" + fuzzBcryptHash, "al\x00ice:" + fuzzBcryptHash, "\xffalice:" + fuzzBcryptHash,
		"alice:$2a$99$nzevpED6/0lCzqLNEX54RO..pyFr.KxO3S2Ox.BiP6RfQamePLFaG",
		"alice:$2b$04$", "alice:$2y$04$short",
		"alice:$argon2id$v=19$m=8,t=0,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",
		"alice:$argon2id$v=19$m=8,t=1,p=0$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",
		"alice:$argon2id$v=19$m=8,t=1,p=1$c2FsdA$",
		"alice:$argon2id$v=19$m=0,t=1,p=1$$a2V5",
		"alice:$argon2id$v=18$m=8,t=1,p=1$c2FsdA$a2V5",
		"zoë:" + fuzzBcryptHash, strings.Repeat("x", 257) + ":" + fuzzBcryptHash,
		strings.Repeat("x", 70000),
		"alice:" + fuzzBcryptHash + ":admin,ops\nbob:" + fuzzArgonHash + ":org:team",
		"alice:" + fuzzBcryptHash + ":", "alice:" + fuzzBcryptHash + ":a,,b", "alice:" + fuzzBcryptHash + ":a,a",
		"alice:" + fuzzBcryptHash + ":a b", "alice:" + fuzzBcryptHash + ":a\tb", "alice:" + fuzzBcryptHash + ":\xff",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		users, err := parseUsersFile(strings.NewReader(s))
		if err != nil {
			return
		}
		lines := 0
		sc := bufio.NewScanner(strings.NewReader(s))
		sc.Buffer(nil, 64*1024)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && l[0] != '#' {
				lines++
			}
		}
		if lines != len(users) {
			t.Fatalf("parseUsersFile(%q): %d user lines, %d users", s, lines, len(users))
		}
		for name, acct := range users {
			if err := validUsername(name); err != nil {
				t.Fatalf("parseUsersFile(%q) accepted user %q: %v", s, name, err)
			}
			if acct.comparer == nil || len(acct.hash) == 0 || acct.fp == "" {
				t.Fatalf("parseUsersFile(%q): user %q has no hash", s, name)
			}
			// Groups can go in a comma-separated header: no empty one,
			// none with a comma, space or control character, none twice.
			for i, g := range acct.groups {
				if g == "" || strings.ContainsAny(g, ", \t\r\n") || strings.ContainsFunc(g, unicode.IsControl) || !utf8.ValidString(g) || slices.Contains(acct.groups[:i], g) {
					t.Fatalf("parseUsersFile(%q): user %q has group %q", s, name, g)
				}
			}
			// A hash that parsed must be usable: comparing a wrong password
			// neither panics nor succeeds. (Only cheap hashes are tried.)
			hash := string(acct.hash)
			cheap := false
			if m, tm, p, ok := fuzzArgonParams(hash); ok && strings.HasPrefix(hash, "$argon2id$") {
				cheap = m <= 256 && tm <= 2 && p <= 4
			} else if strings.HasPrefix(hash, "$2") && len(hash) > 6 {
				cheap = hash[4:7] == "04$"
			}
			if cheap {
				ok, err := acct.comparer.Compare(acct.hash, []byte("not the password \x00"))
				if ok {
					t.Fatalf("parseUsersFile(%q): user %q: a wrong password matches hash %q (err %v)", s, name, hash, err)
				}
			}
		}
	})
}

func FuzzCaddyfile(f *testing.F) {
	secret := strings.Repeat("s", 32)
	for _, s := range []string{
		"",
		"store memory",
		"store cookie",
		"store bolt",
		"store bolt /var/lib/sessions.db",
		"store redis redis://127.0.0.1:6379 {\nprefix x:\n}",
		"store redis rediss://user:pass@redis.example:6380/2 {\nprefix x:\ndial_timeout 1s\nsentinel mymaster 10.0.0.1:26379 10.0.0.2:26379\n}",
		"store redis redis://127.0.0.1:6379 {\ncluster 127.0.0.1:7000 127.0.0.1:7001\n}",
		"store redis {env.REDIS_URL}",
		"secret " + secret + " " + strings.Repeat("o", 32),
		"secret {env.SESSION_SECRET}",
		"user alice " + fuzzBcryptHash + "\nuser bob " + fuzzArgonHash,
		"user alice " + fuzzBcryptHash + " admin ops", "user alice " + fuzzBcryptHash + " a,b",
		"users_file /etc/caddy/users",
		"path_prefix /.auth",
		"public {\npath /static/* /favicon.ico\n}",
		"public {\nnot path /private/*\nmethod GET HEAD\nremote_ip 10.0.0.0/8\n}",
		"public {\nexpression {path}.startsWith('/pub')\n}",
		"public {\nheader X-Api-Key *\n}\npublic {\nhost api.example\n}",
		"idle_timeout 0\nlifetime 24h",
		"idle_timeout 1d",
		"cookie {\nname a\n}",
		"cookie {\nname __Host-s\ndomain example.com\npath /app\nsecure always\nsame_site none\npersist on\n}",
		"header_prefix X-Auth-\nuser_header Remote-User X-Forwarded-User",
		"forward_cookie on\nupstream_control off",
		"login_template /etc/caddy/login.html",
		"login_limit 5 15m",
		"login_limit 0 15m", "login_limit 5 -1s", "login_limit 99999999999999999999 1h",
		"session extra", "{\n}", "}", "{", "cookie name a", "public", "public {\n}", "public {\nfrobnicate x\n}",
		"store", "store redis", "store redis redis://x {\nsentinel\n}", "store memory {\nx\n}",
		"user", "user alice", "user alice plaintext", "user a:b " + fuzzBcryptHash,
		"cookie {\ncookie {\nname x\n}\n}", "import snippet", "`raw` \"quoted\" <<EOF\nheredoc\nEOF",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		// caddyfile.NewTestDispenser would do, but it calls log.Fatal on
		// input the lexer rejects (an unclosed quote or heredoc), which
		// would end the fuzzing process; lex first instead.
		tokens, err := caddyfile.Tokenize([]byte("session {\n"+s+"\n}"), "Caddyfile")
		if err != nil {
			return
		}
		h := &Handler{}
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		// What it accepted is JSON Caddy can load.
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("UnmarshalCaddyfile(%q) gave a handler that does not marshal: %v", s, err)
		}
		var back Handler
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("UnmarshalCaddyfile(%q) gave JSON that does not unmarshal: %v\n%s", s, err, b)
		}
		for _, u := range h.Users {
			if err := validUsername(u.Name); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q: %v", s, u.Name, err)
			}
			if err := validGroups(u.Groups); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q's groups: %v", s, u.Name, err)
			}
		}
	})
}
