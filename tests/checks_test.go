package tests

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What `caddy adapt` and `caddy validate` say of a config, run as an
// operator or a CI job would: the built binary, in an environment of its
// own (no EDGESESSION_* variables of the test run).

// caddyCheck runs the Caddy binary under test with args in dir, with only
// HOME, PATH and env set, and returns its standard output and error and
// its exit code.
func caddyCheck(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(caddyBin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("caddy %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// secretCaddyfile keeps its secret in SESSION_SECRET, as the README's
// production example does.
const secretCaddyfile = `{
	admin off
	auto_https off
	persist_config off
}

http://127.0.0.1:0 {
	session {
		secret {env.SESSION_SECRET}
		store memory
		user alice ALICE_HASH
	}
	respond "hello"
}
`

// `caddy adapt` checks the Caddyfile without the secret's variable (a CI
// job has no production secrets); `caddy validate` (which provisions, as
// `caddy run` does) refuses it unset or short, and says which directive
// and which variable.
func TestAdaptNeedsNoSecretValidateDoes(t *testing.T) {
	dir := t.TempDir()
	config := strings.Replace(secretCaddyfile, "ALICE_HASH", aliceHash, 1)
	writeFile(t, filepath.Join(dir, "Caddyfile"), config)
	check := []string{"--config", "Caddyfile", "--adapter", "caddyfile"}

	out, errOut, code := caddyCheck(t, dir, nil, append([]string{"adapt"}, check...)...)
	if code != 0 || !strings.Contains(out, `"secrets":["{env.SESSION_SECRET}"]`) {
		t.Fatalf("caddy adapt without SESSION_SECRET: exit %d\n%s\n%s", code, out, errOut)
	}

	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, "secret #1: environment variable SESSION_SECRET is unset or empty"},
		{[]string{"SESSION_SECRET="}, "secret #1: environment variable SESSION_SECRET is unset or empty"},
		{[]string{"SESSION_SECRET=too-short"}, "secret #1 ({env.SESSION_SECRET}) is 9 bytes long; it must be at least 32"},
	} {
		out, errOut, code := caddyCheck(t, dir, tt.env, append([]string{"validate"}, check...)...)
		if code == 0 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "http.handlers.session") {
			t.Errorf("caddy validate with %q: exit %d, want an error naming the session handler and saying %q\n%s%s", tt.env, code, tt.want, out, errOut)
		}
		if strings.Contains(errOut, "too-short") {
			t.Errorf("caddy validate shows the secret:\n%s", errOut)
		}
	}

	good := []string{"SESSION_SECRET=" + strings.Repeat("x", 32)}
	if out, errOut, code := caddyCheck(t, dir, good, append([]string{"validate"}, check...)...); code != 0 {
		t.Errorf("caddy validate with a good secret: exit %d\n%s%s", code, out, errOut)
	}

	// A malformed placeholder is a syntax error: adapt finds it.
	writeFile(t, filepath.Join(dir, "Caddyfile"), strings.Replace(config, "{env.SESSION_SECRET}", "{env.SESSION-SECRET}", 1))
	if out, errOut, code := caddyCheck(t, dir, nil, append([]string{"adapt"}, check...)...); code == 0 || !strings.Contains(errOut, "{env.SESSION-SECRET} does not name an environment variable") || !strings.Contains(errOut, "Caddyfile:9") {
		t.Errorf("caddy adapt of a malformed placeholder: exit %d\n%s%s", code, out, errOut)
	}
}

// `caddy session --help` does not promise that a revocation is in force
// everywhere at once: with the Redis cache it is within its max age.
func TestSessionCommandHelp(t *testing.T) {
	out, errOut, code := caddyCheck(t, t.TempDir(), nil, "session", "--help")
	help := out + errOut
	if code != 0 || !strings.Contains(help, "revoke-all --yes") {
		t.Fatalf("caddy session --help: exit %d\n%s", code, help)
	}
	if strings.Contains(help, "at once") || !strings.Contains(help, "max age") {
		t.Errorf("caddy session --help promises too much of a revocation:\n%s", help)
	}
}

// revoke-all without --yes is refused before anything is asked of Caddy:
// a plain sentence on standard error for the person at the terminal (not
// a JSON log line), nothing on standard output, and a failing exit code.
func TestSessionRevokeAllWithoutYes(t *testing.T) {
	out, errOut, code := caddyCheck(t, t.TempDir(), nil, "session", "revoke-all", "--address", "127.0.0.1:1")
	const want = "caddy session revoke-all signs every user out of every site; add --yes if that is what you want\n"
	if code == 0 || out != "" || errOut != want {
		t.Errorf("caddy session revoke-all: exit %d, stdout %q, stderr %q; want exit != 0, nothing, %q", code, out, errOut, want)
	}
}

// A Redis that does not answer when Caddy starts: Caddy starts (a fleet
// that boots while Redis is down comes up by itself once it answers), says
// at error level which store and which servers, and fails closed: a login
// is answered 503, and its log line names the store, not the throttle
// whose counts the store keeps. `caddy validate` passes as `caddy run`
// starts, with the same error line.
func TestUnreachableRedisIsNamed(t *testing.T) {
	port := freePort(t) // reserved, so nothing answers there
	where := fmt.Sprintf("127.0.0.1:%d database 0", port)
	store := fmt.Sprintf("redis redis://127.0.0.1:%d/0 {\n\t\t\tdial_timeout 500ms\n\t\t}", port)
	up := StartUpstream(t)
	c := startSite(t, up, store, "")
	if !logHas(c.Logs(), "error", "redis store unreachable", where) {
		t.Errorf("no error-level line at start naming the redis store at %s:\n%s", where, c.Logs())
	}

	cl := NewClient(t, c.Site)
	cl.Allow5xx = true // the 503 is what is expected
	if r := cl.LoginJSON("alice", alicePassword); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login with Redis down: %d, want 503", r.StatusCode)
	}
	logs := c.Logs()
	if !logHas(logs, "error", "session store unavailable: login refused", "redis store ("+where+")") {
		t.Errorf("the failed login's log line does not name the store and its address:\n%s", logs)
	}
	if strings.Contains(logs, "login throttle unavailable") {
		t.Errorf("the log blames the login throttle:\n%s", logs)
	}

	out, errOut, code := caddyCheck(t, c.Dir, nil, "validate", "--config", c.file, "--adapter", "caddyfile")
	if code != 0 || !logHas(errOut, "error", "redis store unreachable", where) {
		t.Errorf("caddy validate with Redis down: exit %d, want 0 and the error line naming %s\n%s%s", code, where, out, errOut)
	}
}

// logHas reports whether one line of a JSON log has level and says each
// of what.
func logHas(log, level string, what ...string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `"level":"`+level+`"`) {
			continue
		}
		all := true
		for _, w := range what {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
