package caddymodule

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/sessionstore"
)

// Hostile review of the request readings (readings.go): what one request
// can make the handler do. An anonymous visitor reaches readRequest
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
	h.rules = testRules()
	h.public = caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/public/*", "*.css"}}}
	h.readings.split = DefaultSplitPath
	return h
}

// allocatedBy is the bytes the handler allocates to answer one anonymous
// request for path.
func allocatedBy(h *Handler, path string) uint64 {
	next := benchRequests("theme=dark")
	r := next()
	r.URL.Path, r.URL.RawPath, r.RequestURI = path, "", path
	w := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_ = h.ServeHTTP(w, r, okHandler)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAttackReadingsCostIsLinear: a path of 48 KB (well under the 1 MB
// header limit) costs at most 200 bytes allocated per byte of path. The
// readings are at most 64 paths of at most the path's length each (and a
// dozen Unicode readings), so a linear reading stays far below that; one
// that builds a fresh PATH_INFO for every place a marker occurs is
// quadratic.
func TestAttackReadingsCostIsLinear(t *testing.T) {
	h := attackHandler(t)
	for name, p := range hostilePaths(8000) {
		p = p[:min(len(p), 48<<10)]
		got := allocatedBy(h, p)
		limit := uint64(200*len(p) + 1<<20)
		t.Logf("%-20s %6d bytes of path: %10d bytes allocated (%d per byte)", name, len(p), got, got/uint64(len(p)))
		if got > limit {
			t.Errorf("%s: a %d-byte path made the handler allocate %d bytes (%d per byte of path), more than %d", name, len(p), got, got/uint64(len(p)), limit)
		}
	}
}

// BenchmarkAttackReadings is the cost of one anonymous request with a
// hostile path, by path length: compare ns/op and B/op across lengths
// (linear: 4x the length, 4x the cost).
func BenchmarkAttackReadings(b *testing.B) {
	for _, n := range []int{100, 400, 1600, 6400} {
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
