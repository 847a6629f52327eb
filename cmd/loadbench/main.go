// Command loadbench compares, end to end, what a session costs in Caddy:
// one Caddy process built from this checkout serves one site per
// scenario (plain reverse_proxy, session with each store, and Caddy's
// forward_auth asking session's auth endpoint), all in
// front of the same tiny upstream, and a closed-loop load generator sends
// keep-alive requests to each in turn. It reports requests per second,
// latency, and the CPU time Caddy spent per request.
//
//	go run ./cmd/loadbench [-duration 3s] [-rounds 3] [-conns 32] [-out file.md]
//
// Everything runs on 127.0.0.1 and on this machine: the numbers are for
// comparing scenarios with each other, not absolute capacity. The redis
// scenarios (with its local cache, the default, and with "cache off") need a
// Redis server (-redis, "" to skip them).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	benchUser     = "bench"
	benchPassword = "bench-password-1"
	// benchSecret is the fixed session secret of every site: 40 bytes.
	benchSecret = "loadbench-fixed-secret-do-not-use-000001"
	cookieName  = "caddy_session"
)

var selfPID = os.Getpid()

type config struct {
	duration, warmup  time.Duration
	rounds            int
	conns, loginConns int
	out, redisURL     string
	caddyBin          string
	bcryptCost        int
	only              string
	commandLine       string
}

func main() {
	var cfg config
	upstream := flag.Bool("upstream", false, "internal: run as the upstream server")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "measured load per scenario and round")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load per scenario before the first round (0: none)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each runs every scenario once, in an order rotated each round")
	flag.IntVar(&cfg.conns, "conns", 32, "concurrent keep-alive connections (closed loop)")
	flag.IntVar(&cfg.loginConns, "login-conns", 4, "concurrent connections for the login scenario")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&cfg.redisURL, "redis", "redis://127.0.0.1:6379/0", `Redis URL for the redis scenario ("" to skip it)`)
	flag.StringVar(&cfg.caddyBin, "caddy", "", "use this Caddy binary instead of building one from the checkout")
	flag.IntVar(&cfg.bcryptCost, "bcrypt-cost", 10, "bcrypt cost of the bench user's password hash")
	flag.StringVar(&cfg.only, "only", "", `measure only the baseline and these scenarios, comma-separated (e.g. "memory,redis"); all are still checked once`)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./cmd/loadbench [flags]\n\n"+
			"Compares plain reverse_proxy with session (stores memory, bolt, cookie;\n"+
			"memory with rules and assertion; redis with and without its cache; no\n"+
			"cookie; login) in one Caddy built from this checkout.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *upstream {
		runUpstream()
		return
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loadbench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if cfg.duration <= 0 || cfg.warmup < 0 || cfg.rounds < 1 || cfg.conns < 1 || cfg.loginConns < 1 ||
		cfg.bcryptCost < bcrypt.MinCost || cfg.bcryptCost > bcrypt.MaxCost {
		fmt.Fprintln(os.Stderr, "loadbench: -duration, -rounds, -conns and -login-conns must be positive, -warmup not negative, and -bcrypt-cost 4..31")
		os.Exit(2)
	}
	cfg.commandLine = commandLine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &cfg)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "loadbench: interrupted; child processes stopped")
		} else {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
		}
		os.Exit(1)
	}
}

