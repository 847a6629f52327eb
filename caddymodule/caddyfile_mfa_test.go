package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// adaptedHandler adapts body and returns the session handler's JSON, read
// back into a Handler.
func adaptedHandler(t *testing.T, body string) Handler {
	t.Helper()
	out, err := adapt(t, body)
	if err != nil {
		t.Fatal(err)
	}
	var h Handler
	for _, srv := range parseAdapted(t, out).Apps.HTTP.Servers {
		if err := json.Unmarshal(srv.Routes[0].Handle[0].Routes[0].Handle[0], &h); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestMFACaddyfile(t *testing.T) {
	for _, tt := range []struct {
		name, body, want string
	}{
		{"on, required of no one", "mfa", `{}`},
		{"required of everyone", "mfa required", `{"required":{}}`},
		{"required of some", "mfa required {\nuser alice bob\ngroup admin\nuser corp:carol\n}",
			`{"required":{"users":["alice","bob","corp:carol"],"groups":["admin"]}}`},
		{"settings", "mfa {\nissuer \"Acme Wiki\"\nrp_id example.com\norigins https://example.com https://app.example.com:8443\noidc_amr off\n}",
			`{"issuer":"Acme Wiki","rp_id":"example.com","origins":["https://example.com","https://app.example.com:8443"],"oidc_amr":false}`},
		{"required with settings", "mfa required {\ngroup admin\noidc_amr on\n}", `{"required":{"groups":["admin"]},"oidc_amr":true}`},
		{"required with settings only: everyone", "mfa required {\nissuer Wiki\n}", `{"required":{},"issuer":"Wiki"}`},
		{"an empty block", "mfa {\n}", `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := adaptedHandler(t, tt.body)
			got, _ := json.Marshal(h.MFA)
			if string(got) != tt.want {
				t.Errorf("mfa = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMFACaddyfileErrorsNameTheLine(t *testing.T) {
	assertCaddyfileErrors(t, []caddyfileError{
		{"twice", "mfa\nmfa required", 4, "mfa given twice"},
		{"another word", "mfa optional", 3, `mfa "optional": want`},
		{"required names inline", "mfa required alice", 3, "name who must in a block"},
		{"user without required", "mfa {\nuser alice\n}", 4, "write `mfa required {`"},
		{"group without required", "mfa {\ngroup admin\n}", 4, "write `mfa required {`"},
		{"user without names", "mfa required {\nuser\n}", 4, "user needs at least one name"},
		{"bad user", "mfa required {\nuser a/b\n}", 4, `required user "a/b"`},
		{"bad provider user", "mfa required {\nuser x:y:z\n}", 4, `required user "x:y:z"`},
		{"user twice", "mfa required {\nuser alice\nuser alice\n}", 5, `required user "alice" given twice`},
		{"bad group", "mfa required {\ngroup a,b\n}", 4, `required group "a,b"`},
		{"unknown option", "mfa {\nflavour x\n}", 4, `mfa: unknown option "flavour"`},
		{"issuer twice", "mfa {\nissuer a\nissuer b\n}", 5, "issuer given twice"},
		{"issuer with a colon", "mfa {\nissuer a:b\n}", 4, "no ':'"},
		{"issuer empty", "mfa {\nissuer \"\"\n}", 4, "issuer is empty"},
		{"issuer two words", "mfa {\nissuer Acme Wiki\n}", 4, "quote a name with spaces"},
		{"rp_id with a scheme", "mfa {\nrp_id https://example.com\n}", 4, `rp_id "https://example.com"`},
		{"rp_id with a port", "mfa {\nrp_id example.com:443\n}", 4, `rp_id "example.com:443"`},
		{"rp_id upper case", "mfa {\nrp_id Example.com\n}", 4, "lower case"},
		{"rp_id an address", "mfa {\nrp_id 127.0.0.1\n}", 4, `rp_id "127.0.0.1"`},
		{"rp_id two values", "mfa {\nrp_id a.com b.com\n}", 4, "rp_id needs exactly one value"},
		{"origins without one", "mfa {\norigins\n}", 4, "origins needs at least one origin"},
		{"origin with a path", "mfa {\norigins https://example.com/\n}", 4, "no user, path"},
		{"origin with a query", "mfa {\norigins https://example.com?x\n}", 4, "no user, path"},
		{"origin of another scheme", "mfa {\norigins ftp://example.com\n}", 4, "want an http or https origin"},
		{"origin without a scheme", "mfa {\norigins example.com\n}", 4, "want an http or https origin"},
		{"origin with a user", "mfa {\norigins https://u@example.com\n}", 4, "no user, path"},
		{"origin with a bad port", "mfa {\norigins https://example.com:99999\n}", 4, `port "99999"`},
		{"origin in upper case", "mfa {\norigins HTTPS://example.com\n}", 4, "as a browser sends it"},
		{"origin outside rp_id", "mfa {\nrp_id example.com\norigins https://example.org\n}", 5, "not rp_id example.com nor under it"},
		{"origin outside rp_id, rp_id after", "mfa {\norigins https://notexample.com\nrp_id example.com\n}", 5, "not rp_id example.com nor under it"},
		{"oidc_amr of another word", "mfa {\noidc_amr yes\n}", 4, "oidc_amr"},
	})
}

func TestAllowMFACaddyfile(t *testing.T) {
	h := adaptedHandler(t, "allow group admin {\npath /admin/*\nmfa\n}\nallow user alice {\nmfa\n}\nallow user bob {\nheader X-Mode mfa\n}")
	if len(h.Rules) != 3 {
		t.Fatalf("rules: %+v", h.Rules)
	}
	r0, r1, r2 := h.Rules[0], h.Rules[1], h.Rules[2]
	if !r0.MFA || string(r0.MatchRaw[0]["path"]) != `["/admin/*"]` || len(r0.MatchRaw[0]) != 1 {
		t.Errorf("rule 1: %+v", r0)
	}
	if !r1.MFA || r1.MatchRaw != nil {
		t.Errorf("rule 2 (mfa alone: every request): %+v", r1)
	}
	if r2.MFA || string(r2.MatchRaw[0]["header"]) != `{"X-Mode":["mfa"]}` {
		t.Errorf("rule 3 (mfa as a matcher's value is the matcher's): %+v", r2)
	}

	assertCaddyfileErrors(t, []caddyfileError{
		{"mfa with an argument", "allow group admin {\npath /admin/*\nmfa otp\n}", 5, "mfa takes no arguments"},
		{"mfa twice", "allow group admin {\nmfa\npath /admin/*\nmfa\n}", 6, "mfa given twice"},
		{"a matcher after mfa still checked", "allow group admin {\nmfa\nfrob x\n}", 6, "frob"},
	})
}

// TestMFAProvisionChecks: JSON config is checked as the Caddyfile is, and
// a rule that says mfa needs second factors on (else its users could
// never reach what it covers: nothing would let them prove one).
func TestMFAProvisionChecks(t *testing.T) {
	h := &Handler{Rules: []Rule{{Groups: []string{"admin"}, MFA: true}}}
	if err := h.setupMFA(nil); err == nil || !strings.Contains(err.Error(), "rule #1 says mfa, but second factors are off") {
		t.Errorf("a rule with mfa, mfa off: %v", err)
	}
	for _, m := range []*MFA{
		{RPID: "Example.com"},
		{Origins: []string{"https://example.com/x"}},
		{RPID: "example.com", Origins: []string{"https://evil.com"}},
		{Required: &MFARequired{Users: []string{"a/b"}}},
		{Required: &MFARequired{Groups: []string{"a,b"}}},
		{Issuer: "a:b"},
	} {
		h := &Handler{MFA: m}
		if err := h.setupMFA(nil); err == nil || !strings.HasPrefix(err.Error(), "mfa: ") || strings.Contains(err.Error(), "cookie store") {
			t.Errorf("%+v: %v, want the value's error", m, err)
		}
	}
}

// TestMFADocsExamples adapts the mfa examples of docs/configuration.md and
// docs/rules.md (the root package's docs tests adapt them there too).
func TestMFADocsExamples(t *testing.T) {
	for _, body := range []string{
		"store bolt\nmfa",
		"mfa required",
		"mfa required {\n\tuser alice bob\n\tgroup admin\n}",
		"mfa required {\n\tgroup admin\n\tissuer \"Acme Wiki\"\n\trp_id example.com\n\torigins https://example.com https://wiki.example.com\n\toidc_amr on\n}",
		"mfa\nallow group admin {\n\tpath /admin/*\n\tmfa\n}",
	} {
		if _, err := adapt(t, body); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	src := "example.com {\n\tsession {\n\t\tstore memory\n\t}\n\t@strong session amr otp hwk\n\thandle @strong {\n\t\treverse_proxy admin-ui:8080\n\t}\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}.Adapt([]byte(src), nil)
	if err != nil || !strings.Contains(string(out), `"amr":["otp","hwk"]`) {
		t.Errorf("the matcher example: %v\n%s", err, out)
	}
}
