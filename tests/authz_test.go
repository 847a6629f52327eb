package tests

import (
	"testing"
	"time"
)

// TestGroupsForwarded: a logged-in user's groups go to the upstream as
// X-Session-Groups, sorted and comma-space separated, and as
// {http.session.groups}; a client's copy never does; a change in the
// users file applies to live sessions at once.
func TestGroupsForwarded(t *testing.T) {
	up := StartUpstream(t)
	path := t.TempDir() + "/users"
	writeFile(t, path, "carol:"+aliceHash+":staff,ops,admin\n")
	const tmpl = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] zeta alpha
		user bob [[.Extra.bob]]
		users_file [[.Extra.users]]
	}
	request_header X-Groups-Placeholder "<{http.session.groups}>"
	reverse_proxy [[.Upstream]]
}
`
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("users", path))
	forged := []string{"X-Session-Groups: admin", "X_Session_Groups: admin"}
	get := func(cl *Client) Echo {
		t.Helper()
		return cl.Get("/private", forged...).Echo(t)
	}
	want := func(e Echo, groups string) {
		t.Helper()
		got := e.Headers["X-Session-Groups"]
		if groups == "" {
			if len(got) != 0 {
				t.Errorf("X-Session-Groups = %q, want none", got)
			}
		} else if len(got) != 1 || got[0] != groups {
			t.Errorf("X-Session-Groups = %q, want %q", got, groups)
		}
		if p := e.Headers["X-Groups-Placeholder"]; len(p) != 1 || p[0] != "<"+groups+">" {
			t.Errorf("{http.session.groups} = %q, want %q", p, "<"+groups+">")
		}
		for name := range e.Headers {
			if name == "X_session_groups" {
				t.Errorf("the client's %s reached the upstream", name)
			}
		}
	}

	anon := NewClient(t, c.Site)
	if r := anon.Get("/private", append(forged, "Accept: application/json")...); r.StatusCode != 401 {
		t.Fatalf("anonymous: %d", r.StatusCode)
	}
	alice := NewClient(t, c.Site)
	alice.MustLogin("alice", alicePassword)
	want(get(alice), "alpha, zeta")
	bob := NewClient(t, c.Site)
	bob.MustLogin("bob", bobPassword)
	want(get(bob), "")
	carol := NewClient(t, c.Site)
	carol.MustLogin("carol", alicePassword)
	want(get(carol), "admin, ops, staff")

	// Carol leaves admin: her live session shows it without a new login.
	time.Sleep(10 * time.Millisecond) // a different modification time
	writeFile(t, path, "carol:"+aliceHash+":ops\n")
	waitFor(t, 10*time.Second, "carol's new groups", func() bool {
		g := get(carol).Headers["X-Session-Groups"]
		return len(g) == 1 && g[0] == "ops"
	})
}