// commandLine is how loadbench was started, as a user would type it.
func commandLine() string {
	prog := os.Args[0]
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		prog = "go run ./cmd/loadbench" // a `go run` temporary binary
	}
	return strings.Join(append([]string{prog}, os.Args[1:]...), " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadbench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg *config) error {
	if len(benchSecret) != 40 {
		panic("benchSecret must be 40 bytes")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if cfg.redisURL != "" {
		u, err := url.Parse(cfg.redisURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-redis %q: want a redis://host:port/db URL", cfg.redisURL)
		}
		host := u.Host
		if u.Port() == "" {
			host += ":6379"
		}
		if err := redisReachable(host); err != nil {
			return fmt.Errorf("redis at %s is not reachable (%v); start it or pass -redis \"\" to skip the redis scenario", host, err)
		}
	}

	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1. Caddy, built once from the checkout.
	bin := cfg.caddyBin
	if bin == "" {
		bin = filepath.Join(dir, "caddy")
		logf("building caddy from %s ...", root)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/caddy")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("building caddy: %w", err)
		}
	}

	// 2. The upstream, a separate process.
	up, upAddr, err := startUpstream()
	if err != nil {
		return err
	}
	defer up.stop()
	logf("upstream (pid %d) on %s", up.pid(), upAddr)

	// 3. One Caddy, one site per scenario.
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), cfg.bcryptCost)
	if err != nil {
		return err
	}
	stores := []struct{ name, store string }{
		{"memory", "store memory"},
		{"bolt", "store bolt " + filepath.Join(dir, "sessions.db")},
		{"cookie", "store cookie"},
		// The per-request work of authorization: the request's readings
		// judged by `public` (no match) and two rules (the first does not
		// match), and a signed assertion (cached per session).
		{"memory+rules+assertion", "store memory\n\t\tpublic {\n\t\t\tpath *.css *.js /static/*\n\t\t}\n\t\tallow group admin {\n\t\t\tpath /admin/*\n\t\t}\n\t\tallow user " + benchUser + " {\n\t\t\tpath /bench*\n\t\t}\n\t\tassertion"},
		// Second factors on (SPEC §13): a step-up rule the request does
		// not match, the vault asked at each login, X-Session-Amr.
		{"memory+mfa rule", "store memory\n\t\tmfa\n\t\tallow group admin {\n\t\t\tpath /admin/*\n\t\t\tmfa\n\t\t}\n\t\tallow user " + benchUser + " {\n\t\t\tpath /bench*\n\t\t}"},
	}
	if cfg.redisURL != "" {
		prefix := fmt.Sprintf("loadbench-%d-%d:", selfPID, time.Now().UnixNano())
		// The default: a local cache (CLIENT TRACKING, 1s max age).
		stores = append(stores, struct{ name, store string }{"redis",
			fmt.Sprintf("store redis %s {\n\t\t\tprefix %s\n\t\t}", cfg.redisURL, prefix)})
		// The same Redis asked on every request, under a prefix of its own.
		stores = append(stores, struct{ name, store string }{"redis, cache off",
			fmt.Sprintf("store redis %s {\n\t\t\tprefix %snocache:\n\t\t\tcache off\n\t\t}", cfg.redisURL, prefix)})
	}
	// The auth endpoint (SPEC §14): a site with forward_auth in front,
	// which asks the auth endpoint of a memory-store site of the same
	// Caddy about each request (a subrequest over loopback), beside the
	// "memory" site that judges it inline.
	ports, err := freePorts(1 + len(stores) + 2)
	if err != nil {
		return err
	}
	sites := []siteConfig{{Port: ports[0]}}
	for i, st := range stores {
		sites = append(sites, siteConfig{Port: ports[1+i], Session: fmt.Sprintf(
			"\t\t%s\n\t\tsecret %s\n\t\tuser %s %s\n\t\tidle_timeout 30m", st.store, benchSecret, benchUser, hash)})
	}
	authPort, frontPort := ports[1+len(stores)], ports[2+len(stores)]
	sites = append(sites,
		siteConfig{Port: authPort, Session: fmt.Sprintf(
			"\t\tstore memory\n\t\tsecret %s\n\t\tuser %s %s\n\t\tidle_timeout 30m\n\t\tauth_endpoint", benchSecret, benchUser, hash)},
		siteConfig{Port: frontPort, Before: fmt.Sprintf(
			"\tforward_auth 127.0.0.1:%d {\n\t\turi /.session/auth\n\t\tcopy_headers X-Session-User X-Session-Groups X-Session-Source\n\t}", authPort)})
	file, err := writeCaddyfile(dir, upAddr, sites)
	if err != nil {
		return err
	}
	caddy, err := startCaddy(bin, dir, file, ports)
	if err != nil {
		return err
	}
	defer caddy.stop()
	logf("caddy (pid %d): baseline on :%d, %d session sites", caddy.pid(), ports[0], len(stores))

	// The scenarios, each checked once before any load.
	loginBody, _ := json.Marshal(map[string]string{"username": benchUser, "password": benchPassword})
	scenarios := []*scenario{{name: "baseline", port: ports[0], method: "GET", path: "/bench", want: 200, conns: cfg.conns}}
	if err := checkUpstream(ctx, scenarios[0], ""); err != nil {
		return fmt.Errorf("preflight baseline: %w", err)
	}
	memoryPort := ports[1]
	for i, st := range stores {
		sc := &scenario{name: st.name, port: ports[1+i], method: "GET", path: "/bench", want: 200, conns: cfg.conns}
		if sc.cookie, err = login(ctx, sc.port, loginBody); err != nil {
			return fmt.Errorf("preflight %s: logging in: %w\n%s", sc.name, err, caddyLogTail(dir))
		}
		if err := checkUpstream(ctx, sc, benchUser); err != nil {
			return fmt.Errorf("preflight %s: %w", sc.name, err)
		}
		scenarios = append(scenarios, sc)
	}
	authSc := &scenario{name: "auth endpoint (forward_auth)", port: frontPort, method: "GET", path: "/bench", want: 200, conns: cfg.conns}
	if authSc.cookie, err = login(ctx, authPort, loginBody); err != nil {
		return fmt.Errorf("preflight %s: logging in: %w\n%s", authSc.name, err, caddyLogTail(dir))
	}
	if err := checkUpstream(ctx, authSc, benchUser); err != nil {
		return fmt.Errorf("preflight %s: %w\n%s", authSc.name, err, caddyLogTail(dir))
	}
	scenarios = append(scenarios, authSc)
	noCookie := &scenario{name: "no cookie (401)", port: memoryPort, method: "GET", path: "/bench", want: 401, conns: cfg.conns}
	if err := checkNoCookie(ctx, noCookie); err != nil {
		return fmt.Errorf("preflight no cookie: %w", err)
	}
	loginSc := &scenario{name: "login (bcrypt)", port: memoryPort, method: "POST", path: "/.session/login", body: loginBody, want: 200, conns: cfg.loginConns}
	scenarios = append(scenarios, noCookie, loginSc)
	if cfg.only != "" {
		scenarios, err = onlyScenarios(scenarios, cfg.only)
		if err != nil {
			return err
		}
	}
	logf("preflight ok: %d scenarios", len(scenarios))

	meter := &cpuMeter{tick: time.Second / time.Duration(clockTicks()), caddy: caddy.pid(), upstream: up.pid()}
	if _, err := meter.sample(); err != nil {
		return err
	}

	// 4. Warm-up, then interleaved rounds.
	if cfg.warmup > 0 {
		logf("warm-up: %v per scenario", cfg.warmup)
		for _, sc := range scenarios {
			if _, err := runSlot(ctx, meter, sc, cfg.warmup); err != nil {
				return err
			}
		}
	}
	results := make(map[string][]slot)
	for r := range cfg.rounds {
		for i := range scenarios {
			sc := scenarios[(i+r)%len(scenarios)]
			s, err := runSlot(ctx, meter, sc, cfg.duration)
			if err != nil {
				return err
			}
			if caddy.exited() {
				return fmt.Errorf("caddy exited during %s:\n%s", sc.name, caddyLogTail(dir))
			}
			results[sc.name] = append(results[sc.name], s)
			logf("round %d/%d %-22s %8.0f req/s  %5d err  caddy %6.1f µs/req (%3.0f%% CPU)  upstream %3.0f%%  loadgen %3.0f%%",
				r+1, cfg.rounds, sc.name, s.rps(), s.errs, us(s.caddyCPU)/float64(max(s.ok, 1)),
				pct(s.caddyCPU, s.elapsed), pct(s.upCPU, s.elapsed), pct(s.selfCPU, s.elapsed))
			if s.errs > 0 {
				logf("  %s: %d unexpected answers, e.g. %s", sc.name, s.errs, s.firstErr)
			}
		}
	}

	// 5, 6. The report.
	report := buildReport(cfg, root, bin, scenarios, results)
	fmt.Print(report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("report written to %s", cfg.out)
	}
	return nil
}

