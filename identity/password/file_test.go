package password

import (
	"slices"
	"strings"
	"testing"
)

// testHash is bcrypt at cost 4.
const testHash = "$2a$04$hP0nbPZKmD7xY5mfdpahD.5V/hHm.PVKyAoqwzoCJUeJVSz0Y0zF6"

func TestParseUsersFile(t *testing.T) {
	good := "# comment\n\nalice:" + testHash + "\n  bob:" + testHash + "  \ncarol:" + testHash + ":admin,ops\ndave:" + fuzzArgonHash + ":org:team,zoë\n"
	users, err := parseUsersFile(strings.NewReader(good))
	if err != nil || len(users) != 4 {
		t.Fatalf("parseUsersFile: %v %v", users, err)
	}
	for name, want := range map[string][]string{"alice": nil, "bob": nil, "carol": {"admin", "ops"}, "dave": {"org:team", "zoë"}} {
		if got := users[name].groups; !slices.Equal(got, want) {
			t.Errorf("%s's groups = %q, want %q", name, got, want)
		}
	}
	for in, want := range map[string]string{
		"alice":       "line 1: want name:hash",
		"alice:plain": "line 1: user \"alice\": not a bcrypt",
		"\nalice:" + testHash + "\nalice:" + testHash: "line 3: user \"alice\" is given twice",
		":" + testHash:                     "line 1: empty user name",
		"alice:" + testHash + ":":          "line 1: user \"alice\": empty group name",
		"alice:" + testHash + ":a,,b":      "line 1: user \"alice\": empty group name",
		"alice:" + testHash + ":a,b,a":     "line 1: user \"alice\": group \"a\" given twice",
		"alice:" + testHash + ":a, b":      "line 1: user \"alice\": group \" b\" contains a space",
		"alice:" + testHash + ":a\x7fb":    "contains a control character",
		"alice:" + testHash + ":\xff":      "not valid UTF-8",
		"alice:" + testHash + ":admin:ops": "", // one group, "admin:ops"
	} {
		_, err := parseUsersFile(strings.NewReader(in))
		if want == "" {
			if err != nil {
				t.Errorf("parseUsersFile(%q) = %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseUsersFile(%q) = %v, want %q", in, err, want)
		}
	}
}
