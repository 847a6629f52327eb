package tests

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The corpus of the differential test: request variants generated from
// each route's canonical request by composable transforms of the method
// and of the path. Nothing in it names a payload; the readers decide
// which variants run what.

// diffVariant is one request to send.
type diffVariant struct {
	route   string   // the route whose canonical request it came from
	method  string   // as sent
	target  string   // the request-target, bytes as sent
	headers []string // extra "Name: value" lines
	body    string   // a form body, or ""
	how     string   // the transforms, for the report
}

// diffCanonical is a route's plain request.
type diffCanonical struct {
	route, method, path string
}

// diffCanonicals are the requests every reader serves; PHP adds its admin.php
// script.
func diffCanonicals(php bool) []diffCanonical {
	cs := []diffCanonical{
		{"admin", "GET", "/admin/keys"},
		{"admin", "POST", "/admin/keys"},
		{"billing", "GET", "/billing/12"},
		{"billing", "POST", "/billing/12"},
		{"billing", "PUT", "/billing/12"},
		{"billing", "DELETE", "/billing/12"},
		{"reports", "GET", "/reports/12"},
		{"read", "GET", "/read/notes"},
		{"public", "GET", "/public/info"},
	}
	if php {
		cs = append(cs, diffCanonical{"admin", "GET", "/admin.php"}, diffCanonical{"admin", "POST", "/admin.php"})
	}
	return cs
}

// diffMethod is a method transform's result: the method sent, and the
// header, form field or query that may name another.
type diffMethod struct {
	name, method string
	headers      []string
	body, query  string
}

// diffOverrideHeaders are the headers that frameworks read a method from.
var diffOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// diffMethods: case (lower, title), HEAD for GET, each override header
// on a POST, GET or "post" naming m (upper or lower case), and a _method
// form field or query parameter.
func diffMethods(m string) []diffMethod {
	lower := strings.ToLower(m)
	out := []diffMethod{
		{name: "method:lower", method: lower},
		{name: "method:title", method: m[:1] + lower[1:]},
	}
	if m == "GET" {
		out = append(out, diffMethod{name: "method:HEAD", method: "HEAD"}, diffMethod{name: "method:head", method: "head"})
	}
	for _, h := range diffOverrideHeaders {
		for _, carrier := range []string{"POST", "GET", "post"} {
			if carrier == m {
				continue
			}
			for _, value := range []string{m, lower} {
				out = append(out, diffMethod{name: "override:" + h + " on " + carrier, method: carrier, headers: []string{h + ": " + value}})
			}
		}
	}
	if m != "POST" {
		for _, carrier := range []string{"POST", "post"} {
			for _, value := range []string{m, lower} {
				out = append(out, diffMethod{name: "override:_method field on " + carrier, method: carrier, body: "_method=" + value})
			}
		}
		out = append(out, diffMethod{name: "override:_method query on POST", method: "POST", query: "_method=" + m})
	}
	return out
}

// diffPath is a path transform's result: the request-target as sent.
type diffPath struct{ name, target string }

// Unicode stand-ins, by the ASCII they may be read as.
var (
	// digitScripts are digit sets (Unicode category Nd, or NFKC-equal to
	// ASCII digits) that some readers take for 0-9.
	digitScripts = []struct {
		name string
		zero rune
	}{
		{"arabic-indic", 0x0660}, {"extended-arabic-indic", 0x06F0}, {"devanagari", 0x0966},
		{"fullwidth", 0xFF10}, {"mathematical-bold", 0x1D7CE},
	}
	superscriptDigits = []rune("⁰¹²³⁴⁵⁶⁷⁸⁹")
	// letterStandIns replace every occurrence of one ASCII letter: the
	// ones case folding or upper-casing turns into it.
	letterStandIns = []struct {
		name     string
		from, to rune
	}{
		{"dotless-i", 'i', 'ı'}, {"dotted-capital-I", 'i', 'İ'}, {"long-s", 's', 'ſ'}, {"kelvin", 'k', 'K'},
	}
)

