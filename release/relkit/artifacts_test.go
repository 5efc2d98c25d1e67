package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestArchiveDeterministic(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "bin", "#!/bin/sh\necho hi\n")
	write(t, dir, "lic", "licence\n")
	when := time.Unix(1700000000, 0)
	a, b := filepath.Join(dir, "a.tar.gz"), filepath.Join(dir, "b.tar.gz")
	if err := archive(a, when, []string{"hostguard=" + filepath.Join(dir, "bin") + ":0755", "LICENSE=" + filepath.Join(dir, "lic")}); err != nil {
		t.Fatal(err)
	}
	// Other file times, other order of arguments: the same bytes.
	os.Chtimes(filepath.Join(dir, "bin"), time.Now(), time.Now().Add(time.Hour))
	if err := archive(b, when, []string{"LICENSE=" + filepath.Join(dir, "lic"), "hostguard=" + filepath.Join(dir, "bin") + ":0755"}); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two archives of the same files differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(ab))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q, time %v", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(when) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: time %v, owner %d:%d (%q:%q)", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if want := map[string]int64{"hostguard": 0o755, "LICENSE": 0o644}[h.Name]; h.Mode != want {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want)
		}
	}
	if strings.Join(names, " ") != "LICENSE hostguard" {
		t.Errorf("entries %q, want sorted LICENSE hostguard", names)
	}
	for _, bad := range [][]string{{"x"}, {"x=" + filepath.Join(dir, "lic") + ":9z"}, {"x=" + filepath.Join(dir, "absent")}, {"x=" + filepath.Join(dir, "lic"), "x=" + filepath.Join(dir, "bin")}} {
		if err := archive(filepath.Join(dir, "bad.tar.gz"), when, bad); err == nil {
			t.Errorf("archive %q: no error", bad)
		}
	}
}

func TestSBOMSerialAndTimestamp(t *testing.T) {
	dir := t.TempDir()
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"name":"hostguard","version":"v0.1.0"}},"components":[]}`
	p := filepath.Join(dir, "a.cdx.json")
	write(t, dir, "a.cdx.json", doc)
	if err := fixSBOM(p, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(p)
	var got struct {
		SerialNumber string
		Metadata     struct{ Timestamp string }
	}
	if err := json.Unmarshal(first, &got); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got.SerialNumber) {
		t.Errorf("serial number %q is not a urn:uuid", got.SerialNumber)
	}
	if got.Metadata.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("timestamp %q", got.Metadata.Timestamp)
	}
	// The same document gives the same bytes; another version another serial.
	write(t, dir, "a.cdx.json", doc)
	fixSBOM(p, time.Unix(1700000000, 0))
	again, _ := os.ReadFile(p)
	if !bytes.Equal(first, again) {
		t.Error("the same SBOM fixed twice differs")
	}
	firstSerial := got.SerialNumber
	write(t, dir, "a.cdx.json", strings.Replace(doc, "v0.1.0", "v0.1.1", 1))
	fixSBOM(p, time.Unix(1700000000, 0))
	other, _ := os.ReadFile(p)
	json.Unmarshal(other, &got)
	if got.SerialNumber == firstSerial {
		t.Error("another document got the same serial number")
	}
	write(t, dir, "a.cdx.json", `{"bomFormat":"CycloneDX","serialNumber":"urn:uuid:random"}`)
	if err := fixSBOM(p, time.Unix(0, 0)); err == nil {
		t.Error("a document with a serial number of its own was accepted")
	}
}

func TestChangelog(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "CHANGELOG.md", `# Changelog

Intro.

## [Unreleased]

### Security

### Added

- A new thing,
  on two lines.

### Changed

### Fixed

- A fix.

### Removed

## [0.1.0] - unreleased

### Added

- The first things.

[Unreleased]: https://github.com/hostguard/hostguard/compare/v0.1.0...HEAD
[0.1.0]: https://github.com/hostguard/hostguard/releases/tag/v0.1.0
`)
	if err := changelog(dir, "v0.1.0", "2026-12-07"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "CHANGELOG.md"))
	want := `# Changelog

Intro.

## [Unreleased]

### Security

### Added

### Changed

### Fixed

### Removed

## [0.1.0] - 2026-12-07

### Added

- The first things.
- A new thing,
  on two lines.

### Fixed

- A fix.

[Unreleased]: https://github.com/hostguard/hostguard/compare/v0.1.0...HEAD
[0.1.0]: https://github.com/hostguard/hostguard/releases/tag/v0.1.0
`
	if string(b) != want {
		t.Errorf("got:\n%s\nwant:\n%s", b, want)
	}
	// Nothing new: no v0.2.0.
	if err := changelog(dir, "v0.2.0", "2026-12-08"); err == nil {
		t.Error("an empty Unreleased section made a release")
	}
	os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), bytes.Replace(b, []byte("### Removed\n"), []byte("### Removed\n\n- Gone.\n"), 1), 0o644)
	if err := changelog(dir, "v0.2.0", "2026-12-08"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "CHANGELOG.md"))
	for _, s := range []string{
		"## [0.2.0] - 2026-12-08\n\n### Removed\n\n- Gone.\n\n## [0.1.0] - 2026-12-07",
		"[Unreleased]: https://github.com/hostguard/hostguard/compare/v0.2.0...HEAD\n[0.2.0]: https://github.com/hostguard/hostguard/compare/v0.1.0...v0.2.0\n[0.1.0]: https://github.com/hostguard/hostguard/releases/tag/v0.1.0\n",
	} {
		if !strings.Contains(string(b), s) {
			t.Errorf("CHANGELOG.md lacks %q:\n%s", s, b)
		}
	}
}

// TestChangelogFile: the repository's CHANGELOG.md can be released.
func TestChangelogFile(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "CHANGELOG.md", string(b))
	if err := changelog(dir, "v0.1.0", "2026-12-07"); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "CHANGELOG.md"))
	if !strings.Contains(string(out), "## [0.1.0] - 2026-12-07\n") {
		t.Errorf("no dated 0.1.0 section:\n%s", out)
	}
}
