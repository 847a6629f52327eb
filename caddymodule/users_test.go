package caddymodule

import (
	"strings"
	"testing"

	"github.com/edgesession/edgesession/identity/password"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// newUserDB opens the users as Provision does.
func newUserDB(users []User, path string, logger *zap.Logger) (*password.DB, error) {
	return password.Open(users, path, logger)
}

func TestUserGroupsInJSON(t *testing.T) {
	for _, tt := range []struct {
		groups []string
		want   string
	}{
		{[]string{"admin", "ops"}, ""},
		{[]string{""}, "empty group name"},
		{[]string{"a b"}, `group "a b" contains a space`},
		{[]string{"a,b"}, `group "a,b" contains a comma`},
		{[]string{"a\nb"}, "control character"},
		{[]string{"a", "a"}, `group "a" given twice`},
	} {
		h := &Handler{Users: []User{{Name: "alice", Hash: testHash, Groups: tt.groups}}}
		h.setDefaults()
		err := h.validate()
		_, dbErr := password.Open(h.Users, "", zap.NewNop())
		for _, err := range []error{err, dbErr} {
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `user "alice"`)) {
				t.Errorf("groups %q: %v, want %q", tt.groups, err, tt.want)
			}
		}
	}
}
