package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// targets are the platforms a release builds the command for.
var targets = [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// licenseFile matches the files that carry a module's licence terms.
var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents)([.-].*)?$`)

type depModule struct{ path, version, dir string }

// commandModules lists the modules whose packages are compiled into
// cmd/hostguard on any release target, hostguard's own left out, by
// go list -deps in the repository's workspace.
func commandModules(repo string) ([]depModule, error) {
	seen := map[string]depModule{}
	for _, t := range targets {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}", ".")
		cmd.Dir = filepath.Join(repo, "cmd", "hostguard")
		cmd.Env = append(os.Environ(), "GOOS="+t[0], "GOARCH="+t[1], "CGO_ENABLED=0", "GOWORK="+filepath.Join(repo, "go.work"), "GOFLAGS=-mod=readonly")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list -deps for %s/%s: %v\n%s", t[0], t[1], err, stderr.Bytes())
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 3 || isReleased(f[0]) {
				continue
			}
			seen[f[0]] = depModule{f[0], f[1], f[2]}
		}
	}
	var mods []depModule
	for _, m := range seen {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b depModule) int { return strings.Compare(a.path, b.path) })
	return mods, nil
}

// licenseTexts returns the licence files at the top of dir, by name.
func licenseTexts(dir string) ([][2]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var texts [][2]string
	for _, e := range entries {
		if e.Type().IsRegular() && licenseFile.MatchString(e.Name()) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			texts = append(texts, [2]string{e.Name(), string(b)})
		}
	}
	return texts, nil
}

// noticeText builds THIRD_PARTY_LICENSES.
func noticeText(repo string) ([]byte, error) {
	mods, err := commandModules(repo)
	if err != nil {
		return nil, err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`Licences of the third-party code in the hostguard command

The hostguard binary (cmd/hostguard, as released for linux and darwin on
amd64 and arm64) holds hostguard's own code, under the Apache License 2.0
(LICENSE), the Go standard library and runtime, and the packages of the
modules listed below. Each one's licence files follow, verbatim.

This file is generated from go list -deps of cmd/hostguard by
"go -C release run ./relkit notice -repo .."; the release module's tests
fail when it no longer matches.

`)
	type section struct{ title, dir string }
	sections := []section{{"Go standard library and runtime", filepath.Join(strings.TrimSpace(string(goroot)))}}
	fmt.Fprintf(&b, "  %s\n", sections[0].title)
	for _, m := range mods {
		title := m.path + " " + m.version
		fmt.Fprintf(&b, "  %s\n", title)
		sections = append(sections, section{title, m.dir})
	}
	for _, s := range sections {
		texts, err := licenseTexts(s.dir)
		if err != nil {
			return nil, err
		}
		if len(texts) == 0 {
			return nil, fmt.Errorf("%s: no licence file in %s; the notice cannot be complete", s.title, s.dir)
		}
		fmt.Fprintf(&b, "\n%s\n%s\n", strings.Repeat("=", 78), s.title)
		for _, t := range texts {
			fmt.Fprintf(&b, "\n---- %s\n\n%s", t[0], t[1])
			if !strings.HasSuffix(t[1], "\n") {
				b.WriteString("\n")
			}
		}
	}
	return b.Bytes(), nil
}

// notice writes the notice to file (relative to repo), or with check
// compares it and says how to regenerate it.
func notice(repo, file string, check bool) error {
	want, err := noticeText(repo)
	if err != nil {
		return err
	}
	p := filepath.Join(repo, file)
	if !check {
		return os.WriteFile(p, want, 0o644)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%w; generate it from the repository's root with `go -C release run ./relkit notice -repo ..`", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s does not match the modules compiled into cmd/hostguard (go list -deps); regenerate it from the repository's root with `go -C release run ./relkit notice -repo ..`", file)
	}
	return nil
}