// diffPaths transforms the path p: case, ;params on each segment,
// doubled slashes, a trailing slash, percent-encoding of chosen bytes,
// dot segments, asset suffixes, Unicode stand-ins (percent-encoded as a
// browser sends them, some also as raw UTF-8), and with php the script
// prefixes of PHP front controllers.
func diffPaths(p string, php bool) []diffPath {
	segs := strings.Split(p[1:], "/")
	join := func(s []string) string { return "/" + strings.Join(s, "/") }
	with := func(i int, seg string) string {
		s := append([]string(nil), segs...)
		s[i] = seg
		return join(s)
	}
	var out []diffPath
	add := func(name, target string) { out = append(out, diffPath{name, target}) }

	add("case:upper", strings.ToUpper(p))
	add("case:title", "/"+strings.ToUpper(p[1:2])+p[2:])
	for i, seg := range segs {
		add(fmt.Sprintf("params:;x on segment %d", i+1), with(i, seg+";x"))
		add(fmt.Sprintf("encode:first byte of segment %d", i+1), with(i, fmt.Sprintf("%%%02X", seg[0])+seg[1:]))
		add(fmt.Sprintf("slash:doubled before segment %d", i+1), join(segs[:i])+strings.Repeat("/", min(i, 1))+"/"+strings.Join(segs[i:], "/"))
	}
	add("params:; at the end", p+";")
	add("params:;jsessionid at the end", p+";jsessionid=1")
	add("slash:trailing", p+"/")
	if len(segs) > 1 {
		add("encode:slash", "/"+segs[0]+"%2F"+strings.Join(segs[1:], "/"))
	}
	add("dot-segment:/public/..", "/public/.."+p)
	add("dot-segment:/public/..;", "/public/..;"+p)
	for _, suffix := range []string{".css", ".js", ";.css", "/x.css", "%3B.css", "/.css"} {
		add("asset:"+suffix, p+suffix)
	}

	// Unicode.
	mapRunes := func(f func(rune) rune) string { return strings.Map(f, p) }
	unicodeVariant := func(name, s string, raw bool) {
		if s == p {
			return
		}
		add("unicode:"+name, percentEncodeNonASCII(s))
		if raw {
			add("unicode:"+name+" (raw UTF-8)", s)
		}
	}
	for i, ds := range digitScripts {
		unicodeVariant(ds.name+" digits", mapRunes(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return ds.zero + (r - '0')
			}
			return r
		}), i == 0)
	}
	unicodeVariant("superscript digits", mapRunes(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return superscriptDigits[r-'0']
		}
		return r
	}), false)
	for _, l := range letterStandIns {
		unicodeVariant(l.name, mapRunes(func(r rune) rune {
			if r == l.from {
				return l.to
			}
			return r
		}), l.name == "long-s")
	}
	// Fullwidth and mathematical bold letters, in the first segment (the
	// one rules name) and in the first letter alone.
	first := len(segs[0]) + 1
	for _, s := range []struct {
		name string
		a    rune
	}{{"fullwidth", 'ａ'}, {"mathematical-bold", '𝐚'}} {
		letters := func(limit int) string {
			var b strings.Builder
			for i, r := range p {
				if i < limit && 'a' <= r && r <= 'z' {
					r = s.a + (r - 'a')
				}
				b.WriteRune(r)
			}
			return b.String()
		}
		unicodeVariant(s.name+" letters in segment 1", letters(first), false)
		unicodeVariant(s.name+" first letter", letters(2), false)
	}

	if php {
		// The script prefixes, alone and in front of the paired transforms.
		for _, pv := range out {
			if pairedPaths[pv.name] {
				add("php:/index.php prefix + "+pv.name, "/index.php"+pv.target)
			}
		}
		add("php:/index.php prefix", "/index.php"+p)
		add("php:/index.php/ prefix", "/index.php/"+p)
		add("php:/x.php prefix", "/x.php"+p)
		add("php:/INDEX.PHP prefix", "/INDEX.PHP"+p)
	}
	return out
}

// percentEncodeNonASCII percent-encodes the bytes of s outside ASCII, as a
// browser does with a path it is given.
func percentEncodeNonASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// pairedMethods and pairedPaths are the transforms also tried together.
var (
	pairedMethods = map[string]bool{"method:lower": true, "method:HEAD": true, "override:X-HTTP-Method-Override on POST": true}
	pairedPaths   = map[string]bool{
		"case:upper": true, "params:;x on segment 1": true, "slash:trailing": true, "slash:doubled before segment 1": true,
		"unicode:arabic-indic digits": true, "unicode:long-s": true, "asset:.css": true, "asset:;.css": true,
		"php:/index.php prefix": true,
	}
)

// diffCorpus is every variant of every canonical request: each method
// transform alone, each path transform alone, and the paired ones
// together; duplicates once.
func diffCorpus(php bool) []diffVariant {
	var out []diffVariant
	seen := map[string]bool{}
	add := func(c diffCanonical, mv diffMethod, pv diffPath) {
		target := pv.target
		if mv.query != "" {
			target += "?" + mv.query
		}
		v := diffVariant{route: c.route, method: mv.method, target: target, headers: mv.headers, body: mv.body}
		v.how = strings.Trim(mv.name+" + "+pv.name, " +")
		key := fmt.Sprintf("%s %s %q %q", v.method, v.target, v.headers, v.body)
		if !seen[key] {
			seen[key] = true
			out = append(out, v)
		}
	}
	for _, c := range diffCanonicals(php) {
		plainMethod := diffMethod{method: c.method}
		plainPath := diffPath{target: c.path}
		add(c, plainMethod, plainPath)
		mvs, pvs := diffMethods(c.method), diffPaths(c.path, php)
		for _, mv := range mvs {
			add(c, mv, plainPath)
		}
		for _, pv := range pvs {
			add(c, plainMethod, pv)
		}
		for _, mv := range mvs {
			for _, pv := range pvs {
				if pairedMethods[mv.name] && pairedPaths[pv.name] {
					add(c, mv, pv)
				}
			}
		}
	}
	return out
}
