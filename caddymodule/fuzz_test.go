package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/edgesession/edgesession/identity"
)

// Fuzz targets for the parsers and validators that see client, upstream
// or operator input. Each runs on its seed corpus (and on any regression
// inputs under testdata/fuzz) as a normal test; run one with, e.g.,
//
//	go test ./caddymodule -run '^$' -fuzz '^FuzzCaddyfile$' -fuzztime 60s -parallel 1

const (
	// fuzzBcryptHash is bcrypt("hunter2") at cost 4.
	fuzzBcryptHash = "$2a$04$nzevpED6/0lCzqLNEX54RO..pyFr.KxO3S2Ox.BiP6RfQamePLFaG"
	// fuzzArgonHash is a well-formed argon2id hash with tiny parameters.
	fuzzArgonHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
)

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
			if err := identity.ValidUsername(u.Name); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q: %v", s, u.Name, err)
			}
			if err := identity.ValidGroups(u.Groups); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) accepted user %q's groups: %v", s, u.Name, err)
			}
		}
	})
}
