package edgesession_test

// The documentation's own tests: every fenced block of README.md and
// docs/*.md is closed, every Caddyfile example adapts, the configuration
// reference names every subdirective the parser accepts (and no other),
// and xcaddy.md lists the modules this module registers.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/spf13/cobra"

	_ "github.com/edgesession/edgesession/caddymodule"
)

// docFiles are the Markdown files the tests read.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md", "xcaddy.md", "CHANGELOG.md"}, files...)
	if len(files) < 8 {
		t.Fatalf("found only %v: run the test from the repository's root", files)
	}
	return files
}

// fence is one fenced code block.
type fence struct {
	file       string
	line       int      // of the opening fence, 1-based
	info       []string // the info string's words: language, then attributes
	body       string
	section    string // the nearest heading above it, without #'s and backticks
	sectionIdx int    // index of that heading in the file
}

// parseFences returns the fenced blocks of a Markdown text, and an error
// for a block that is never closed. A fence opens with three or more ` or
// ~ (indented by any amount, as inside list items) and closes with a line
// of only the same character, at least as many. An opening fence with an
// info string inside an open block is reported too: CommonMark reads it as
// code, but in these docs it always means the block above was not closed
// (the README once rendered a whole section as code that way).
func parseFences(file, text string) (fences []fence, headings []string, err error) {
	lines := strings.Split(text, "\n")
	var open *fence
	var marker string
	var body []string
	section := ""
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if open == nil {
			if strings.HasPrefix(line, "#") && !strings.HasPrefix(strings.TrimLeft(line, "#"), "#") {
				section = strings.TrimSpace(strings.NewReplacer("`", "").Replace(strings.TrimLeft(line, "#")))
				headings = append(headings, section)
				continue
			}
			m := fenceRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if strings.HasPrefix(m[1], "`") && strings.Contains(m[2], "`") {
				continue // inline code that starts a line, not a fence
			}
			open = &fence{file: file, line: i + 1, info: strings.Fields(m[2]), section: section, sectionIdx: len(headings) - 1}
			marker, body = m[1], nil
			continue
		}
		if strings.Trim(line, marker[:1]) == "" && len(line) >= len(marker) {
			open.body = strings.Join(body, "\n")
			fences = append(fences, *open)
			open = nil
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil && m[1][0] == marker[0] && strings.TrimSpace(m[2]) != "" {
			return fences, headings, fmt.Errorf("%s:%d: a fence with an info string (%q) inside the block opened at line %d: that block is not closed", file, i+1, line, open.line)
		}
		body = append(body, strings.TrimPrefix(raw, indentOf(lines[open.line-1])))
	}
	if open != nil {
		return fences, headings, fmt.Errorf("%s:%d: fenced block never closed", file, open.line)
	}
	return fences, headings, nil
}

var fenceRE = regexp.MustCompile("^(`{3,}|~{3,})(.*)$")

