package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

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
	tests := []struct {
		name, body string
		line       int
		want       string
	}{
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
		{"memory with an argument", "store memory big", 3, "wrong argument count"},
		{"public without matchers", "public {\n}", 4, "at least one matcher"},
		{"user arity", "user alice", 3, "user needs a name and a password hash"},
	}
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

func TestCaddyfileFullExample(t *testing.T) {
	out, err := adapt(t, `
		store redis rediss://user:pw@127.0.0.1:6380/2 {
			prefix app:
			dial_timeout 3s
		}
		secret `+strings.Repeat("n", 32)+` `+strings.Repeat("o", 32)+`
		user alice `+testHash+`
		user bob `+testHash+`
		users_file /etc/edgesession/users
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
		login_template /etc/edgesession/login.html
		login_limit 10 1h`)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
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
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
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
		"users_file":       `"/etc/edgesession/users"`,
	}
	for k, v := range want {
		got, _ := json.Marshal(h[k])
		if string(got) != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	if users, _ := h["users"].([]any); len(users) != 2 {
		t.Errorf("users = %v", h["users"])
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

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSessionTakesNoArguments(t *testing.T) {
	src := "example.com {\n\tsession extra {\n\t\tstore memory\n\t}\n}\n"
	_, _, err := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "session takes no arguments") || !strings.Contains(err.Error(), "Caddyfile:2") {
		t.Fatalf("session with an argument: %v", err)
	}
}
