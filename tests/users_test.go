package tests

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestLoginRefusesBcryptPasswordsOver72Bytes(t *testing.T) {
	up := StartUpstream(t)
	password := strings.Repeat("seventy-two bytes ", 4) // bcrypt reads no more
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c := startSite(t, up, "memory", "user long "+string(hash))
	for _, extra := range []string{"x", " and then anything else at all"} {
		if r := NewClient(t, c.Site).LoginJSON("long", password+extra); r.StatusCode != 401 {
			t.Fatalf("the 72-byte password + %q: %d, want 401", extra, r.StatusCode)
		}
	}
	NewClient(t, c.Site).MustLogin("long", password)
}

func TestUsersFileWithGroups(t *testing.T) {
	up := StartUpstream(t)
	path := t.TempDir() + "/users"
	writeFile(t, path, "# name:hash[:group,group]\nbob:"+bobHash+":staff,ops\ncarol:"+aliceHash+"\n")
	c := startSite(t, up, "memory", "users_file "+path+"\nuser dave "+aliceHash+" admin")
	NewClient(t, c.Site).MustLogin("bob", bobPassword)
	NewClient(t, c.Site).MustLogin("carol", alicePassword)
	NewClient(t, c.Site).MustLogin("dave", alicePassword)

	// A bad group is a config error that names the file's line and the
	// Caddyfile's (the log that carries it escapes the quotes).
	writeFile(t, path+".bad", "bob:"+bobHash+":staff,,ops\n")
	_, err := c.TryReload(strings.Replace(siteTemplate, "[[.Extra.more]]", "users_file "+path+".bad", 1))
	if err == nil || !strings.Contains(err.Error(), `users.bad: line 1: user \"bob\": empty group name, at `) || !strings.Contains(err.Error(), "Caddyfile:") {
		t.Fatalf("a users file with an empty group: %v", err)
	}
}

// slowHash is bcrypt("slow-user-pw") at cost 8: 16 times the work of the
// test users' cost 4.
const slowHash = "$2a$08$zWZBS8X2XbNnTOhp97EmzuQ31mtNqcC6bid/jFcQ2an5Zs7dkGww6"

// TestLoginTimingHidesWhichUsersExist is the one wall-clock check of login
// timing, and a coarse one. Without the fix, a wrong password takes about
// 16 times longer for slow (cost 8) than for alice (cost 4), and an unknown
// user takes as long as one of them. With it, all three are within a
// factor of 4, taking the quickest of a few tries (CPU contention can only
// slow a try down).
func TestLoginTimingHidesWhichUsersExist(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "user slow "+slowHash+"\nlogin_limit 1000 1m")
	cl := NewClient(t, c.Site)
	quickest := func(user string) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if r := cl.LoginJSON(user, "a wrong password"); r.StatusCode != 401 {
				t.Fatalf("wrong password for %s: %d", user, r.StatusCode)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	// The compare times are measured in the background after start.
	var took []time.Duration
	waitFor(t, 60*time.Second, "failed logins for alice, slow and an unknown user to take about as long", func() bool {
		took = []time.Duration{quickest("alice"), quickest("slow"), quickest("nobody")}
		return slices.Max(took) < 4*slices.Min(took)
	})
	t.Logf("quickest failed login: alice (cost 4) %v, slow (cost 8) %v, unknown user %v", took[0], took[1], took[2])
}
