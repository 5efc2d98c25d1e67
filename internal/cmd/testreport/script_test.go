package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScript runs scripts/test on a repository of three modules made for
// it: one passes, one skips a test, one fails. Every module runs, the
// output is go test's, the summary names the skipped test and its reason,
// and the exit status is 1.
func TestScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test in three modules")
	}
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("../../../scripts/test")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	write("scripts/test", string(script))
	write("go.mod", "module example.com/r\n\ngo 1.26\n")
	write("internal/cmd/testreport/main.go", string(self))
	write("ok/go.mod", "module example.com/ok\n\ngo 1.26\n")
	write("ok/ok_test.go", "package ok\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n")
	write("skip/go.mod", "module example.com/skip\n\ngo 1.26\n")
	write("skip/skip_test.go", "package skip\n\nimport \"testing\"\n\nfunc TestNeedsFrob(t *testing.T) { t.Skip(\"frob is not installed (apt-get install frob)\") }\n")
	write("bad/go.mod", "module example.com/bad\n\ngo 1.26\n")
	write("bad/bad_test.go", "package bad\n\nimport \"testing\"\n\nfunc TestBad(t *testing.T) { t.Error(\"got 1, want 2\") }\n")

	cmd := exec.Command(filepath.Join(root, "scripts/test"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GIT_CEILING_DIRECTORIES="+filepath.Dir(root))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1\n%s", err, &out)
	}
	for _, want := range []string{
		"== go test -race ./... in ./ok\n", "ok  \texample.com/ok\t",
		"== go test -race ./... in ./bad\n", "bad_test.go:5: got 1, want 2\n", "FAIL\texample.com/bad\t",
		"== skipped: 1 test in 1 package; what would make them run:\n- frob is not installed (apt-get install frob)\n    example.com/skip TestNeedsFrob\n",
		"== FAILED in: ./bad\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "=== RUN") || strings.Contains(out.String(), "--- PASS") {
		t.Errorf("verbose output:\n%s", &out)
	}
}
