package authz

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Hostile review of the request readings (readings.go): what one request
// can make the handler do. An anonymous visitor reaches Read and
// EveryReadingMatches whenever `public` is configured, so the work of
// reading a path must stay linear in its length: the server's header limit (1 MB by default) is
// then the bound on what one request costs.

// hostilePaths are paths crafted to make the readings explode: many split
// markers (followed by '/', by another letter, with ';' params that make
// every PATH_INFO a fresh string), upper case (every reading lower-cased
// again), non-ASCII (every Unicode reading of it).
func hostilePaths(n int) map[string]string {
	return map[string]string{
		"many /x.php":         strings.Repeat("/x.php", n),
		"many .php no slash":  "/" + strings.Repeat("x.php", n),
		"many /x.php;":        strings.Repeat("/x.php;", n),
		"many /X.PHP;":        strings.Repeat("/X.PHP;", n),
		"many ;":              "/a" + strings.Repeat(";", n),
		"many non-ASCII .php": strings.Repeat("/\u0130.php", n),
		"many non-ASCII":      "/" + strings.Repeat("\u0130\u00df\ufb01", n),
	}
}

// attackPublic is `public { path /public/* *.css }`, attackRules those
// of testRules.
var (
	attackPublic = caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/public/*", "*.css"}}}
	attackRules  = testRules()
)

// judgeAsHandler does what the handler does with a request for `public`
// (user "") or, for a logged-in user, for the rules of testRules: it
// reads r and judges every reading.
func judgeAsHandler(r *http.Request, user string) {
	var rd Readings
	rd.Read(r, &defaultReadings)
	if user == "" {
		_, _ = EveryReadingMatches(attackPublic, r, &rd)
		return
	}
	_, _, _ = attackRules.Judge(r, &rd, user, nil)
}

// allocatedBy is the bytes reading and judging one request for path
// allocates, as user ("" for anonymous), with extra headers.
func allocatedBy(user, method, path string, header map[string][]string) uint64 {
	r := ruleRequest("/")
	r.URL.Path, r.URL.RawPath, r.RequestURI = path, "", path
	r.Method = method
	for k, v := range header {
		r.Header[k] = v
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	judgeAsHandler(r, user)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// linearGrowth checks that a path 4 times as long costs at most 6 times
// the bytes allocated (linear work gives 4; quadratic, 16).
func linearGrowth(t *testing.T, name string, cost func(n int) (pathLen int, bytes uint64), n int) {
	t.Helper()
	l1, b1 := cost(n)
	l4, b4 := cost(4 * n)
	t.Logf("%-22s %7d bytes of path: %11d allocated (%4d per byte); %7d bytes: %11d (%5d per byte)", name, l1, b1, b1/uint64(l1), l4, b4, b4/uint64(l4))
	if b4 > 6*b1 {
		t.Errorf("%s: a path 4 times as long (%d bytes) made reading and judging it allocate %.1f times as much (%d bytes, %d per byte of path): the cost grows faster than the path", name, l4, float64(b4)/float64(b1), b4, b4/uint64(l4))
	}
}

// TestAttackReadingsCostIsLinear: the bytes an anonymous request makes
// the readings and `public` allocate grow linearly with its path. The readings are at
// most 64 paths of at most the path's length each, so a linear reading
// is possible; one that builds a fresh PATH_INFO for every place a
// marker occurs is quadratic. (The CPU time of "many non-ASCII .php" is
// quadratic too, without allocating: see BenchmarkAttackReadings.)
func TestAttackReadingsCostIsLinear(t *testing.T) {
	for name := range hostilePaths(1) {
		linearGrowth(t, name, func(n int) (int, uint64) {
			p := hostilePaths(n)[name]
			return len(p), allocatedBy("", "GET", p, nil)
		}, 2000)
	}
}

// TestAttackReadingsJudgedCostIsLinear: a logged-in user whom a rule
// denies somewhere makes every rule judge every reading with every
// method. A path with many readings (upper case, non-ASCII, ';', a split
// marker) and several method readings must still cost linearly.
func TestAttackReadingsJudgedCostIsLinear(t *testing.T) {
	seg := "/Ab\u0130\u00df\ufb01;x"
	linearGrowth(t, "judged by the rules", func(n int) (int, uint64) {
		p := "/x.php" + strings.Repeat(seg, n)
		return len(p), allocatedBy("alice", "post", p, map[string][]string{"X-Http-Method-Override": {"put, delete, patch, head"}})
	}, 1000)
}

// BenchmarkAttackReadings is the cost of reading and judging one
// anonymous request with a hostile path, by path length: compare ns/op and B/op across lengths
// (linear: 4x the length, 4x the cost). 2300 segments is about 16 KB,
// Caddy's default max_header_size.
func BenchmarkAttackReadings(b *testing.B) {
	for _, n := range []int{100, 400, 1600, 2300} {
		for name, p := range hostilePaths(n) {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				r := ruleRequest("/")
				r.URL.Path, r.URL.RawPath, r.RequestURI = p, "", p
				b.ReportAllocs()
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					judgeAsHandler(r, "")
				}
			})
		}
	}
}
