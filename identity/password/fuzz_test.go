package password

import (
	"bufio"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/edgesession/edgesession/identity"
)

// A fuzz target for the users file, which the operator writes. It runs on
// its seed corpus (and on any regression inputs under testdata/fuzz) as a
// normal test; run it with
//
//	go test ./identity/password -run '^$' -fuzz '^FuzzUsersFile$' -fuzztime 60s -parallel 1

const (
	// fuzzBcryptHash is bcrypt("hunter2") at cost 4.
	fuzzBcryptHash = "$2a$04$nzevpED6/0lCzqLNEX54RO..pyFr.KxO3S2Ox.BiP6RfQamePLFaG"
	// fuzzArgonHash is a well-formed argon2id hash with tiny parameters.
	fuzzArgonHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
)

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
			if err := identity.ValidUsername(name); err != nil {
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
