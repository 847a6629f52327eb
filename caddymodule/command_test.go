package caddymodule

import (
	"bytes"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
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
		!strings.Contains(lines[1], "2026-01-02 03:05:05") || !strings.Contains(lines[1], "Firefox 128 x") || !strings.Contains(lines[2], " - ") ||
		lines[3] != "alice: 2 sessions" {
		t.Fatalf("table:\n%s", out.String())
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
