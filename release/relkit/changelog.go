package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

const repoURL = "https://github.com/hostguard/hostguard"

// kinds are Keep a Changelog's subsections, in the order the file keeps.
var kinds = []string{"Security", "Added", "Changed", "Fixed", "Removed", "Deprecated"}

type clSection struct {
	header string            // "## [0.1.0] - 2026-12-06"
	name   string            // "Unreleased", "0.1.0"
	subs   map[string]string // kind -> entries, trimmed
	order  []string          // kinds in the order met
	other  string            // text before the first subsection
}

var (
	clHeader = regexp.MustCompile(`^## \[([^\]]+)\]`)
	clLink   = regexp.MustCompile(`^\[[^\]]+\]: `)
)

func parseSection(header string, lines []string) *clSection {
	s := &clSection{header: header, subs: map[string]string{}}
	if m := clHeader.FindStringSubmatch(header); m != nil {
		s.name = m[1]
	}
	kind := ""
	var body []string
	flush := func() {
		text := strings.TrimSpace(strings.Join(body, "\n"))
		if kind == "" {
			s.other = text
		} else {
			if prev := s.subs[kind]; prev != "" && text != "" {
				text = prev + "\n" + text
			} else if prev != "" {
				text = prev
			}
			s.subs[kind] = text
		}
		body = nil
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "### ") {
			flush()
			kind = strings.TrimSpace(strings.TrimPrefix(l, "### "))
			if _, ok := s.subs[kind]; !ok {
				s.order = append(s.order, kind)
				s.subs[kind] = ""
			}
			continue
		}
		body = append(body, l)
	}
	flush()
	return s
}

func (s *clSection) empty() bool {
	for _, v := range s.subs {
		if v != "" {
			return false
		}
	}
	return s.other == ""
}

func (s *clSection) String(keepEmpty bool) string {
	var b strings.Builder
	b.WriteString(s.header + "\n")
	if s.other != "" {
		b.WriteString("\n" + s.other + "\n")
	}
	for _, k := range s.order {
		if s.subs[k] == "" && !keepEmpty {
			continue
		}
		b.WriteString("\n### " + k + "\n")
		if s.subs[k] != "" {
			b.WriteString("\n" + s.subs[k] + "\n")
		}
	}
	return b.String()
}

// changelog moves the entries of CHANGELOG.md's Unreleased section into
// the section of version (made if absent, merged by kind if written ahead),
// dated date, leaves an empty Unreleased skeleton and updates the links.
func changelog(repo, version, date string) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	p := filepath.Join(repo, "CHANGELOG.md")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var preamble []string
	var sections []*clSection
	var links []string
	var cur []string
	header := ""
	end := func() {
		if header != "" {
			sections = append(sections, parseSection(header, cur))
		}
	}
	for _, l := range lines {
		switch {
		case clLink.MatchString(l):
			links = append(links, l)
		case strings.HasPrefix(l, "## "):
			end()
			header, cur = l, nil
		case header == "":
			preamble = append(preamble, l)
		default:
			cur = append(cur, l)
		}
	}
	end()
	if len(sections) == 0 || sections[0].name != "Unreleased" {
		return fmt.Errorf("%s: the first section is not ## [Unreleased]", p)
	}
	unrel := sections[0]
	name := strings.TrimPrefix(version, "v")
	var target *clSection
	for _, s := range sections[1:] {
		if s.name == name {
			target = s
		}
	}
	if target == nil {
		if unrel.empty() {
			return fmt.Errorf("%s: Unreleased holds no entry, and there is no [%s] section: nothing to release", p, name)
		}
		target = &clSection{name: name, subs: map[string]string{}}
		sections = append([]*clSection{unrel, target}, sections[1:]...)
	}
	target.header = fmt.Sprintf("## [%s] - %s", name, date)
	if unrel.other != "" {
		target.other = strings.TrimSpace(target.other + "\n\n" + unrel.other)
	}
	for _, k := range unrel.order {
		if unrel.subs[k] == "" {
			continue
		}
		if _, ok := target.subs[k]; !ok {
			target.order = append(target.order, k)
		}
		if target.subs[k] != "" {
			target.subs[k] += "\n"
		}
		target.subs[k] += unrel.subs[k]
	}
	fresh := &clSection{header: "## [Unreleased]", name: "Unreleased", subs: map[string]string{}}
	for _, k := range kinds[:5] {
		fresh.order = append(fresh.order, k)
		fresh.subs[k] = ""
	}
	sections[0] = fresh

	var b strings.Builder
	b.WriteString(strings.TrimRight(strings.Join(preamble, "\n"), "\n") + "\n")
	for i, s := range sections {
		b.WriteString("\n" + s.String(i == 0))
	}
	b.WriteString("\n")
	// Links: Unreleased against the newest tag, each release against the
	// one before it, the first one to its tag.
	var versions []string
	for _, s := range sections[1:] {
		if regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(s.name) {
			versions = append(versions, s.name)
		}
	}
	b.WriteString(fmt.Sprintf("[Unreleased]: %s/compare/v%s...HEAD\n", repoURL, versions[0]))
	for i, v := range versions {
		if i+1 < len(versions) {
			b.WriteString(fmt.Sprintf("[%s]: %s/compare/v%s...v%s\n", v, repoURL, versions[i+1], v))
		} else {
			b.WriteString(fmt.Sprintf("[%s]: %s/releases/tag/v%s\n", v, repoURL, v))
		}
	}
	_ = links // replaced by the ones above
	return os.WriteFile(p, []byte(b.String()), 0o644)
}
