package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileBuild runs the build stage of the Dockerfile as docker
// would, in a copy of the checkout (COPY . .), with the Go of this machine
// for golang:1.26-bookworm: the command must build from the workspace of
// the released modules, with no replace directive, and say its version.
// (No container registry is reachable here to build the image itself.)
func TestDockerfileBuild(t *testing.T) {
	root := repoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage := strings.SplitN(string(df), "\nFROM scratch", 2)[0]
	if !strings.Contains(stage, "\nWORKDIR /src\n") || !strings.Contains(stage, "\nCOPY . .\n") {
		t.Fatal("the Dockerfile's build stage no longer copies the checkout to /src: update this test")
	}
	var runs []string
	for _, m := range regexp.MustCompile(`(?m)^RUN (.*)$`).FindAllStringSubmatch(stage, -1) {
		runs = append(runs, m[1])
	}
	if len(runs) == 0 {
		t.Fatal("no RUN in the Dockerfile's build stage")
	}
	src, out := t.TempDir(), t.TempDir()
	files, err := treeFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range files {
		info, err := os.Lstat(filepath.Join(root, rel))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(src, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range runs {
		run = strings.ReplaceAll(run, "/out/", out+"/")
		cmd := exec.Command("sh", "-c", run)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "VERSION=v9.9.9-docker")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RUN %s: %v\n%s", run, err, b)
		}
	}
	b, err := exec.Command(filepath.Join(out, "hostguard"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "v9.9.9-docker") {
		t.Errorf("the image's binary: hostguard version: %v: %s", err, b)
	}
}
