package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// released are the modules a release tags and users fetch, each required
// before those that require it.
var released = []struct{ path, dir string }{
	{"github.com/hostguard/hostguard", "."},
	{"github.com/hostguard/hostguard/discover", "discover"},
	{"github.com/hostguard/hostguard/proxy", "proxy"},
	{"github.com/hostguard/hostguard/cmd/hostguard", "cmd/hostguard"},
}

// unreleased modules point at the released ones with replace directives;
// setversion keeps their requirements in step all the same.
var unreleased = []string{"bench", "examples"}

func isReleased(p string) bool {
	return slices.ContainsFunc(released, func(m struct{ path, dir string }) bool { return m.path == p })
}

// checkVersion refuses what is not a canonical semantic version with a v.
func checkVersion(v string) error {
	if !semver.IsValid(v) || semver.Canonical(v) != v || semver.Build(v) != "" {
		return fmt.Errorf("version %q is not a semantic version such as v0.1.0 or v0.2.0-rc.1 (a leading v, three numbers, no +build suffix)", v)
	}
	if semver.Major(v) != "v0" && semver.Major(v) != "v1" {
		return fmt.Errorf("version %q needs a /%s suffix on every module path; not supported", v, semver.Major(v))
	}
	return nil
}

// repoFile is a file of the working tree, as the module zip sees it.
type repoFile struct {
	rel  string // slash path relative to the module's root
	abs  string
	data []byte // replaces the file's content when not nil
	info fs.FileInfo
}

func (f repoFile) Path() string { return f.rel }
func (f repoFile) Lstat() (fs.FileInfo, error) {
	if f.data != nil {
		return dataInfo{path.Base(f.rel), int64(len(f.data))}, nil
	}
	return f.info, nil
}
func (f repoFile) Open() (io.ReadCloser, error) {
	if f.data != nil {
		return io.NopCloser(bytes.NewReader(f.data)), nil
	}
	return os.Open(f.abs)
}

type dataInfo struct {
	name string
	size int64
}

func (i dataInfo) Name() string       { return i.name }
func (i dataInfo) Size() int64        { return i.size }
func (i dataInfo) Mode() fs.FileMode  { return 0o644 }
func (i dataInfo) ModTime() time.Time { return time.Time{} }
func (i dataInfo) IsDir() bool        { return false }
func (i dataInfo) Sys() any           { return nil }

