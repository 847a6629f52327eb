package upstream

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/edgesession/edgesession/sessionstore"
)

// View is what the upstream is told of a session: its user ("" for
// none), where the name comes from, the user's groups as one header value
// ("" for none) and the session's data.
type View struct {
	User   string
	Source string
	Groups string
	// Amr is how the user proved who they are (RFC 8176 values, space
	// separated: "pwd otp mfa"); "" sends no header.
	Amr  string
	Data map[string]string
}

// Forwarder puts a View into a request for the upstream as trusted
// headers. Its canonical names are worked out once (NewForwarder).
type Forwarder struct {
	user       []string       // <prefix>User, the user headers, the headers mapped to the user
	data       []mappedHeader // the headers mapped to a data key
	dataPrefix string         // <prefix>Data-
	groups     string         // <prefix>Groups
	source     string         // <prefix>Source
	amr        string         // <prefix>Amr
	dataNames  *dataNames     // <prefix>Data-<Key> of the keys seen so far
}

// NewForwarder works out the canonical names Forward writes: the user
// under <prefix>User, the user headers and the headers mapped to the
// user; each data key under <prefix>Data-<Key> and the headers mapped to
// it. Sources were checked by CheckNames; a bad one is left out.
func NewForwarder(prefix string, userHeaders []string, mapped map[string]string) Forwarder {
	f := Forwarder{user: []string{http.CanonicalHeaderKey(prefix + "User")}, dataPrefix: http.CanonicalHeaderKey(prefix + "Data-"), dataNames: new(dataNames)}
	for _, name := range userHeaders {
		f.user = append(f.user, http.CanonicalHeaderKey(name))
	}
	for _, name := range slices.Sorted(maps.Keys(mapped)) {
		key, err := parseHeaderSource(mapped[name])
		switch {
		case err != nil:
			continue
		case key == "":
			f.user = append(f.user, http.CanonicalHeaderKey(name))
		default:
			f.data = append(f.data, mappedHeader{name: http.CanonicalHeaderKey(name), key: key})
		}
	}
	f.groups = http.CanonicalHeaderKey(prefix + "Groups")
	f.source = http.CanonicalHeaderKey(prefix + "Source")
	f.amr = http.CanonicalHeaderKey(prefix + "Amr")
	return f
}

// Forward writes v into hdr, a request's header already stripped of
// trusted names (Trusted.StripRequest).
func (f *Forwarder) Forward(hdr http.Header, v View) {
	// One allocation for the values of all the headers, but no two headers
	// share a slice: its capacity is never exceeded.
	var values []string
	if n := len(f.user) + 3 + len(f.data) + len(v.Data); v.User != "" || len(v.Data) > 0 {
		values = make([]string, 0, n)
	}
	slot := func(s string) []string {
		values = append(values, s)
		return values[len(values)-1 : len(values) : len(values)]
	}
	if v.User != "" {
		for _, name := range f.user {
			hdr[name] = slot(v.User)
		}
		if v.Groups != "" {
			hdr[f.groups] = slot(v.Groups)
		}
		// Where the name comes from (SPEC §9): password, upstream or
		// oidc:<provider>.
		if v.Source != "" {
			hdr[f.source] = slot(v.Source)
		}
		// How (SPEC §13): "pwd", "pwd otp mfa", a provider's amr.
		if v.Amr != "" {
			hdr[f.amr] = slot(v.Amr)
		}
	}
	for k, val := range v.Data {
		// Keys and values were validated when they were written (see
		// ParseControl); check again, since a store is not a client but
		// should not be able to inject headers either.
		if !sessionstore.ValidDataKey(k) || !sessionstore.ValidDataValue(val) {
			continue
		}
		hdr[f.dataNames.name(f.dataPrefix, k)] = slot(val)
	}
	for _, m := range f.data {
		if val, ok := v.Data[m.key]; ok && sessionstore.ValidDataValue(val) {
			hdr[m.name] = slot(val)
		}
	}
}

// dataNames remembers the header name of each data key forwarded, so that
// a request does not build it again: a map read without a lock, replaced
// by a copy with one more name when a key is new, up to maxDataNames
// (keys are set by upstreams, not clients, but need not be few).
type dataNames struct {
	names atomic.Pointer[map[string]string]
	mu    sync.Mutex // serializes adding
}

const maxDataNames = 256

// name returns prefix + the canonical form of data key k.
func (d *dataNames) name(prefix, k string) string {
	if m := d.names.Load(); m != nil {
		if name, ok := (*m)[k]; ok {
			return name
		}
	}
	name := prefix + canonicalKeyTail(k)
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]string{}
	if old := d.names.Load(); old != nil {
		if len(*old) >= maxDataNames {
			return name
		}
		m = maps.Clone(*old)
	}
	m[k] = name
	d.names.Store(&m)
	return name
}

// canonicalKeyTail is http.CanonicalHeaderKey for a valid data key
// ([a-z0-9-]): upper case after each '-' and at the start.
func canonicalKeyTail(k string) string {
	b := []byte(k)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
}
