package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// buildReport renders the markdown report.
func buildReport(cfg *config, root, bin string, scenarios []*scenario, results map[string][]slot) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("## edgesession load comparison\n\n")
	p("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 MST"))
	p("- command: `%s`\n", cfg.commandLine)
	p("- machine: %d CPUs (nproc)%s; %s\n", runtime.NumCPU(), cpuModel(), firstLine(output(root, "go", "version")))
	p("- checkout: %s; caddy %s\n", gitDescribe(root), firstLine(output(root, bin, "version")))
	p("- load: closed loop over %d keep-alive connections (login: %d), %d round(s) × %v per scenario after a %v warm-up, order rotated each round; loadbench, Caddy and the upstream share this machine, all on 127.0.0.1\n\n",
		cfg.conns, cfg.loginConns, cfg.rounds, cfg.duration, cfg.warmup)

	base := results["baseline"]
	baseCPU := cpuPerReq(base)
	p("| scenario | req/s | ratio to baseline | p50 | p99 | Caddy CPU µs/req | added µs/req vs baseline | errors |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range scenarios {
		slots := results[sc.name]
		var rps, ratios []float64
		var lat []time.Duration
		errs := 0
		for i, s := range slots {
			rps = append(rps, s.rps())
			if i < len(base) && base[i].rps() > 0 {
				ratios = append(ratios, s.rps()/base[i].rps())
			}
			lat = append(lat, s.lat...)
			errs += s.errs
		}
		slices.Sort(lat)
		cpu := cpuPerReq(slots)
		added := "—"
		if sc.name != "baseline" {
			added = fmt.Sprintf("%+.1f", cpu-baseCPU)
		}
		p("| %s | %s | %s | %s | %s | %.1f | %s | %d |\n",
			sc.name, fmtRPS(rps), fmtRatio(median(ratios)), fmtLat(percentile(lat, 50)), fmtLat(percentile(lat, 99)), cpu, added, errs)
	}
	p("\n")
	p("req/s: median over rounds (min–max). Ratio: each round's req/s over the baseline's in the same round, median over rounds. ")
	p("p50, p99: over every request of every round, as seen by the client. ")
	p("Caddy CPU: utime+stime of the Caddy process over all rounds (/proc/<pid>/stat, %d ticks/s) divided by the requests answered; ", clockTicks())
	p("added: that minus the baseline's (the Redis server's own CPU is not counted). Errors: unexpected statuses and transport errors, not counted in req/s.\n\n")

	p("CPU use while measuring, in cores (%d available):\n\n", runtime.NumCPU())
	p("| scenario | Caddy | upstream | loadbench |\n|---|---:|---:|---:|\n")
	for _, sc := range scenarios {
		var c, u, l, e time.Duration
		for _, s := range results[sc.name] {
			c, u, l, e = c+s.caddyCPU, u+s.upCPU, l+s.selfCPU, e+s.elapsed
		}
		p("| %s | %.2f | %.2f | %.2f |\n", sc.name, pct(c, e)/100, pct(u, e)/100, pct(l, e)/100)
	}
	var notes []string
	for _, sc := range scenarios {
		n, total := 0, 0
		for _, s := range results[sc.name] {
			n, total = n+s.setCookie, total+s.ok
		}
		if sc.name != "login (bcrypt)" && n > 0 {
			notes = append(notes, fmt.Sprintf("- %s: %d of %d responses carried a Set-Cookie", sc.name, n, total))
		}
		for _, s := range results[sc.name] {
			if s.errs > 0 {
				notes = append(notes, fmt.Sprintf("- %s: %d unexpected answers in a round, e.g. %s", sc.name, s.errs, s.firstErr))
				break
			}
		}
	}
	if len(notes) > 0 {
		p("\nNotes:\n\n%s\n", strings.Join(notes, "\n"))
	}
	p("\n")
	return b.String()
}

// cpuPerReq is Caddy's CPU µs per answered request, pooled over slots.
func cpuPerReq(slots []slot) float64 {
	var cpu time.Duration
	n := 0
	for _, s := range slots {
		cpu += s.caddyCPU
		n += s.ok
	}
	if n == 0 {
		return 0
	}
	return us(cpu) / float64(n)
}

func fmtRPS(rps []float64) string {
	if len(rps) == 0 {
		return "—"
	}
	m := median(rps)
	if len(rps) == 1 {
		return fmtNum(m)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(m), fmtNum(slices.Min(rps)), fmtNum(slices.Max(rps)))
}

func fmtRatio(x float64) string {
	if x != 0 && x < 0.1 {
		return fmt.Sprintf("%.2g", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func fmtNum(x float64) string {
	if x < 100 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

func fmtLat(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", us(d))
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", us(d)/1000)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "(" + name + ": " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return " " + strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

func gitDescribe(root string) string {
	rev := output(root, "git", "rev-parse", "--short", "HEAD")
	if strings.HasPrefix(rev, "(") {
		return "unknown commit"
	}
	if status := output(root, "git", "status", "--porcelain", "--untracked-files=no"); status != "" && !strings.HasPrefix(status, "(") {
		return rev + " with uncommitted changes"
	}
	return rev
}