func indentOf(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

func TestParseFencesFindsUnclosedBlocks(t *testing.T) {
	for _, bad := range []string{
		"text\n```caddyfile\nsession\n",
		// The README's old PHP example: a block left open before the next section.
		"```caddyfile site\nsession {\n}\n\n## Who may reach what\n\nRules:\n\n```caddyfile session\nallow group admin\n```\n",
		"~~~\ncode\n```\n",
		"````\ncode\n```\n",
	} {
		if _, _, err := parseFences("bad.md", bad); err == nil {
			t.Errorf("no error for an unclosed block in\n%s", bad)
		}
	}
	good := "# A\n```caddyfile\nx\n```\n\n1. step\n\n   ```text\n   y\n   ```\n~~~\n```go\n~~~\n"
	fences, headings, err := parseFences("good.md", good)
	if err != nil || len(fences) != 3 || fences[1].body != "y" || headings[0] != "A" {
		t.Errorf("good text: %v, %+v, %v", err, fences, headings)
	}
}

func TestDocsFencesClosed(t *testing.T) {
	for _, f := range docFiles(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := parseFences(f, string(text)); err != nil {
			t.Error(err)
		}
	}
}

// docPaths are files the examples name, which the parser reads: the test
// writes a valid one and puts its path in their place.
var docPaths = map[string]string{
	"/etc/caddy/users":      "alice:$argon2id$v=19$m=47104,t=1,p=1$A/zo8ePO4g0TOFfdJvP1LQ$C41tsR4THwbIdNu/ReWnlVbqXJ+4XGTyi87AfaSGbCg:admin,staff\n",
	"/etc/caddy/login.html": "<!DOCTYPE html><html><head>{{template \"head\" .}}</head><body><form method=post action=\"{{.Action}}\"><input name=username><input name=password type=password><button>Sign in</button></form></body></html>\n",
}

var envRE = regexp.MustCompile(`\{env\.([A-Za-z0-9_]+)\}`)

// adapt runs Caddy's Caddyfile adapter on body, as `caddy adapt` does.
// Every {env.X} it names is set to a 44-byte value first: `caddy adapt`
// still resolves the secret's variable today (issue 18; the firsthour
// branch makes it check only the placeholder's form), and the docs'
// examples name the variable, never a value.
func adapt(t *testing.T, body string) error {
	t.Helper()
	_, err := adaptJSON(t, body)
	return err
}

// adaptJSON is adapt, returning the JSON config.
func adaptJSON(t *testing.T, body string) ([]byte, error) {
	t.Helper()
	for _, m := range envRE.FindAllStringSubmatch(body, -1) {
		t.Setenv(m[1], "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	}
	dir := t.TempDir()
	for path, content := range docPaths {
		if !strings.Contains(body, path) {
			continue
		}
		local := filepath.Join(dir, filepath.Base(path))
		if err := os.WriteFile(local, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		body = strings.ReplaceAll(body, path, local)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "example"})
	for _, w := range warnings {
		if !strings.Contains(w.Message, "not formatted") {
			t.Logf("warning: %s:%d: %s", w.File, w.Line, w.Message)
		}
	}
	return cfg, err
}

// proxiesToItself reports a reverse_proxy that dials a loopback address
// on a port of the very server it is configured in: following such an
// example makes Caddy proxy to itself (the README's walkthrough once
// proxied to 127.0.0.1:8080 and said to test on localhost:8080).
func proxiesToItself(cfg []byte) error {
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string        `json:"listen"`
					Routes json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return err
	}
	for name, srv := range c.Apps.HTTP.Servers {
		ports := map[string]bool{}
		for _, l := range srv.Listen {
			if i := strings.LastIndexByte(l, ':'); i >= 0 {
				ports[l[i+1:]] = true
			}
		}
		var routes any
		if err := json.Unmarshal(srv.Routes, &routes); err != nil {
			return err
		}
		var bad error
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if v["handler"] == "reverse_proxy" {
					ups, _ := v["upstreams"].([]any)
					for _, u := range ups {
						dial, _ := u.(map[string]any)["dial"].(string)
						host, port, err := net.SplitHostPort(dial)
						if err == nil && ports[port] && (host == "" || host == "localhost" || net.ParseIP(host).IsLoopback()) {
							bad = fmt.Errorf("server %s listens on port %s and proxies to %s: itself", name, port, dial)
						}
					}
				}
				for _, e := range v {
					walk(e)
				}
			case []any:
				for _, e := range v {
					walk(e)
				}
			}
		}
		walk(routes)
		if bad != nil {
			return bad
		}
	}
	return nil
}

func TestProxiesToItself(t *testing.T) {
	trap := "http://localhost:8080 {\nsession\nreverse_proxy 127.0.0.1:8080\n}\n"
	cfg, err := adaptJSON(t, trap)
	if err != nil {
		t.Fatal(err)
	}
	if proxiesToItself(cfg) == nil {
		t.Error("a site on :8080 proxying to 127.0.0.1:8080 is not reported")
	}
	ok := "http://localhost:8080 {\nsession\nreverse_proxy 127.0.0.1:8081\n}\nhttp://:8081 {\nbind 127.0.0.1\nrespond ok\n}\n"
	if cfg, err = adaptJSON(t, ok); err != nil {
		t.Fatal(err)
	}
	if err := proxiesToItself(cfg); err != nil {
		t.Errorf("a site proxying to another server is reported: %v", err)
	}
}

