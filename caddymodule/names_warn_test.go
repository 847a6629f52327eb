package caddymodule

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/identity/oidc"
)

// TestWarnBareNames: with a provider that qualifies its names, a rule's
// bare user or group that no local user has is logged (it likely meant
// the provider's, now <provider>:<name>); local users and groups,
// qualified names, and configs without such a provider are not.
func TestWarnBareNames(t *testing.T) {
	run := func(names string) []observer.LoggedEntry {
		core, logs := observer.New(zap.WarnLevel)
		h := &Handler{logger: zap.New(core)}
		var err error
		h.users, err = newUserDB([]User{{Name: "alice", Hash: bcryptHash(t, "pw"), Groups: []string{"staff"}}}, "", zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		// A context already ended: discovery gives up at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.oidc, err = oidc.New(ctx, []*OIDCProvider{{Name: "corp", Issuer: "https://idp.example", ClientID: "app", Names: names}},
			oidc.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		h.rules = authz.Rules{
			{Users: []string{"alice", "mallory", "corp:bob"}, Name: "#1 deny user"},
			{Groups: []string{"staff", "ops", "corp:ops"}, Name: "#2 allow group"},
		}
		h.warnBareNames()
		return logs.All()
	}
	logs := run(oidc.NamesQualified)
	if len(logs) != 2 || logs[0].ContextMap()["user"] != "mallory" || logs[1].ContextMap()["group"] != "ops" {
		t.Fatalf("warnings: %+v; want mallory and ops", logs)
	}
	if dym, _ := logs[0].ContextMap()["did_you_mean"].([]any); len(dym) != 1 || dym[0] != "corp:mallory" {
		t.Errorf("did_you_mean: %v", logs[0].ContextMap()["did_you_mean"])
	}
	if logs := run(oidc.NamesLocal); len(logs) != 0 {
		t.Errorf("names local: warnings %+v", logs)
	}
}
