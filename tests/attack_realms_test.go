// Mount attacks across realms: tokens kept apart, realm names in the storage key.

package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// realmsTemplate is two apps with a realm each under a mount, and one
// without a realm at the root.
const realmsTemplate = `
[[.Site]] {
	handle_path /wiki/* {
		session {
			store memory
			realm wiki
			title "Wiki"
			user admin [[.Extra.alice]] admin
			user bob [[.Extra.bob]]
			allow group admin {
				path /admin/*
			}
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /crm/* {
		session {
			store memory
			realm crm
			title "CRM"
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			title "Root"
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMountRealmsKeepTokensApart: with a realm each, no spelling of
// a path gets the wiki's admin a token that the CRM's or the root app's
// verifier accepts, even a verifier that checks only the signature; each
// JWKS, under any spelling of its mount, publishes its own realm's keys
// and no other's.
func TestAttackMountRealmsKeepTokensApart(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	wiki := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
	crmV := &jwksVerifier{url: c.Site + "/crm/.session/jwks.json"}
	rootV := &jwksVerifier{url: c.Site + "/.session/jwks.json"}
	// Own tokens verify: a refusal below is not a broken verifier.
	crm := loginAt(t, c.Site, "/crm", "admin", bobPassword)
	if tok, _ := tokenVia(t, crm, "/crm/y"); tok == "" {
		t.Fatal("no CRM token")
	} else if _, _, err := crmV.verify(tok, "127.0.0.1/crm", c.Site+"/crm/.session"); err != nil {
		t.Fatalf("the CRM's own token: %v", err)
	}
	signed := 0
	for _, p := range attackPaths {
		tok, e := tokenVia(t, wiki, p)
		if tok == "" {
			continue
		}
		signed++
		claims, _ := decodeClaims(tok)
		aud, _ := claims["aud"].(string)
		iss, _ := claims["iss"].(string)
		// Signature only, with the token's own aud and iss.
		for name, v := range map[string]*jwksVerifier{"CRM": crmV, "root": rootV} {
			if _, _, err := v.verify(tok, aud, iss); err == nil || !strings.Contains(err.Error(), "no key") {
				t.Errorf("GET %s (upstream %q): the %s's keys verify the wiki's token: %v", p, e.Path, name, err)
			}
		}
		if _, _, err := crmV.verify(tok, "127.0.0.1/crm", c.Site+"/crm/.session"); err == nil {
			t.Errorf("GET %s: the CRM's verifier accepts the wiki admin's token", p)
		}
	}
	if signed < 10 {
		t.Fatalf("only %d of the paths reached the wiki signed in", signed)
	}

	kids := func(path string) []string {
		t.Helper()
		r := NewClient(t, c.Site).Get(path)
		if r.StatusCode != http.StatusOK {
			return nil
		}
		var set struct{ Keys []struct{ Kid string } }
		if err := json.Unmarshal(r.Body, &set); err != nil {
			t.Fatalf("%s: %v: %s", path, err, r.Body)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		slices.Sort(out)
		return out
	}
	wikiKids, crmKids, rootKids := kids("/wiki/.session/jwks.json"), kids("/crm/.session/jwks.json"), kids("/.session/jwks.json")
	if len(wikiKids) == 0 || len(crmKids) == 0 || len(rootKids) == 0 {
		t.Fatalf("JWKS: wiki %v crm %v root %v", wikiKids, crmKids, rootKids)
	}
	for _, k := range wikiKids {
		if slices.Contains(crmKids, k) || slices.Contains(rootKids, k) {
			t.Errorf("the wiki's key %s is published by another app too", k)
		}
	}
	if slices.ContainsFunc(crmKids, func(k string) bool { return slices.Contains(rootKids, k) }) {
		t.Error("the CRM and the root app share a key")
	}
	for _, p := range []string{"/WIKI/.session/jwks.json", "/%77iki/.session/jwks.json", "//wiki/.session/jwks.json", "/crm/../wiki/.session/jwks.json", "/crm/..%2fwiki/.session/jwks.json", "/wiki%2f.session/jwks.json"} {
		got := kids(p)
		if got == nil {
			continue
		}
		if !slices.Equal(got, wikiKids) && !slices.Equal(got, crmKids) && !slices.Equal(got, rootKids) {
			t.Errorf("%s publishes %v: the keys of no app", p, got)
		}
		if slices.Equal(got, crmKids) && strings.Contains(strings.ToLower(p), "/wiki/.session") && !strings.Contains(p, "%2f") {
			t.Errorf("%s publishes the CRM's keys", p)
		}
	}
}

// dotRealmsTemplate: realm names are letters, digits, '.', '_' and '-':
// "..", "." and "x.json" are valid. Their keys must stay in files of their
// own under edgesession/, apart from the keys of handlers without a realm.
const dotRealmsTemplate = `
[[.Site]] {
	handle_path /a/* {
		session {
			store memory
			realm ..
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /b/* {
		session {
			store memory
			realm .
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /c/* {
		session {
			store memory
			realm x.json
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackRealmNamesInTheStorageKey: realms named with dots do not
// escape Caddy's storage directory, nor share a key file with another
// realm or with the handlers without a realm.
func TestAttackRealmNamesInTheStorageKey(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, dotRealmsTemplate, WithExtra("alice", aliceHash))
	published := map[string]string{}
	for _, mount := range []string{"/a", "/b", "/c", ""} {
		r := NewClient(t, c.Site).Get(mount + "/.session/jwks.json")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s JWKS: %d", mount, r.StatusCode)
		}
		var set struct{ Keys []struct{ Kid string } }
		if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("%s JWKS: %v %s", mount, err, r.Body)
		}
		for _, k := range set.Keys {
			if other, ok := published[k.Kid]; ok {
				t.Errorf("the apps at %q and %q publish the same key %s", other, mount, k.Kid)
			}
			published[k.Kid] = mount
		}
	}
	var files []string
	err := filepath.WalkDir(c.Dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), "assertion-keys") {
			rel, _ := filepath.Rel(c.Dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("key files: %q, want 4", files)
	}
	for _, f := range files {
		if !strings.Contains(f, "/edgesession/assertion-keys") {
			t.Errorf("a key file outside edgesession/: %s", f)
		}
	}
}
