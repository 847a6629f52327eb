package authz

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Config is what the readings depend on besides the request.
type Config struct {
	// Split are the script split markers, in lower case (".php"):
	// split_path as the handler was configured, or DefaultSplitPath.
	Split []string
}

// DefaultSplitPath is the script split marker of PHP front controllers,
// as php_fastcgi's split_path has it.
var DefaultSplitPath = []string{".php"}

// ValidSplitMarker accepts a split marker such as ".php": printable
// ASCII, no '/', not empty.
func ValidSplitMarker(m string) error {
	if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' }) {
		return fmt.Errorf("split_path %q: want a file name ending such as .php: printable ASCII, no space or '/'", m)
	}
	return nil
}

const (
	maxPathReadings   = 64
	maxMethodReadings = 8
	// maxReadPath is the longest path whose readings are worked out
	// beyond its own: a longer path that is not simplePath is refused.
	// Browsers and CDNs keep URLs to a few KB; this keeps one request's
	// readings to maxPathReadings strings of at most this length, however
	// large the server's header limit.
	maxReadPath = 4096
)

// Readings are the ways upstreams may read one request: the first path
// and the first method are the request's own. The zero value is unread;
// Read reads it. It holds the first few paths in an array, not a slice
// of itself, so that it can live on the caller's stack (declare one per
// request, as a variable, and pass its address); more go to the heap.
type Readings struct {
	read     bool
	refused  string // why the readings cannot be enumerated; "" if they can
	routes   int    // paths()[:routes] are the route readings, the rest variants
	variants bool   // the spelling variants are in the paths
	noRoute  bool   // a reading of the path routes nowhere (leavesNoRoute)
	path     [8]string
	np       int
	more     []string // all the paths, once there are more than len(path)
	method   [maxMethodReadings]string
	nm       int
}

// paths are the route readings and, once withVariants ran, the spelling
// variants.
func (rd *Readings) paths() []string {
	if rd.more != nil {
		return rd.more
	}
	return rd.path[:rd.np]
}

// methods are the method readings.
func (rd *Readings) methods() []string { return rd.method[:rd.nm] }

// Refused says why the readings cannot be enumerated, for a log line;
// "" if they can (or are not read yet). A refused request is never
// public, and where rules apply it is refused unless every rule lets
// the user in (see Rules.Judge).
func (rd *Readings) Refused() string { return rd.refused }

// Read works out r's readings, once: a second call does nothing, so
// that public and the rules may each ask for them.
func (rd *Readings) Read(r *http.Request, cfg *Config) {
	if rd.read {
		return
	}
	rd.read = true
	if !PlainPath(r.URL) {
		rd.refused = "path with dot segments, encoded slashes, backslashes or double encoding"
		return
	}
	if rd.readPath(r.URL.Path, cfg) && r.URL.RawQuery != "" {
		rd.readQueryRoute(r.URL.RawQuery, cfg)
	}
	rd.routes = rd.np
	if rd.refused == "" {
		rd.readMethod(r)
	}
}

// readQueryRoute adds the route readings of the path in the query q, as
// CodeIgniter 3 routes "/index.php?/admin/keys", "/?/admin/keys" and
// "/index.php/?/admin/keys": when the path leaves no route of its own (a
// reading is all '/', or ends in a split marker: an empty PATH_INFO) and
// the raw query starts with '/' (or "%2F"), the query up to the next '?'
// (as CodeIgniter cuts it) and up to the next '&' (as a query parameter
// would end), decoded like a path, are route readings too. Routers that
// take the route from a named parameter ("?r=", "?q=") are not read: a
// rule names them with a query matcher (docs/rules.md).
func (rd *Readings) readQueryRoute(q string, cfg *Config) {
	if q[0] != '/' && !(len(q) >= 3 && equalASCIIFold(q[:3], "%2f")) {
		return
	}
	// Any reading all '/': the PATH_INFO "/" of "/index.php/" too.
	if !rd.noRoute && !slices.ContainsFunc(rd.paths(), func(p string) bool { return strings.Trim(p, "/") == "" }) {
		return
	}
	cuts := [2]string{q, q}
	cuts[0], _, _ = strings.Cut(q, "?")
	cuts[1], _, _ = strings.Cut(cuts[0], "&")
	for _, raw := range cuts {
		p, err := url.PathUnescape(raw)
		// An encoded '/' is read as '/': the router that decodes the query
		// sees it so, and one that does not has no route by that name.
		if err != nil || !plainString(p) {
			rd.refused = "query that routes as a path (CodeIgniter's \"?/...\") with dot segments, backslashes or bad encoding"
			return
		}
		if p == "" || p[0] != '/' {
			p = "/" + p
		}
		if !rd.readPath(p, cfg) {
			return
		}
	}
}

// leavesNoRoute reports whether the path reading p routes nowhere in a
// front controller: it is all '/' (or empty), or the script (ending in a
// split marker) with no PATH_INFO.
func leavesNoRoute(p string, split []string) bool {
	if strings.Trim(p, "/") == "" {
		return true
	}
	for _, m := range split {
		if len(p) >= len(m) && equalASCIIFold(p[len(p)-len(m):], m) {
			return true
		}
	}
	return false
}