// treeFiles lists the repository's files as a commit of the working tree
// would hold them: tracked and untracked files that git does not ignore
// (deleted ones left out). Outside a git checkout, every file but .git.
func treeFiles(repo string) ([]string, error) {
	var rels []string
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err == nil {
		for _, p := range strings.Split(string(out), "\x00") {
			if p == "" {
				continue
			}
			if _, err := os.Lstat(filepath.Join(repo, filepath.FromSlash(p))); err == nil {
				rels = append(rels, p)
			}
		}
		slices.Sort(rels)
		return slices.Compact(rels), nil
	}
	err = filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(repo, p)
			rels = append(rels, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(rels)
	return rels, err
}

// moduleFiles returns the files of the module in dir (relative to the
// repository), with overrides (module-relative path to content) in place
// of theirs; the zip code leaves out those of nested modules. A module in
// a subdirectory without a LICENSE gets the repository's, as the go
// command does when it makes a zip from a repository.
func moduleFiles(repo, dir string, all []string, overrides map[string][]byte) ([]modzip.File, error) {
	prefix := ""
	if dir != "." {
		prefix = dir + "/"
	}
	var files []modzip.File
	haveLicense := false
	for _, rel := range all {
		if !strings.HasPrefix(rel, prefix) {
			continue
		}
		mrel := strings.TrimPrefix(rel, prefix)
		abs := filepath.Join(repo, filepath.FromSlash(rel))
		info, err := os.Lstat(abs)
		if err != nil {
			return nil, err
		}
		f := repoFile{rel: mrel, abs: abs, info: info, data: overrides[mrel]}
		files = append(files, f)
		if mrel == "LICENSE" {
			haveLicense = true
		}
	}
	if !haveLicense && dir != "." {
		abs := filepath.Join(repo, "LICENSE")
		info, err := os.Lstat(abs)
		if err == nil {
			files = append(files, repoFile{rel: "LICENSE", abs: abs, info: info})
		}
	}
	return files, nil
}

// versioned is a released module at a version: its go.mod and go.sum with
// the requirements of the other released modules set to that version, its
// files and zip, and the go.sum hashes of the zip and of go.mod.
type versioned struct {
	path, dir      string
	gomod, gosum   []byte
	zip            []byte
	files          []modzip.File
	zipSum, modSum string
}

// atVersion computes the go.mod and go.sum of every released module at
// version: requirements of one another set to version, go.sum lines of
// those versions computed from the zips the modules would have. It returns
// the new contents by module and the zips, in the order of released.
func atVersion(repo, version string) ([]*versioned, error) {
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	all, err := treeFiles(repo)
	if err != nil {
		return nil, fmt.Errorf("listing the repository's files: %w", err)
	}
	done := map[string]*versioned{}
	var mods []*versioned
	for _, m := range released {
		v, err := moduleAtVersion(repo, m.path, m.dir, version, all, done)
		if err != nil {
			return nil, err
		}
		done[m.path] = v
		mods = append(mods, v)
	}
	return mods, nil
}

// moduleAtVersion makes the released module path, in directory dir of repo,
// at version: its go.mod and go.sum rewritten for the released modules in
// done (those before it), its files among all and its zip with their hashes.
func moduleAtVersion(repo, path, dir, version string, all []string, done map[string]*versioned) (*versioned, error) {
	gomod, siblings, err := goModAtVersion(filepath.Join(repo, dir, "go.mod"), path, version, done)
	if err != nil {
		return nil, err
	}
	gosum, err := goSumAtVersion(filepath.Join(repo, dir, "go.sum"), version, siblings)
	if err != nil {
		return nil, err
	}
	overrides := map[string][]byte{"go.mod": gomod}
	if len(gosum) > 0 {
		overrides["go.sum"] = gosum
	}
	files, err := moduleFiles(repo, dir, all, overrides)
	if err != nil {
		return nil, err
	}
	var zbuf bytes.Buffer
	if err := modzip.Create(&zbuf, module.Version{Path: path, Version: version}, files); err != nil {
		return nil, fmt.Errorf("zip of %s: %w", path, err)
	}
	v := &versioned{path: path, dir: dir, gomod: gomod, gosum: gosum, zip: zbuf.Bytes(), files: files}
	if v.zipSum, err = hashZip(zbuf.Bytes()); err != nil {
		return nil, err
	}
	if v.modSum, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	}); err != nil {
		return nil, err
	}
	return v, nil
}

// goModAtVersion reads the go.mod at gomodPath, which must declare module
// path and hold no replace directive, and sets its requirements of the
// released modules to version. Each of those must be in done; it returns
// the formatted go.mod and the modules it requires, in the order required.
func goModAtVersion(gomodPath, path, version string, done map[string]*versioned) ([]byte, []*versioned, error) {
	data, err := os.ReadFile(gomodPath)
	if err != nil {
		return nil, nil, err
	}
	f, err := modfile.Parse(gomodPath, data, nil)
	if err != nil {
		return nil, nil, err
	}
	if f.Module == nil || f.Module.Mod.Path != path {
		return nil, nil, fmt.Errorf("%s: want module %s", gomodPath, path)
	}
	for _, r := range f.Replace {
		return nil, nil, fmt.Errorf("%s:%d: replace %s: a released module's go.mod holds no replace directive (go install pkg@version refuses it); the workspace (go.work) serves development", gomodPath, r.Syntax.Start.Line, r.Old.Path)
	}
	var siblings []*versioned
	for _, r := range f.Require {
		if !isReleased(r.Mod.Path) {
			continue
		}
		dep, ok := done[r.Mod.Path]
		if !ok {
			return nil, nil, fmt.Errorf("%s requires %s, which is not released before it", path, r.Mod.Path)
		}
		if err := f.AddRequire(r.Mod.Path, version); err != nil {
			return nil, nil, err
		}
		siblings = append(siblings, dep)
	}
	f.Cleanup()
	gomod, err := f.Format()
	if err != nil {
		return nil, nil, err
	}
	return gomod, siblings, nil
}