// onlyScenarios keeps the baseline and the scenarios named in the
// comma-separated list, in their usual order.
func onlyScenarios(all []*scenario, list string) ([]*scenario, error) {
	want := map[string]bool{"baseline": true}
	for name := range strings.SplitSeq(list, ",") {
		want[strings.TrimSpace(name)] = true
	}
	var kept []*scenario
	for _, sc := range all {
		if want[sc.name] {
			kept = append(kept, sc)
			delete(want, sc.name)
		}
	}
	if len(want) > 0 {
		var names []string
		for _, sc := range all {
			names = append(names, sc.name)
		}
		return nil, fmt.Errorf("-only: no scenario %q; there are %q", slices.Sorted(maps.Keys(want)), names)
	}
	return kept, nil
}

// moduleRoot returns the directory of the edgesession checkout.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run loadbench from inside the edgesession checkout (go env GOMOD found no go.mod)")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "cmd", "caddy")); err != nil {
		return "", fmt.Errorf("%s has no cmd/caddy: run loadbench from inside the edgesession checkout", root)
	}
	return root, nil
}

var preflightClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(ctx context.Context, sc *scenario) (*http.Response, []byte, error) {
	req, err := sc.newRequest(ctx, sc.cookie)
	if err != nil {
		return nil, nil, err
	}
	resp, err := preflightClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// login logs in as the bench user and returns the session cookie.
func login(ctx context.Context, port int, body []byte) (string, error) {
	resp, b, err := do(ctx, &scenario{port: port, method: "POST", path: "/.session/login", body: body})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("POST /.session/login: %d %s", resp.StatusCode, b)
	}
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("POST /.session/login: 200 but no %s cookie", cookieName)
}

// checkUpstream checks that sc's request reaches the upstream, which saw
// the given X-Session-User.
func checkUpstream(ctx context.Context, sc *scenario, user string) error {
	resp, body, err := do(ctx, sc)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != string(upstreamBody) {
		return fmt.Errorf("GET %s: want 200 and the upstream's body, got %d %q", sc.url(), resp.StatusCode, body)
	}
	if got := resp.Header.Get(seenUserHeader); got != user {
		return fmt.Errorf("GET %s: the upstream saw X-Session-User %q, want %q", sc.url(), got, user)
	}
	return nil
}

// checkNoCookie checks that a request without a cookie gets the 401 JSON.
func checkNoCookie(ctx context.Context, sc *scenario) error {
	resp, body, err := do(ctx, sc)
	if err != nil {
		return err
	}
	if resp.StatusCode != 401 || !strings.Contains(string(body), "login required") {
		return fmt.Errorf("GET %s without a cookie: want 401 login required, got %d %q", sc.url(), resp.StatusCode, body)
	}
	if resp.Header.Get(seenUserHeader) != "" {
		return errors.New("a request without a cookie reached the upstream")
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func pct(part, whole time.Duration) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
