package tests

import (
	"os"
	"os/exec"
	"testing"
)

func readFile(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCaddy runs the Caddy binary under test with args and returns its
// standard output.
func runCaddy(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(caddyBin, args...).Output()
	if err != nil {
		t.Fatalf("caddy %v: %v", args, err)
	}
	return string(out)
}
