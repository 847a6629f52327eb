package edgesession_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

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
