//go:build race

package tests

// raceEnabled builds the Caddy binary under test with -race too, so that
// the handler is race-checked under real traffic.
const raceEnabled = true
