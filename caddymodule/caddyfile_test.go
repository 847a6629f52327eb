package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

const testHash = "$2a$04$hP0nbPZKmD7xY5mfdpahD.5V/hHm.PVKyAoqwzoCJUeJVSz0Y0zF6"

// adapt runs the Caddyfile adapter on a site with body inside session.
func adapt(t *testing.T, body string) (string, error) {
	t.Helper()
	src := "example.com {\n\tsession {\n" + body + "\n\t}\n\treverse_proxy 127.0.0.1:9\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	return string(out), err
}

func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	brokenUsers := write("users", "# users\nalice:"+testHash+"\nbob:plaintext\n")
	badGroupUsers := write("group-users", "alice:"+testHash+":admin,,ops\n")
	brokenTemplate := write("login.html", "{{if}}")
	long := strings.Repeat("s", 32)

	assertCaddyfileErrors(t, []caddyfileError{
		{"unknown subdirective", "store memory\nfrobnicate on", 4, `unknown subdirective "frobnicate"`},
		{"duplicate store", "store memory\nstore bolt", 4, "store given twice"},
		{"duplicate secret", "secret " + strings.Repeat("a", 32) + "\nsecret " + strings.Repeat("b", 32), 4, "secret given twice"},
		{"duplicate cookie option", "cookie {\nname a\nname b\n}", 5, "name given twice"},
		{"duplicate user", "user alice " + testHash + "\nuser alice " + testHash, 4, `user "alice" given twice`},
		{"unknown store", "store mongo", 3, `unknown backend`},
		{"bad hash", "user alice plaintext", 3, "not a bcrypt or argon2id hash"},
		{"bad duration", "idle_timeout soon", 3, `idle_timeout "soon"`},
		{"negative lifetime", "lifetime -1h", 3, "lifetime"},
		{"zero lifetime", "lifetime 0", 3, "lifetime"},
		{"bad on/off", "forward_cookie yes", 3, "forward_cookie"},
		{"bad secure", "cookie {\nsecure sometimes\n}", 4, "secure"},
		{"bad same_site", "cookie {\nsame_site loose\n}", 4, "same_site"},
		{"unknown cookie option", "cookie {\nflavour chocolate\n}", 4, "unknown option"},
		{"bad login_limit", "login_limit five 15m", 3, "login_limit failures"},
		{"bad login window", "login_limit 5 forever", 3, "login_limit window"},
		{"login_limit arity", "login_limit 5", 3, "login_limit needs"},
		{"bad path_prefix", "path_prefix session", 3, "path_prefix"},
		{"bad header name", "user_header Bad:Name", 3, "user_header"},
		{"redis without url", "store redis", 3, "URL"},
		{"redis bad url", "store redis http://x", 3, "store redis"},
		{"redis unknown option", "store redis redis://127.0.0.1:6379 {\nflavour x\n}", 4, "unknown option"},
		{"redis sentinel and cluster", "store redis redis://127.0.0.1:6379 {\nsentinel m 127.0.0.1:26379\ncluster 127.0.0.1:7000\n}", 6, "cannot both"},
		{"redis cache bad max age", "store redis redis://127.0.0.1:6379 {\ncache soon\n}", 4, `cache "soon"`},
		{"redis cache zero max age", "store redis redis://127.0.0.1:6379 {\ncache 0s\n}", 4, "positive max age or off"},
		{"redis cache of another word", "store redis redis://127.0.0.1:6379 {\ncache on\n}", 4, "positive max age or off"},
		{"redis cache two values", "store redis redis://127.0.0.1:6379 {\ncache 1s 2s\n}", 4, "wrong argument count"},
		{"redis cache twice", "store redis redis://127.0.0.1:6379 {\ncache\ncache 2s\n}", 5, "cache given twice"},
		{"memory with an argument", "store memory big", 3, "wrong argument count"},
		{"public without matchers", "public {\n}", 4, "at least one matcher"},
		{"split_path without markers", "split_path", 3, "split_path needs at least one marker"},
		{"split_path with a slash", "split_path /x.php", 3, `split_path "/x.php"`},
		{"split_path twice", "split_path .php\nsplit_path .phtml", 4, "split_path given twice"},
		{"user arity", "user alice", 3, "user needs a name and a password hash"},
		{"user bad group", "user alice " + testHash + " admin o,ps", 3, `user "alice": group "o,ps" contains a comma`},
		{"user duplicate group", "user alice " + testHash + " admin admin", 3, `group "admin" given twice`},

		// Values that only fail when used are checked while parsing too.
		{"short secret", "secret tooshort", 3, "secret #1 is 8 bytes long; it must be at least 32"},
		{"short older secret", "secret " + long + " tooshort", 3, "secret #2 is 8 bytes long"},
		{"other placeholder in secret", "secret {system.hostname}" + long, 3, "placeholder other than {env.*} and {file.*}"},
		{"env placeholder without a name", "secret {env.}", 3, "secret #1: {env.} does not name an environment variable"},
		{"env placeholder with a bad name", "secret " + long + " {env.SESSION-SECRET}", 3, "secret #2: {env.SESSION-SECRET} does not name an environment variable"},
		{"file placeholder without a path", "secret {file.}", 3, "secret #1: a placeholder other than"}, // {file.*} is a shorthand of the Caddyfile
		{"unclosed env placeholder", "secret {env.SESSION_SECRET", 3, "secret #1: a placeholder {env.... is not closed"},
		{"missing users_file", "users_file " + dir + "/nothing", 3, "users_file: stat " + dir + "/nothing: no such file"},
		{"broken users_file", "\nusers_file " + brokenUsers, 4, "users_file " + brokenUsers + `: line 3: user "bob": not a bcrypt or argon2id hash`},
		{"users_file bad group", "users_file " + badGroupUsers, 3, `line 1: user "alice": empty group name`},
		{"missing login_template", "login_template " + dir + "/nothing.html", 3, "login_template: stat"},
		{"broken login_template", "login_template " + brokenTemplate, 3, "login_template: template: login.html:1: missing value for if"},
		{"__Host- with domain", "cookie {\nname __Host-s\ndomain example.com\n}", 5, "__Host-"},
		{"domain, then __Host-", "cookie {\ndomain example.com\nname __Host-s\n}", 5, "__Host-"},
		{"__Host- with a path", "cookie {\nname __Host-s\npath /app\n}", 5, "__Host-"},
		{"__Host- with secure never", "cookie {\nsecure never\nname __Host-s\n}", 5, "__Host-"},
		{"__host- in lower case with a domain", "cookie {\nname __host-s\n\ndomain example.com\n}", 6, "cannot have a domain"},
		{"__Secure- with secure never", "cookie {\nname __Secure-s\nsecure never\n}", 5, "secure never contradicts it"},
		{"same_site none with secure never", "cookie {\nsame_site none\nsecure never\n}", 5, "same_site none"},

		// Each error names the subdirective, not one of its values.
		{"idle_timeout in two words", "idle_timeout 30 minutes", 3, "idle_timeout needs exactly one value"},
		{"lifetime twice over", "lifetime 1h 2h", 3, "lifetime needs exactly one value"},
		{"idle_timeout without a value", "idle_timeout", 3, "idle_timeout needs exactly one value"},
		{"negative idle_timeout", "idle_timeout -1m", 3, `idle_timeout "-1m": want a duration such as 30m, or 0 to disable`},
		{"path_prefix two values", "path_prefix /a /b", 3, "path_prefix needs exactly one value"},
		{"header_prefix two values", "header_prefix X-A- X-B-", 3, "header_prefix needs exactly one value"},
		{"users_file two values", "users_file a b", 3, "users_file needs exactly one value"},
		{"login_template two values", "login_template a b", 3, "login_template needs exactly one value"},
		{"forward_cookie two values", "forward_cookie on off", 3, "forward_cookie needs exactly one value"},
		{"upstream_control without a value", "upstream_control", 3, "upstream_control needs exactly one value"},
		{"cookie name two values", "cookie {\nname a b\n}", 4, "name needs exactly one value"},
		{"cookie secure two values", "cookie {\nsecure always never\n}", 4, "secure needs exactly one value"},
		{"cookie domain two values", "cookie {\ndomain a b\n}", 4, "domain needs exactly one value"},
		{"cookie path two values", "cookie {\npath /a /b\n}", 4, "path needs exactly one value"},
		{"cookie persist two values", "cookie {\npersist on off\n}", 4, "persist needs exactly one value"},
		{"cookie same_site two values", "cookie {\nsame_site lax strict\n}", 4, "same_site needs exactly one value"},
		{"cookie with an argument", "cookie x {\n}", 3, `cookie takes a block, not "x"`},
		{"secret without a value", "secret", 3, "secret needs at least one value"},
		{"user_header without a value", "user_header", 3, "user_header needs at least one header name"},
	})
}

