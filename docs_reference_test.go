// Checks that docs/'s configuration reference names every Caddyfile word, session command and module.

package edgesession_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

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
	"unmarshalMFA":                    "mfa",
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
	"mfa":                 "http://localhost:8080 {\nsession {\nmfa required {\n%s\n}\n}\n}\n",
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
