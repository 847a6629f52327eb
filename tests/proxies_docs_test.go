package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// proxyConfigFiles are the configurations of testdata/proxies that the
// README shows, in its section "Behind nginx, Traefik or another proxy".
var proxyConfigFiles = []string{"auth.Caddyfile", "nginx.conf", "traefik-static.yml", "traefik.yml", "forward_auth.Caddyfile"}

// TestProxyDocsNginxTraefikForwardAuth holds the README to the tested
// configurations: each file of testdata/proxies, filled with the README's
// addresses (proxyDocVars), is the body of a fenced block of the
// documentation (README.md, docs/*.md, or docs-pending/*.md until the
// section is folded in), character for character.
func TestProxyDocsNginxTraefikForwardAuth(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	pending, _ := filepath.Glob("../docs-pending/*.md")
	files = append(append([]string{"../README.md"}, files...), pending...)
	var bodies []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fenceBlockRE.FindAllStringSubmatch(string(b), -1) {
			bodies = append(bodies, m[1])
		}
	}
	for _, name := range proxyConfigFiles {
		want := strings.TrimRight(renderProxyConfig(t, name, proxyDocVarsFor(name)), "\n") + "\n"
		found := false
		for _, b := range bodies {
			found = found || b == want
		}
		if !found {
			t.Errorf("no fenced block of %v is testdata/proxies/%s as the README shows it:\n%s", files, name, want)
		}
	}
}

// fenceBlockRE is a fenced block at the start of a line, unindented: its
// body.
var fenceBlockRE = regexp.MustCompile("(?ms)^```[a-z]*\n(.*?)^```$")