func TestCaddyfileFullExample(t *testing.T) {
	dir := t.TempDir()
	usersFile, loginTemplate := filepath.Join(dir, "users"), filepath.Join(dir, "login.html")
	if err := os.WriteFile(usersFile, []byte("carol:"+testHash+":staff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loginTemplate, []byte(`<!DOCTYPE html><title>Sign in</title>`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, `
		store redis rediss://user:pw@127.0.0.1:6380/2 {
			prefix app:
			dial_timeout 3s
		}
		secret `+strings.Repeat("n", 32)+` `+strings.Repeat("o", 32)+`
		user alice `+testHash+` admin ops
		user bob `+testHash+`
		users_file `+usersFile+`
		path_prefix /.auth
		public {
			path /static/* /healthz
			method OPTIONS
		}
		idle_timeout 0
		lifetime 8h
		cookie {
			name app
			domain example.com
			path /
			secure always
			same_site strict
			persist on
		}
		header_prefix X-Auth-
		user_header Remote-User X-Webauth-User
		forward_cookie on
		upstream_control on
		login_template `+loginTemplate+`
		login_limit 10 1h`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseAdapted(t, out)
	var h map[string]any
	for _, srv := range cfg.Apps.HTTP.Servers {
		json.Unmarshal(srv.Routes[0].Handle[0].Routes[0].Handle[0], &h)
	}
	if h["handler"] != "session" {
		t.Fatalf("first handler is %v, want session before reverse_proxy:\n%s", h["handler"], out)
	}
	want := map[string]string{
		"store":            `{"backend":"redis","dial_timeout":3000000000,"prefix":"app:","url":"rediss://user:pw@127.0.0.1:6380/2"}`,
		"idle_timeout":     `0`,
		"lifetime":         `28800000000000`,
		"path_prefix":      `"/.auth"`,
		"header_prefix":    `"X-Auth-"`,
		"user_headers":     `["Remote-User","X-Webauth-User"]`,
		"forward_cookie":   `true`,
		"upstream_control": `true`,
		"login_limit":      `{"failures":10,"window":3600000000000}`,
		"cookie":           `{"domain":"example.com","name":"app","path":"/","persist":true,"same_site":"strict","secure":"always"}`,
		"public":           `[{"method":["OPTIONS"],"path":["/static/*","/healthz"]}]`,
		"users_file":       `"` + usersFile + `"`,
		"login_template":   `"` + loginTemplate + `"`,
		"users":            `[{"groups":["admin","ops"],"hash":"` + testHash + `","name":"alice"},{"hash":"` + testHash + `","name":"bob"}]`,
	}
	for k, v := range want {
		got, _ := json.Marshal(h[k])
		if string(got) != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
}

func TestSessionNeedsNoOrder(t *testing.T) {
	// session goes after rewrites and before basic_auth and the
	// responders, wherever it is written.
	src := "example.com {\n\treverse_proxy 127.0.0.1:9\n\tbasic_auth /admin/* {\n\t\tbob " + testHash + "\n\t}\n\tsession {\n\t\tstore memory\n\t}\n\turi strip_prefix /app\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}.Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	rewrite, session, auth, proxy := strings.Index(s, `"handler":"rewrite"`), strings.Index(s, `"handler":"session"`), strings.Index(s, `"handler":"authentication"`), strings.Index(s, `"handler":"reverse_proxy"`)
	if !(rewrite >= 0 && rewrite < session && session < auth && auth < proxy) {
		t.Fatalf("handler order rewrite=%d session=%d auth=%d proxy=%d:\n%s", rewrite, session, auth, proxy, s)
	}
}

// caddyfileError is a session block that adapt must refuse, with the
// line and the words its error must name.
type caddyfileError struct {
	name, body string
	line       int
	want       string
}

// assertCaddyfileErrors adapts each case's body in a subtest and checks
// that the error says what it wants, at its line.
func assertCaddyfileErrors(t *testing.T, tests []caddyfileError) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.body)
			if err == nil {
				t.Fatalf("no error for %q", tt.body)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if want := "Caddyfile:" + itoa(tt.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name line %s", err, want)
			}
		})
	}
}

// adaptedConfig is the part of an adapted Caddyfile's JSON that holds the
// handlers of the site's routes.
type adaptedConfig struct {
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Routes []struct {
					Handle []struct {
						Routes []struct {
							Handle []json.RawMessage `json:"handle"`
						} `json:"routes"`
					} `json:"handle"`
				} `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
	} `json:"apps"`
}

func parseAdapted(t *testing.T, out string) adaptedConfig {
	t.Helper()
	var cfg adaptedConfig
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSessionTakesNoArguments(t *testing.T) {
	src := "example.com {\n\tsession extra {\n\t\tstore memory\n\t}\n}\n"
	_, _, err := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "session takes no arguments") || !strings.Contains(err.Error(), "Caddyfile:2") {
		t.Fatalf("session with an argument: %v", err)
	}
}

func TestSecretErrorsShowNoSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/secret", []byte("file-sekrit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGESESSION_TEST_SHORT", "env-sekrit")
	for body, value := range map[string]string{
		"secret lit-sekrit":                                       "lit-sekrit",
		"secret {file." + dir + "/secret}":                        "file-sekrit",
		"secret {env.EDGESESSION_TEST_SHORT}":                     "env-sekrit",
		"secret pre-sekrit{env.EDGESESSION_TEST_SHORT}":           "sekrit",
		"secret brace{sekrit-in-braces}0123456789abcdefghijklmno": "sekrit-in-braces",
	} {
		// A placeholder is read at provision only; a literal is measured
		// while parsing too, with the same message and the line.
		_, err := adapt(t, body)
		placeholder := strings.Contains(body, "{env.") || strings.Contains(body, "{file.")
		if placeholder != (err == nil) || err != nil && !strings.Contains(err.Error(), "Caddyfile:3") {
			t.Errorf("%q: %v", body, err)
			continue
		}
		if err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("%q: the error shows the secret: %v", body, err)
		}
		h := &Handler{Secrets: strings.Fields(body)[1:]}
		if _, perr := h.loadSecrets(caddy.Context{}); perr == nil || strings.Contains(perr.Error(), value) || err != nil && !strings.Contains(err.Error(), perr.Error()) {
			t.Errorf("%q at provision: %v (Caddyfile: %v)", body, perr, err)
		}
	}
	// Long enough, from the environment and a file, escaped braces kept.
	t.Setenv("EDGESESSION_TEST_LONG", strings.Repeat("e", 32))
	if err := os.WriteFile(dir+"/long", []byte(strings.Repeat("f", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"{env.EDGESESSION_TEST_LONG}":                     strings.Repeat("e", 32),
		"{file." + dir + "/long}":                         strings.Repeat("f", 32),
		`\{not-a-placeholder\}` + strings.Repeat("x", 32): "{not-a-placeholder}" + strings.Repeat("x", 32),
	} {
		if got, err := resolveSecret(1, in); err != nil || string(got) != want {
			t.Errorf("resolveSecret(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// `caddy adapt` checks a secret's placeholders for their form only, so
// that a CI job without the production secrets can adapt the config; at
// provision (`caddy validate`, `caddy run`) what they stand for must be
// there and long enough, and the error names the secret and the variable
// or the file.
func TestSecretPlaceholdersAreReadAtProvision(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/short", []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGESESSION_TEST_EMPTY", "")
	t.Setenv("EDGESESSION_TEST_SHORT", "short")
	long := strings.Repeat("s", 32)
	for _, tt := range []struct{ secrets, want string }{
		{"{env.EDGESESSION_TEST_UNSET}", "secret #1: environment variable EDGESESSION_TEST_UNSET is unset or empty"},
		{long + " {env.EDGESESSION_TEST_EMPTY}", "secret #2: environment variable EDGESESSION_TEST_EMPTY is unset or empty"},
		{"{env.EDGESESSION_TEST_SHORT}", "secret #1 ({env.EDGESESSION_TEST_SHORT}) is 5 bytes long; it must be at least 32"},
		{"prefix-{env.EDGESESSION_TEST_SHORT}", "secret #1 is 12 bytes long; it must be at least 32"},
		{"{file." + dir + "/nothing}", "secret #1: stat " + dir + "/nothing: no such file"},
		{"{file." + dir + "/short}", "secret #1 ({file." + dir + "/short}) is 5 bytes long"},
		{"{file." + dir + "}", "secret #1: " + dir + " is not a regular file"},
	} {
		if _, err := adapt(t, "secret "+tt.secrets); err != nil {
			t.Errorf("adapt %q: %v", tt.secrets, err)
		}
		h := &Handler{Secrets: strings.Fields(tt.secrets)}
		if _, err := h.loadSecrets(caddy.Context{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("provision %q: %v; want %q", tt.secrets, err, tt.want)
		}
	}
	// An OIDC client secret too.
	body := "oidc a {\nissuer https://a.example\nclient_id x\nclient_secret {env.EDGESESSION_TEST_UNSET_OIDC}\n}"
	if _, err := adapt(t, body); err != nil {
		t.Errorf("adapt an OIDC client_secret of an unset variable: %v", err)
	}
}

func TestCookiePrefixRulesInJSON(t *testing.T) {
	for _, tt := range []struct {
		c    Cookie
		want string
	}{
		{Cookie{Name: "__Secure-s", Path: "/", Secure: "never"}, "secure never contradicts it"},
		{Cookie{Name: "__secure-s", Path: "/", Secure: "never"}, "secure never contradicts it"},
		{Cookie{Name: "__HOST-s", Path: "/", Domain: "example.com"}, "cannot have a domain"},
		{Cookie{Name: "__host-s", Path: "/app"}, "must have path /"},
		{Cookie{Name: "__Host-s", Path: "/", Secure: "never"}, "__Host-"},
		{Cookie{Name: "__Secure-s", Path: "/app", Domain: "example.com", Secure: "auto"}, ""},
		{Cookie{Name: "__Host-s", Path: "/", Secure: "always"}, ""},
		{Cookie{Name: "Secure-s", Path: "/", Secure: "never"}, ""},
	} {
		h := &Handler{Cookie: tt.c}
		h.setDefaults()
		err := h.validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
}
