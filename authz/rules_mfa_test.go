package authz

import (
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// mfaRules are `allow group admin { path /admin/*; mfa }` and `allow user
// alice bob { path_regexp ^/billing/ }`.
func mfaRules() Rules {
	rs := testRules()
	rs[0] = &Rule{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, Groups: []string{"admin"}, MFA: true, Name: "#1 allow group admin (mfa)"}
	return rs
}

// TestRulesJudgeStepUp: a rule that says mfa lets a user it names in only
// with a second factor, in every reading of the request the rules judge
// (case, ;params, encodings, the PHP split, Unicode folds, methods), and
// asks for one (SecondFactor) rather than forbidding; a user it does not
// name is forbidden as ever.
func TestRulesJudgeStepUp(t *testing.T) {
	rs := mfaRules()
	admin := groupList{"admin"}
	for _, path := range []string{
		"/admin/x", "/admin/", "/ADMIN/x", "/Admin/x", "/admin;x=1/", "/admin;x=1/y",
		"/%61dmin/", "/%41DMIN/x", "/index.php/admin/", "/INDEX.PHP/admin/x", "/ａｄｍｉｎ/x",
		"/adm%C4%B1n/x", "/admin/x/", "/admin//x",
	} {
		t.Run(path, func(t *testing.T) {
			r := ruleRequest(path)
			var rd Readings
			rd.Read(r, &defaultReadings)
			if v, ru, err := rs.Judge(r, &rd, "carol", admin, false); v != SecondFactor || err != nil || ru.Name != rs[0].Name {
				t.Errorf("admin with a password only: %v %v %v, want SecondFactor by #1", v, ru, err)
			}
			rd = Readings{}
			rd.Read(r, &defaultReadings)
			if v, _, err := rs.Judge(r, &rd, "carol", admin, true); v != Allowed || err != nil {
				t.Errorf("admin with a second factor: %v %v, want Allowed", v, err)
			}
			rd = Readings{}
			rd.Read(r, &defaultReadings)
			if v, _, _ := rs.Judge(r, &rd, "dave", nil, true); v != Forbidden {
				t.Errorf("a user the rule does not name, with a second factor: %v, want Forbidden", v)
			}
		})
	}
}

func TestRulesJudgeStepUpVerdicts(t *testing.T) {
	rs := mfaRules()
	admin := groupList{"admin"}
	tests := []struct {
		name, path, user string
		groups           Groups
		mfa              bool
		want             Verdict
	}{
		{"not under the rule", "/app", "carol", admin, false, Allowed},
		{"another rule's path, named", "/billing/1", "alice", nil, false, Allowed},
		// A reading the mfa rule matches (PHP split: /admin/) and one a
		// rule forbids outright (/billing/ for carol) cannot both be
		// made of one path; a second factor would not help the second.
		{"forbidden elsewhere, step-up here: forbidden", "/billing/1", "carol", admin, false, Forbidden},
		// Unplain: refused unless every rule lets the user in; if a
		// second factor would, it is asked for.
		{"unplain, every rule names the user", "/admin/%2e%2e/x", "bob", groupList{"admin"}, false, SecondFactor},
		{"unplain, a rule does not name the user", "/admin/%2e%2e/x", "carol", admin, false, Unplain},
		{"unplain, named everywhere, mfa proved", "/admin/%2e%2e/x", "bob", groupList{"admin"}, true, Allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ruleRequest(tt.path)
			var rd Readings
			rd.Read(r, &defaultReadings)
			if v, _, _ := rs.Judge(r, &rd, tt.user, tt.groups, tt.mfa); v != tt.want {
				t.Errorf("%s as %s (mfa %v): %v, want %v", tt.path, tt.user, tt.mfa, v, tt.want)
			}
		})
	}
}

// TestRulesJudgeStepUpThenForbidden: a request whose first reading asks
// for a second factor and a later reading is forbidden is forbidden: a
// second step would only lead to a 403.
func TestRulesJudgeStepUpThenForbidden(t *testing.T) {
	rs := Rules{
		{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/index.php"}}}, Groups: []string{"admin"}, MFA: true, Name: "#1 (mfa)"},
		{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/secret/*"}}}, Users: []string{"root"}, Name: "#2"},
	}
	r := ruleRequest("/index.php/secret/x") // the script, and its route
	var rd Readings
	rd.Read(r, &defaultReadings)
	if v, ru, _ := rs.Judge(r, &rd, "carol", groupList{"admin"}, false); v != Forbidden || ru.Name != "#2" {
		t.Errorf("%v by %v, want Forbidden by #2", v, ru)
	}
}