// readPath adds the route readings of the plain path p. It reports
// whether the readings can still be enumerated: it stops as soon as they
// are refused, so that a path with many split markers costs no more than
// the readings it may have.
func (rd *Readings) readPath(p string, cfg *Config) bool {
	start := rd.np
	if !rd.addPath(p) {
		return false
	}
	if simplePath(p, cfg.Split) {
		rd.noRoute = rd.noRoute || p == "/"
		return true
	}
	if len(p) > maxReadPath {
		rd.refused = "path too long for its readings (see maxReadPath)"
		return false
	}
	if !rd.addPath(resourcePath(p)) {
		return false
	}
	if !isASCII(p) {
		if !utf8.ValidString(p) {
			rd.refused = "path that is not UTF-8"
			return false
		}
		if !unicodeReadings(resourcePath(p), rd.addPath) {
			return false
		}
		for _, q := range rd.paths()[start:] {
			if !plainString(q) {
				rd.refused = "path with non-ASCII that folds into dot segments, '\\' or percent-encoding"
				return false
			}
		}
	}
	// Before the splits: a split's script has its PATH_INFO to route on.
	rd.noRoute = rd.noRoute || slices.ContainsFunc(rd.paths()[start:], func(q string) bool { return leavesNoRoute(q, cfg.Split) })
	for _, q := range rd.paths()[start:] {
		if !scriptSplits(q, cfg.Split, rd.addPath) {
			return false
		}
	}
	for _, q := range rd.paths()[start:] {
		if !rd.addPath(asciiLower(q)) {
			return false
		}
	}
	return true
}

// addPath adds p unless it is there already; past maxPathReadings, the
// readings are refused. It reports whether they are not refused.
func (rd *Readings) addPath(p string) bool {
	if rd.refused != "" {
		return false
	}
	if slices.Contains(rd.paths(), p) {
		return true
	}
	switch {
	case rd.np < len(rd.path):
		rd.path[rd.np] = p
		rd.np++
	case rd.np == maxPathReadings:
		rd.refused = "path with too many readings"
		return false
	default:
		if rd.more == nil {
			rd.more = append(make([]string, 0, maxPathReadings), rd.path[:]...)
		}
		rd.more = append(rd.more, p)
		rd.np++
	}
	return true
}

// withVariants adds the spelling variants to the paths, once.
func (rd *Readings) withVariants() {
	if rd.variants || rd.refused != "" {
		return
	}
	rd.variants = true
	for _, q := range rd.paths()[:rd.routes] {
		switch {
		case q == "/":
		case q[len(q)-1] == '/':
			rd.addPath(q[:len(q)-1])
		default:
			rd.addPath(q + "/")
		}
	}
}

// each calls visit with r in each reading: the paths path[from:to] with
// each method. r is changed in place while visit runs and restored after;
// the reading of the request's own path and method sees r as it came.
// each stops when visit says stop or fails.
func (rd *Readings) each(r *http.Request, from, to int, visit func(*http.Request) (stop bool, err error)) (bool, error) {
	u := r.URL
	path, raw, method := u.Path, u.RawPath, r.Method
	paths := rd.paths()
	defer func() { u.Path, u.RawPath, r.Method = path, raw, method }()
	for i := from; i < to; i++ {
		u.Path, u.RawPath = paths[i], ""
		if i == 0 {
			u.RawPath = raw
		}
		for _, m := range rd.methods() {
			r.Method = m
			if stop, err := visit(r); stop || err != nil {
				return stop, err
			}
		}
	}
	return false, nil
}

// EveryReadingMatches reports whether sets match r in every route
// reading of rd, which Read has read from r; refused readings match
// nothing. This is how `public` judges a request. r is changed while
// the matchers run and restored before it returns.
func EveryReadingMatches(sets caddyhttp.MatcherSets, r *http.Request, rd *Readings) (bool, error) {
	if rd.refused != "" {
		return false, nil
	}
	missed, err := rd.each(r, 0, rd.routes, func(r *http.Request) (bool, error) {
		ok, err := sets.AnyMatchWithError(r)
		return !ok, err
	})
	return !missed && err == nil, err
}

// simplePath reports whether p, plain, is its only route reading: ASCII
// without upper case, ";", "//" or a split marker.
func simplePath(p string, split []string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' || c == ';' || c == '/' && i+1 < len(p) && p[i+1] == '/' {
			return false
		}
	}
	for _, m := range split {
		if strings.Contains(p, m) {
			return false
		}
	}
	return true
}

// scriptSplits adds, for each place a split marker ends a script in p,
// the script and its PATH_INFO (with a leading '/'). A marker at the end
// of p adds nothing: p is the script, with no PATH_INFO to route on. It
// stops, reporting false, as soon as add refuses.
func scriptSplits(p string, split []string, add func(string) bool) bool {
	for _, m := range split {
		for i := 0; i+len(m) < len(p); i++ {
			if !equalASCIIFold(p[i:i+len(m)], m) {
				continue
			}
			end := i + len(m)
			if !add(p[:end]) {
				return false
			}
			info := p[end:]
			if info[0] != '/' {
				info = "/" + info
			}
			if !add(resourcePath(info)) {
				return false
			}
		}
	}
	return true
}

// plainString is PlainPath for a path already decoded and not escaped:
// a reading of a plain path must be plain itself.
func plainString(p string) bool {
	return PlainPath(&url.URL{Path: p})
}
