package caddymodule

import (
	"bytes"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func TestSessionCommandIsRegistered(t *testing.T) {
	cmd, ok := caddycmd.Commands()["session"]
	if !ok || cmd.CobraFunc == nil {
		t.Fatal("caddy session is not registered")
	}
}

func TestSessionCommandPrintsATable(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	list := AdminSessionList{User: "alice", Stores: 1, Sessions: []AdminSession{
		{Handle: "00112233445566778899aabbccddeeff", Site: "a.example", Source: "password", Created: created, LastSeen: created.Add(time.Minute), ClientIP: "192.0.2.7", UserAgent: "Firefox\t128\nx"},
		{Handle: "ffeeddccbbaa99887766554433221100", Created: created, LastSeen: created},
	}}
	var out bytes.Buffer
	printSessions(&out, list)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "HANDLE") || !strings.Contains(lines[1], "2026-01-02 03:04:05") ||
		!strings.Contains(lines[1], "2026-01-02 03:05:05") || !strings.Contains(lines[1], `"Firefox\t128\nx"`) || !strings.Contains(lines[2], " - ") ||
		lines[3] != "alice: 2 sessions" {
		t.Fatalf("table:\n%s", out.String())
	}
	// What a client wrote is printed quoted when it holds anything but
	// graphic characters: no C1 control (CSI), bidi override or
	// zero-width space reaches the terminal as itself.
	out.Reset()
	list.Sessions = list.Sessions[:1]
	list.Sessions[0].UserAgent = "Mozilla \u009b2J \u202Eevil\u200b"
	printSessions(&out, list)
	if strings.ContainsAny(out.String(), "\u009b\u202E\u200b") || !strings.Contains(out.String(), `"Mozilla \u009b2J \u202eevil\u200b"`) {
		t.Fatalf("a User-Agent of C1 and format characters: %q", out.String())
	}
	if got := printable("Mozilla/5.0 (X11; Linux) Größe"); got != "Mozilla/5.0 (X11; Linux) Größe" {
		t.Errorf("a plain User-Agent is printed as %q", got)
	}
	out.Reset()
	printSessions(&out, AdminSessionList{User: "bob", Stores: 2})
	if out.String() != "bob has no live sessions\n" {
		t.Fatalf("no sessions: %q", out.String())
	}
	out.Reset()
	printSessions(&out, AdminSessionList{User: "bob"})
	if !strings.Contains(out.String(), "no server-side session store") {
		t.Fatalf("no stores: %q", out.String())
	}
}

func TestSessionMFAResetCommand(t *testing.T) {
	cmd := caddycmd.Commands()["session"]
	root := &cobra.Command{Use: "session"}
	cmd.CobraFunc(root)
	found, args, err := root.Find([]string{"mfa", "reset", "alice"})
	if err != nil || found.Name() != "reset" || found.Parent().Name() != "mfa" || len(args) != 1 || found.Flags().Lookup("address") == nil {
		t.Fatalf("caddy session mfa reset: %v %v %v", found, args, err)
	}
	for out, want := range map[AdminMFAReset]string{
		{User: "alice", Reset: 1, Stores: 2}:    "reset the second factors of alice in 1 store",
		{User: "alice", Reset: 0, Stores: 2}:    "alice had no second factor enrolled: nothing to reset",
		{User: "alice"}:                         "this Caddy has no server-side session store (memory, bolt, redis): no second factors to reset",
		{User: "a\u202eb", Reset: 2, Stores: 2}: `reset the second factors of "a\u202eb" in 2 stores`,
	} {
		if got := mfaResetMessage(out); got != want {
			t.Errorf("%+v: %q, want %q", out, got, want)
		}
	}
}
