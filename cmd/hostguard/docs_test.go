package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestFlagsDocumented: every flag a subcommand accepts is in its reference
// page, so the docs cannot fall behind the code.
func TestFlagsDocumented(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../../docs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	discovery := read("discovery.md")
	pages := map[string]string{
		"proxy":    read("proxy.md"),
		"exec":     read("cli.md"),
		"match":    read("cli.md"),
		"probe":    read("cli.md"),
		"discover": discovery,
	}
	root := testRoot()
	for cmd, page := range pages {
		c, _, err := root.Find([]string{cmd})
		if err != nil || c.Name() != cmd {
			t.Fatalf("no command %s: %v", cmd, err)
		}
		flags := flagsOf(c)
		if len(flags) < 2 {
			t.Fatalf("%s has %d flags", cmd, len(flags))
		}
		for _, f := range flags {
			if f.Name == "help" {
				continue
			}
			name := "`--" + f.Name
			if !strings.Contains(page, name) && !strings.Contains(discovery, name) {
				t.Errorf("hostguard %s --%s is not documented in docs/ (write it as %s...`)", cmd, f.Name, name)
			}
		}
	}
}

// TestDocLinks: every relative link of the top-level pages names a file
// that exists and, with a #fragment, a heading of it (GitHub's anchors).
func TestDocLinks(t *testing.T) {
	pages, _ := filepath.Glob("../../docs/*.md")
	more, _ := filepath.Glob("../../examples/*/README.md")
	pages = append(pages, more...)
	pages = append(pages, "../../README.md", "../../bench/README.md", "../../examples/README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist", page, target)
				continue
			}
			if frag == "" || strings.HasSuffix(path, "/") {
				continue
			}
			if fi, _ := os.Stat(path); fi.IsDir() {
				continue
			}
			text, _ := os.ReadFile(path)
			if !slices.Contains(anchors(string(text)), frag) {
				t.Errorf("%s links to %s: no heading with that anchor in %s", page, target, path)
			}
		}
	}
}

// anchors returns GitHub's anchors for the headings of a Markdown text:
// lower case, punctuation but '-' and '_' dropped, spaces to '-'.
func anchors(text string) []string {
	var out []string
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}
