package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
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
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for cmd, page := range map[string]string{
		"proxy":    read("proxy.md"),
		"exec":     read("cli.md"),
		"match":    read("cli.md"),
		"probe":    read("cli.md"),
		"discover": discovery,
	} {
		_, stdout, stderr := runCLI(t, "", cmd, "-h")
		flags := flagLine.FindAllStringSubmatch(stdout+stderr, -1)
		if len(flags) == 0 {
			t.Fatalf("%s -h lists no flags:\n%s%s", cmd, stdout, stderr)
		}
		for _, f := range flags {
			name := "`--" + f[1]
			if !strings.Contains(page, name) && !strings.Contains(discovery, name) {
				t.Errorf("hostguard %s --%s is not documented in docs/ (write it as %s...`)", cmd, f[1], name)
			}
		}
	}
}
