package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// repoRoot is the checkout this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("no go.work at %s: %v", root, err)
	}
	return root
}

// TestReleasedModules holds the rules that let users fetch the modules:
// no replace directive, one version for every requirement between them,
// and go.work's replace lines at that version.
func TestReleasedModules(t *testing.T) {
	root := repoRoot(t)
	var version string
	required := map[string]bool{}
	for _, m := range released {
		p := filepath.Join(root, m.dir, "go.mod")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse(p, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Module.Mod.Path != m.path {
			t.Errorf("%s: module %s, want %s", p, f.Module.Mod.Path, m.path)
		}
		for _, r := range f.Replace {
			t.Errorf("%s: replace %s => %s: go install %s@VERSION refuses a go.mod with replace directives; go.work serves the checkout", p, r.Old.Path, r.New.Path, m.path)
		}
		for _, r := range f.Require {
			if !isReleased(r.Mod.Path) {
				continue
			}
			required[r.Mod.Path] = true
			if version == "" {
				version = r.Mod.Version
			}
			if r.Mod.Version != version {
				t.Errorf("%s requires %s %s, others %s: the modules are versioned together (scripts/prepare-release)", p, r.Mod.Path, r.Mod.Version, version)
			}
		}
	}
	if !semver.IsValid(version) {
		t.Fatalf("the released modules require one another at %q, not a semantic version", version)
	}
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork("go.work", work, nil)
	if err != nil {
		t.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, r := range wf.Replace {
		if isReleased(r.Old.Path) {
			if r.Old.Version != version {
				t.Errorf("go.work replaces %s %s, but the modules require %s", r.Old.Path, r.Old.Version, version)
			}
			replaced[r.Old.Path] = true
		}
	}
	used := map[string]bool{}
	for _, u := range wf.Use {
		used[filepath.Clean(u.Path)] = true
	}
	for _, m := range released {
		if !used[filepath.Clean(m.dir)] {
			t.Errorf("go.work does not use %s", m.dir)
		}
	}
	for p := range required {
		if !replaced[p] {
			t.Errorf("go.work has no replace line for %s %s, so the workspace would fetch that version's go.mod", p, version)
		}
	}
	for _, u := range wf.Use {
		d := filepath.ToSlash(filepath.Clean(u.Path))
		if d == "examples" || d == "bench" || d == "release" {
			t.Errorf("go.work uses %s: a newcomer's go run ./cmd/hostguard would fetch its dependencies", d)
		}
	}
}

// TestNoForeignInternal: no package of a released module imports another
// module's internal packages outside its tests, since minimal version
// selection can pair any two versions of them.
func TestNoForeignInternal(t *testing.T) {
	root := repoRoot(t)
	owner := func(pkg string) string {
		best := ""
		for _, m := range released {
			if (pkg == m.path || strings.HasPrefix(pkg, m.path+"/")) && len(m.path) > len(best) {
				best = m.path
			}
		}
		return best
	}
	for _, m := range released {
		cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
		cmd.Dir = filepath.Join(root, m.dir)
		cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list in %s: %v\n%s", m.dir, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || owner(f[0]) != m.path {
				continue
			}
			for _, imp := range f[1:] {
				if o := owner(imp); o != "" && o != m.path && regexp.MustCompile(`/internal(/|$)`).MatchString(imp) {
					t.Errorf("%s (module %s) imports %s, an internal package of module %s", f[0], m.path, imp, o)
				}
			}
		}
	}
}

// TestRatelogCopies: the proxy's copy of ratelog keeps the root's code.
func TestRatelogCopies(t *testing.T) {
	root := repoRoot(t)
	code := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("\npackage ratelog\n"))
		if i < 0 {
			t.Fatalf("%s: no package clause", p)
		}
		return b[i:]
	}
	if !bytes.Equal(code("internal/ratelog/ratelog.go"), code("proxy/internal/ratelog/ratelog.go")) {
		t.Error("proxy/internal/ratelog/ratelog.go and internal/ratelog/ratelog.go differ below their package comments; change both")
	}
}

// TestNoticeCurrent: THIRD_PARTY_LICENSES lists exactly the modules
// compiled into cmd/hostguard, with their licence files.
func TestNoticeCurrent(t *testing.T) {
	root := repoRoot(t)
	if err := notice(root, "THIRD_PARTY_LICENSES", true); err != nil {
		t.Fatal(err)
	}
	mods, err := commandModules(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 5 {
		t.Fatalf("only %d modules in the command: %v", len(mods), mods)
	}
	text, _ := os.ReadFile(filepath.Join(root, "THIRD_PARTY_LICENSES"))
	for _, m := range mods {
		if !bytes.Contains(text, []byte("\n"+m.path+" "+m.version+"\n")) {
			t.Errorf("THIRD_PARTY_LICENSES has no section for %s %s", m.path, m.version)
		}
	}
}

// TestNoticeCheckFails: the check notices a stale file.
func TestNoticeCheckFails(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	stale, _ := os.ReadFile(filepath.Join(root, "THIRD_PARTY_LICENSES"))
	stale = bytes.Replace(stale, []byte("golang.org/x/net "), []byte("golang.org/x/nett "), -1)
	rel, _ := filepath.Rel(root, filepath.Join(dir, "stale"))
	if err := os.WriteFile(filepath.Join(dir, "stale"), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := notice(root, rel, true); err == nil {
		t.Error("a notice with a wrong module name passed the check")
	}
}

// TestSortSum: go.sum lines in the go command's order.
func TestSortSum(t *testing.T) {
	got := sortSum([]string{
		"b.example/m v1.10.0/go.mod h1:d",
		"b.example/m v1.2.0 h1:a",
		"a.example/m v0.1.0/go.mod h1:c",
		"b.example/m v1.10.0 h1:b",
		"b.example/m v1.2.0/go.mod h1:e",
		"a.example/m v0.1.0/go.mod h1:c",
	})
	want := "a.example/m v0.1.0/go.mod h1:c\nb.example/m v1.2.0 h1:a\nb.example/m v1.2.0/go.mod h1:e\nb.example/m v1.10.0 h1:b\nb.example/m v1.10.0/go.mod h1:d\n"
	if got != want {
		t.Errorf("sortSum:\n%s\nwant:\n%s", got, want)
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"v0.1.0", "v0.1.0-rc.1", "v1.2.3", "v0.0.0-ci"} {
		if err := checkVersion(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, v := range []string{"0.1.0", "v0.1", "v0.1.0+meta", "v2.0.0", "v01.0.0", "latest", ""} {
		if err := checkVersion(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