// goSumAtVersion returns the go.sum at sumPath (absent is empty) without
// its lines of released modules, plus the lines of siblings at version,
// sorted. It is empty if no line remains.
func goSumAtVersion(sumPath, version string, siblings []*versioned) ([]byte, error) {
	oldSum, err := os.ReadFile(sumPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(oldSum), "\n") {
		if fields := strings.Fields(l); len(fields) == 3 && !isReleased(fields[0]) {
			lines = append(lines, l)
		}
	}
	for _, dep := range siblings {
		lines = append(lines, dep.path+" "+version+" "+dep.zipSum, dep.path+" "+version+"/go.mod "+dep.modSum)
	}
	return []byte(sortSum(lines)), nil
}

func hashZip(z []byte) (string, error) {
	f, err := os.CreateTemp("", "relkit-*.zip")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(z); err != nil {
		return "", err
	}
	return dirhash.HashZip(f.Name(), dirhash.Hash1)
}

// sortSum orders go.sum lines as the go command writes them (module.Sort:
// by path, then version, the go.mod line after the zip's), without
// duplicates.
func sortSum(lines []string) string {
	key := func(l string) (p, v, file string) {
		f := strings.Fields(l)
		v, file, _ = strings.Cut(f[1], "/")
		return f[0], v, file
	}
	slices.SortStableFunc(lines, func(a, b string) int {
		pa, va, fa := key(a)
		pb, vb, fb := key(b)
		if c := strings.Compare(pa, pb); c != 0 {
			return c
		}
		if va != vb {
			return semver.Compare(va, vb)
		}
		return strings.Compare(fa, fb)
	})
	var b strings.Builder
	for _, l := range slices.Compact(lines) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

var workReplace = regexp.MustCompile(`(?m)^(\s*(?:replace\s+)?(github\.com/hostguard/hostguard(?:/[a-z/]+)?)\s+)v[0-9][^\s]*(\s+=>)`)

// setVersion writes atVersion's go.mod and go.sum into the tree, moves the
// replace lines of go.work to version, and sets the unreleased modules'
// requirements of released ones to version (their replace directives
// still point at the checkout).
func setVersion(repo, version string) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	// go.work first: it is a file of the root module, whose zip's hash
	// goes into the others' go.sum.
	work := filepath.Join(repo, "go.work")
	data, err := os.ReadFile(work)
	if err != nil {
		return err
	}
	data = workReplace.ReplaceAll(data, []byte("${1}"+version+"${3}"))
	if err := os.WriteFile(work, data, 0o644); err != nil {
		return err
	}
	mods, err := atVersion(repo, version)
	if err != nil {
		return err
	}
	for _, m := range mods {
		if err := os.WriteFile(filepath.Join(repo, m.dir, "go.mod"), m.gomod, 0o644); err != nil {
			return err
		}
		if len(m.gosum) > 0 {
			if err := os.WriteFile(filepath.Join(repo, m.dir, "go.sum"), m.gosum, 0o644); err != nil {
				return err
			}
		}
	}
	for _, dir := range unreleased {
		p := filepath.Join(repo, dir, "go.mod")
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		f, err := modfile.Parse(p, data, nil)
		if err != nil {
			return err
		}
		for _, r := range f.Require {
			if isReleased(r.Mod.Path) {
				if err := f.AddRequire(r.Mod.Path, version); err != nil {
					return err
				}
			}
		}
		f.Cleanup()
		out, err := f.Format()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeProxy writes the released modules at version, as atVersion makes
// them, into dir laid out as a module proxy (GOPROXY=file://dir): the
// tree is not touched.
func writeProxy(repo, version string, t time.Time, dir string) error {
	mods, err := atVersion(repo, version)
	if err != nil {
		return err
	}
	for _, m := range mods {
		esc, err := module.EscapePath(m.path)
		if err != nil {
			return err
		}
		d := filepath.Join(dir, filepath.FromSlash(esc), "@v")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		info, _ := json.Marshal(struct{ Version, Time string }{version, t.Format(time.RFC3339)})
		for name, data := range map[string][]byte{
			version + ".info": info,
			version + ".mod":  m.gomod,
			version + ".zip":  m.zip,
			"list":            []byte(version + "\n"),
		} {
			if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