// Caddyfile examples are fenced as ```caddyfile, and say what they are:
//
//	```caddyfile          a whole Caddyfile
//	```caddyfile site     the inside of a site block
//	```caddyfile session  the inside of a session block
//
// A block in another Caddyfile-like language tag (caddy, Caddyfile) is an
// error, so that no example escapes the check; grammar with <...> goes in
// ```text blocks.
func wrapExample(kind, body string) (string, error) {
	switch kind {
	case "":
		return body, nil
	case "site":
		return "http://localhost:8080 {\n" + body + "\n}\n", nil
	case "session":
		return "http://localhost:8080 {\nsession {\n" + body + "\n}\nreverse_proxy 127.0.0.1:8081\n}\n", nil
	}
	return "", fmt.Errorf("unknown kind %q: want nothing, site or session", kind)
}

func TestDocsCaddyfileExamplesAdapt(t *testing.T) {
	n := 0
	for _, f := range docFiles(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fences, _, err := parseFences(f, string(text))
		if err != nil {
			t.Fatal(err)
		}
		for _, fc := range fences {
			if len(fc.info) == 0 {
				continue
			}
			lang := fc.info[0]
			if lang != "caddyfile" {
				if strings.EqualFold(lang, "caddy") || strings.EqualFold(lang, "caddyfile") {
					t.Errorf("%s:%d: fence it as ```caddyfile [site|session] so that it is checked", f, fc.line)
				}
				continue
			}
			kind := ""
			if len(fc.info) > 1 {
				kind = fc.info[1]
			}
			cf, err := wrapExample(kind, fc.body)
			if err != nil {
				t.Errorf("%s:%d: %v", f, fc.line, err)
				continue
			}
			n++
			cfg, err := adaptJSON(t, cf)
			if err != nil {
				t.Errorf("%s:%d: caddy adapt rejects the example: %v\n%s", f, fc.line, err, fc.body)
				continue
			}
			if err := proxiesToItself(cfg); err != nil {
				t.Errorf("%s:%d: %v", f, fc.line, err)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d Caddyfile examples found", n)
	}
}

// parserSections maps each Caddyfile parse function of caddymodule (by
// receiver and name) to the heading of docs/configuration.md whose table
// lists what its switch accepts. A new parse function with a switch fails
// the test until it has a section here and in the reference.
var parserSections = map[string]string{
	"Handler.UnmarshalCaddyfile":      "session",
	"unmarshalStore":                  "store",
	"RedisStore.UnmarshalCaddyfile":   "store redis",
	"unmarshalCookie":                 "cookie",
	"unmarshalLogoutCookies":          "logout_cookies",
	"unmarshalAssertion":              "assertion",
	"unmarshalOIDC":                   "oidc",
	"MatchSession.unmarshalCriterion": "The session matcher",
}

// parserWords reads caddymodule's Go source and returns, for each parse
// function (a method or function whose name starts with unmarshal, any
// case; a method is named receiver.name, a function by its name), the
// string constants of the cases of its switch statements.
func parserWords(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("caddymodule/*.go")
	if err != nil {
		t.Fatal(err)
	}
	words := map[string][]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || !strings.HasPrefix(strings.ToLower(fn.Name.Name), "unmarshal") {
				continue
			}
			name := fn.Name.Name
			if fn.Recv != nil {
				recv := fn.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				id, ok := recv.(*ast.Ident)
				if !ok {
					continue
				}
				name = id.Name + "." + name
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				cc, ok := n.(*ast.CaseClause)
				if !ok {
					return true
				}
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						words[name] = append(words[name], s)
					}
				}
				return true
			})
		}
	}
	return words
}

// referenceRow is one row of a reference table.
type referenceRow struct {
	name, example string
}

