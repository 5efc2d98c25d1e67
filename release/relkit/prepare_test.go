package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// TestPrepareRelease runs scripts/prepare-release in a clone of the
// checkout, commits its changes as a release would, and checks that the
// go.sum lines it wrote for one another's modules are the hashes of the
// zips the Go module proxy will make from that commit (git archive, as
// golang.org/x/mod/zip.CreateFromVCS does).
func TestPrepareRelease(t *testing.T) {
	if os.Getenv("HOSTGUARD_RELEASE_TESTS") != "1" {
		t.Skip("set HOSTGUARD_RELEASE_TESTS=1 to run scripts/prepare-release in a clone (its checks take 1-2 minutes); .ci/run does")
	}
	root := repoRoot(t)
	clone := filepath.Join(t.TempDir(), "src")
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	head := strings.TrimSpace(git(root, "rev-parse", "HEAD"))
	git(root, "-c", "advice.detachedHead=false", "clone", "-q", "--no-hardlinks", root, clone)
	git(clone, "checkout", "-q", "--detach", head)
	// Something to release.
	cl := filepath.Join(clone, "CHANGELOG.md")
	b, err := os.ReadFile(cl)
	if err != nil {
		t.Fatal(err)
	}
	// The entry goes first under Unreleased's "### Added", whatever that
	// section holds already.
	const added = "### Added\n"
	i := bytes.Index(b, []byte("## [Unreleased]"))
	j := bytes.Index(b[max(i, 0):], []byte(added))
	if i < 0 || j < 0 {
		t.Fatalf("CHANGELOG.md has no %q under ## [Unreleased]", added)
	}
	at := i + j + len(added)
	b = slices.Concat(b[:at], []byte("\n- A test entry.\n"), b[at:])
	if err := os.WriteFile(cl, b, 0o644); err != nil {
		t.Fatal(err)
	}
	git(clone, "commit", "-qam", "an entry")

	const version = "v0.99.0-preparetest"
	cmd := exec.Command(filepath.Join(clone, "scripts", "prepare-release"), version)
	cmd.Dir = clone
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/prepare-release %s: %v\n%s", version, err, out)
	} else if !strings.Contains(string(out), "Tags to push: "+version+" discover/"+version+" proxy/"+version+" cmd/hostguard/"+version) {
		t.Errorf("prepare-release did not print the tags:\n%s", out)
	}
	git(clone, "commit", "-qam", "Release "+version)

	sums, err := os.ReadFile(filepath.Join(clone, "cmd", "hostguard", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range released[:3] {
		sub := ""
		if m.dir != "." {
			sub = m.dir
		}
		f, err := os.CreateTemp(t.TempDir(), "*.zip")
		if err != nil {
			t.Fatal(err)
		}
		if err := modzip.CreateFromVCS(f, module.Version{Path: m.path, Version: version}, clone, "HEAD", sub); err != nil {
			t.Fatal(err)
		}
		f.Close()
		h, err := dirhash.HashZip(f.Name(), dirhash.Hash1)
		if err != nil {
			t.Fatal(err)
		}
		if line := m.path + " " + version + " " + h + "\n"; !bytes.Contains(sums, []byte(line)) {
			t.Errorf("cmd/hostguard/go.sum lacks %q: the hash of the zip from the release commit", line)
		}
	}
	for _, m := range released[1:] {
		b, _ := os.ReadFile(filepath.Join(clone, m.dir, "go.mod"))
		if !bytes.Contains(b, []byte("github.com/hostguard/hostguard "+version)) {
			t.Errorf("%s/go.mod does not require the library at %s", m.dir, version)
		}
	}
	if cl, _ := os.ReadFile(cl); !bytes.Contains(cl, []byte("## [0.99.0-preparetest] - ")) || !bytes.Contains(cl, []byte("- A test entry.")) {
		t.Errorf("CHANGELOG.md has no dated section with the entry")
	}
}
