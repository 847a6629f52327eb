package caddymodule

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/sessionstore"
)

// Hostile review of the request readings (package authz): what one request
// can make the handler do. An anonymous visitor reaches authz.Readings.Read
// whenever `public` is configured, so the work of reading a path must stay
// linear in its length: the server's header limit (1 MB by default) is
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

func attackHandler(t testing.TB) *Handler {
	h := newTestHandler(t, sessionstore.NewMemory(0))
	h.rules = testRules(t)
	h.public = caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/public/*", "*.css"}}}
	h.readings.Split = authz.DefaultSplitPath
	return h
}

// allocatedBy is the bytes the handler allocates to answer one request
// for path, with cookie (may be empty) and extra headers.
func allocatedBy(h *Handler, cookie, method, path string, header map[string][]string) uint64 {
	next := benchRequests(cookie)
	r := next()
	r.URL.Path, r.URL.RawPath, r.RequestURI = path, "", path
	r.Method = method
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_ = h.ServeHTTP(w, r, okHandler)
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
		t.Errorf("%s: a path 4 times as long (%d bytes) made the handler allocate %.1f times as much (%d bytes, %d per byte of path): the cost grows faster than the path", name, l4, float64(b4)/float64(b1), b4, b4/uint64(l4))
	}
}

// TestAttackReadingsCostIsLinear: the bytes an anonymous request makes
// the handler allocate grow linearly with its path. The readings are at
// most 64 paths of at most the path's length each, so a linear reading
// is possible; one that builds a fresh PATH_INFO for every place a
// marker occurs is quadratic. (The CPU time of "many non-ASCII .php" is
// quadratic too, without allocating: see BenchmarkAttackReadings.)
func TestAttackReadingsCostIsLinear(t *testing.T) {
	h := attackHandler(t)
	for name := range hostilePaths(1) {
		linearGrowth(t, name, func(n int) (int, uint64) {
			p := hostilePaths(n)[name]
			return len(p), allocatedBy(h, "", "GET", p, nil)
		}, 2000)
	}
}

// TestAttackReadingsJudgedCostIsLinear: a logged-in user whom a rule
// denies somewhere makes every rule judge every reading with every
// method. A path with many readings (upper case, non-ASCII, ';', a split
// marker) and several method readings must still cost linearly.
func TestAttackReadingsJudgedCostIsLinear(t *testing.T) {
	h := attackHandler(t)
	cookie := loggedIn(t, h, "alice")
	seg := "/Ab\u0130\u00df\ufb01;x"
	linearGrowth(t, "judged by the rules", func(n int) (int, uint64) {
		p := "/x.php" + strings.Repeat(seg, n)
		return len(p), allocatedBy(h, cookie, "post", p, map[string][]string{"X-Http-Method-Override": {"put, delete, patch, head"}})
	}, 1000)
}

// BenchmarkAttackReadings is the cost of one anonymous request with a
// hostile path, by path length: compare ns/op and B/op across lengths
// (linear: 4x the length, 4x the cost). 2300 segments is about 16 KB,
// Caddy's default max_header_size.
func BenchmarkAttackReadings(b *testing.B) {
	for _, n := range []int{100, 400, 1600, 2300} {
		for name, p := range hostilePaths(n) {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				h := attackHandler(b)
				next := benchRequests("theme=dark")
				w := httptest.NewRecorder()
				b.ReportAllocs()
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					r := next()
					r.URL.Path, r.URL.RawPath, r.RequestURI = p, "", p
					_ = h.ServeHTTP(w, r, okHandler)
				}
			})
		}
	}
}
