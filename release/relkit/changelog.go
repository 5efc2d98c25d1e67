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
	// clVersion matches the name of a release's section.
	clVersion = regexp.MustCompile(`^\d+\.\d+\.\d+`)
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
	preamble, sections := splitChangelog(string(data))
	if len(sections) == 0 || sections[0].name != "Unreleased" {
		return fmt.Errorf("%s: the first section is not ## [Unreleased]", p)
	}
	unrel := sections[0]
	name := strings.TrimPrefix(version, "v")
	sections, target := releaseSection(sections, name)
	if target == nil {
		return fmt.Errorf("%s: Unreleased holds no entry, and there is no [%s] section: nothing to release", p, name)
	}
	target.header = fmt.Sprintf("## [%s] - %s", name, date)
	target.merge(unrel)
	sections[0] = emptyUnreleased()
	return os.WriteFile(p, []byte(formatChangelog(preamble, sections)), 0o644)
}

// splitChangelog splits the text of a changelog into the lines before its
// first section and its sections, in order. It drops the link definitions
// ("[name]: url"), which formatChangelog makes anew.
func splitChangelog(text string) (preamble []string, sections []*clSection) {
	var cur []string
	header := ""
	end := func() {
		if header != "" {
			sections = append(sections, parseSection(header, cur))
		}
	}
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case clLink.MatchString(l):
			// dropped: formatChangelog makes the links anew
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
	return preamble, sections
}

// releaseSection returns sections, whose first is Unreleased, and the
// section of release name: the last one so named after Unreleased, or else
// a new one inserted after Unreleased. It makes none, and returns a nil
// section, if Unreleased is empty: there would be nothing to release.
func releaseSection(sections []*clSection, name string) ([]*clSection, *clSection) {
	var target *clSection
	for _, s := range sections[1:] {
		if s.name == name {
			target = s
		}
	}
	if target != nil {
		return sections, target
	}
	unrel := sections[0]
	if unrel.empty() {
		return sections, nil
	}
	target = &clSection{name: name, subs: map[string]string{}}
	return append([]*clSection{unrel, target}, sections[1:]...), target
}

// merge adds the entries of from to s: the text before the first
// subsection after s's own, and each kind's entries after s's entries of
// that kind, kinds new to s appended in from's order.
func (s *clSection) merge(from *clSection) {
	if from.other != "" {
		s.other = strings.TrimSpace(s.other + "\n\n" + from.other)
	}
	for _, k := range from.order {
		if from.subs[k] == "" {
			continue
		}
		if _, ok := s.subs[k]; !ok {
			s.order = append(s.order, k)
		}
		if s.subs[k] != "" {
			s.subs[k] += "\n"
		}
		s.subs[k] += from.subs[k]
	}
}

// emptyUnreleased returns an Unreleased section with an empty subsection
// of each kind but Deprecated.
func emptyUnreleased() *clSection {
	fresh := &clSection{header: "## [Unreleased]", name: "Unreleased", subs: map[string]string{}}
	for _, k := range kinds[:5] {
		fresh.order = append(fresh.order, k)
		fresh.subs[k] = ""
	}
	return fresh
}

// formatChangelog returns the text of a changelog of preamble and
// sections, the first of which (Unreleased) keeps its empty subsections,
// followed by the links of the sections.
func formatChangelog(preamble []string, sections []*clSection) string {
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
		if clVersion.MatchString(s.name) {
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
	return b.String()
}