// referenceTables reads docs/configuration.md: for each heading, the rows
// of the table below it, each named by the first word of its first cell's
// code, with its third cell (the example).
func referenceTables(t *testing.T) (map[string][]referenceRow, []fence) {
	t.Helper()
	text, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	fences, _, err := parseFences("docs/configuration.md", string(text))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]referenceRow{}
	section, inFence := "", false
	for _, line := range strings.Split(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inFence = !inFence
		}
		if inFence {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			section = strings.TrimSpace(strings.NewReplacer("`", "").Replace(strings.TrimLeft(trimmed, "#")))
			continue
		}
		if !strings.HasPrefix(trimmed, "| `") {
			continue
		}
		cells := splitRow(trimmed)
		code := strings.SplitN(cells[0], "`", 3)
		if len(code) < 3 || len(cells) < 3 {
			t.Errorf("configuration.md, %s: a row that is not `name` | default | example | …: %s", section, trimmed)
			continue
		}
		name := strings.Fields(code[1])[0]
		tables[section] = append(tables[section], referenceRow{name: name, example: cells[2]})
	}
	return tables, fences
}

// splitRow splits a Markdown table row on | outside code spans; \| is a
// | inside a cell.
func splitRow(row string) []string {
	row = strings.Trim(row, "|")
	var cells []string
	var cur strings.Builder
	inCode := false
	for i := 0; i < len(row); i++ {
		c := row[i]
		switch {
		case c == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '`':
			inCode = !inCode
			cur.WriteByte(c)
		case c == '|' && !inCode:
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// exampleWrappers put one line of a section's example column into a
// Caddyfile; %s is the example.
var exampleWrappers = map[string]string{
	"session":             "http://localhost:8080 {\nsession {\n%s\n}\n}\n",
	"store":               "http://localhost:8080 {\nsession {\n%s\n}\n}\n",
	"store redis":         "http://localhost:8080 {\nsession {\nstore redis redis://127.0.0.1:6379/0 {\n%s\n}\n}\n}\n",
	"cookie":              "http://localhost:8080 {\nsession {\ncookie {\n%s\n}\n}\n}\n",
	"logout_cookies":      "http://localhost:8080 {\nsession {\nlogout_cookies sessionid {\n%s\n}\n}\n}\n",
	"assertion":           "http://localhost:8080 {\nsession {\nassertion {\n%s\n}\n}\n}\n",
	"oidc":                "http://localhost:8080 {\nsession {\noidc corp {\n%s\n}\n}\n}\n",
	"The session matcher": "http://localhost:8080 {\nsession\n%s\nrespond ok\n}\n",
}

func TestConfigurationReferenceIsComplete(t *testing.T) {
	tables, fences := referenceTables(t)
	words := parserWords(t)
	for fn := range words {
		if _, ok := parserSections[fn]; !ok {
			t.Errorf("caddymodule's %s parses a Caddyfile block that docs/configuration.md does not document: add a section and list it in parserSections", fn)
		}
	}
	for fn, section := range parserSections {
		accepted := slices.Sorted(slices.Values(words[fn]))
		accepted = slices.Compact(accepted)
		if len(accepted) == 0 {
			t.Errorf("%s: no switch cases found; has the parser moved?", fn)
			continue
		}
		var documented []string
		for _, row := range tables[section] {
			documented = append(documented, row.name)
		}
		slices.Sort(documented)
		for _, w := range accepted {
			if !slices.Contains(documented, w) {
				t.Errorf("configuration.md, section %q: %q is accepted by %s but not documented", section, w, fn)
			}
		}
		for _, w := range documented {
			if !slices.Contains(accepted, w) {
				t.Errorf("configuration.md, section %q: %q is documented but %s does not accept it", section, w, fn)
			}
		}
	}
	// Each row has an example: inline code that adapts in its section's
	// context, or a ```caddyfile block of the same section that uses it.
	for section, rows := range tables {
		wrapper, ok := exampleWrappers[section]
		if !ok {
			continue
		}
		for _, row := range rows {
			if code := strings.SplitN(row.example, "`", 3); len(code) == 3 {
				example := code[1]
				if section == "oidc" && row.name != "issuer" && row.name != "client_id" {
					example = "issuer https://sso.example.com\nclient_id edgesession\n" + example
				} else if section == "oidc" {
					other := map[string]string{"issuer": "client_id edgesession", "client_id": "issuer https://sso.example.com"}[row.name]
					example = other + "\n" + example
				}
				if err := adapt(t, fmt.Sprintf(wrapper, example)); err != nil {
					t.Errorf("configuration.md, section %q, %s: the example `%s` does not adapt: %v", section, row.name, code[1], err)
				}
				continue
			}
			if !usedInFence(fences, section, row.name) {
				t.Errorf("configuration.md, section %q, %s: no example (inline code, or a ```caddyfile block in the section that uses it)", section, row.name)
			}
		}
	}
}

func usedInFence(fences []fence, section, name string) bool {
	for _, f := range fences {
		if f.section != section || len(f.info) == 0 || f.info[0] != "caddyfile" {
			continue
		}
		for _, line := range strings.Split(f.body, "\n") {
			if fields := strings.Fields(line); len(fields) > 0 && fields[0] == name {
				return true
			}
		}
	}
	return false
}

// The `caddy session` command's subcommands are in the reference too.
func TestConfigurationReferenceNamesEverySessionCommand(t *testing.T) {
	cmd, ok := caddycmd.Commands()["session"]
	if !ok {
		t.Fatal("no caddy session command registered")
	}
	root := &cobra.Command{Use: "session"}
	cmd.CobraFunc(root)
	tables, _ := referenceTables(t)
	var documented []string
	for _, row := range tables["The caddy session command"] {
		documented = append(documented, row.name)
	}
	var registered []string
	for _, sub := range root.Commands() {
		registered = append(registered, sub.Name())
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Errorf("configuration.md documents caddy session %v; the command has %v", documented, registered)
	}
}

// xcaddy.md lists what `caddy list-modules` prints for this module: the
// modules whose type lives in this repository.
func TestXcaddyListsEveryModule(t *testing.T) {
	var ours []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(info.New())
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if strings.HasPrefix(typ.PkgPath(), "github.com/edgesession/edgesession/") {
			ours = append(ours, id)
		}
	}
	text, err := os.ReadFile("xcaddy.md")
	if err != nil {
		t.Fatal(err)
	}
	// The list is the indented block after the line "which lists:".
	_, after, ok := strings.Cut(string(text), "which lists:\n\n")
	if !ok {
		t.Fatal(`xcaddy.md: no "which lists:" followed by the module list`)
	}
	var listed []string
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "    ") {
			break
		}
		listed = append(listed, strings.TrimSpace(line))
	}
	slices.Sort(ours)
	slices.Sort(listed)
	if len(ours) < 7 || !slices.Equal(ours, listed) {
		t.Errorf("xcaddy.md lists %v; this module registers %v", listed, ours)
	}
}

// Every relative link of the docs leads to a file that exists, and to a
// heading (as GitHub names its anchor) or an <a id> in it.
func TestDocsLinksResolve(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		text, err := os.ReadFile(file)
		if err == nil {
			_, headings, _ := parseFences(file, string(text))
			for _, h := range headings {
				a[slug(h)] = true
			}
			for _, m := range idRE.FindAllStringSubmatch(string(text), -1) {
				a[m[1]] = true
			}
		}
		anchors[file] = a
		return a
	}
	for _, f := range docFiles(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link to %s: no such file", f, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !anchorsOf(file)[anchor] {
				t.Errorf("%s: link to %s: no heading or id %q in %s", f, target, anchor, file)
			}
		}
	}
}

var (
	linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	idRE   = regexp.MustCompile(`<a id="([^"]+)"></a>`)
)

// slug is GitHub's anchor for a heading: lower case, letters, digits,
// '-' and '_' kept, spaces to '-', everything else dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
