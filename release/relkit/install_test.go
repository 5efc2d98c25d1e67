package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// proxyTestVersion is the version the install test serves the modules at.
const proxyTestVersion = "v0.1.0-proxytest"

// userEnv is the environment of a user with an empty GOPATH and module
// cache who gets hostguard's modules from the file proxy at dir and every
// other module from the usual proxy.
func userEnv(t *testing.T, dir string) (env []string, gopath string) {
	t.Helper()
	upstream, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	gopath = filepath.Join(home, "gopath")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOPATH", "GOMODCACHE", "GOPROXY", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOWORK", "GOTOOLCHAIN":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"GOPATH="+gopath,
		"GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOPROXY=file://"+dir+","+strings.TrimSpace(string(upstream)),
		"GONOSUMDB=github.com/hostguard/hostguard",
		"GOFLAGS=-modcacherw", // so that the test can remove the cache
		"GOWORK=off",
		"GOTOOLCHAIN=local",
	), gopath
}

func goCmd(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go %s (%.1fs)", strings.Join(args, " "), time.Since(start).Seconds())
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// readmeLibrary returns the Go code of README's "The library in one screen".
func readmeLibrary(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## The library in one screen\n.*?```go\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal(`README.md: no go block under "The library in one screen"`)
	}
	return string(m[1])
}

// TestModuleProxyInstall serves the released modules at a test version
// from a file module proxy and uses them as users would, in an empty GOPATH
// and module cache: go install of the command, a module that requires the
// library alone (its graph stays small), and one that builds README's
// library example with discover.
func TestModuleProxyInstall(t *testing.T) {
	if os.Getenv("HOSTGUARD_RELEASE_TESTS") != "1" {
		t.Skip("set HOSTGUARD_RELEASE_TESTS=1 to install the modules from a local module proxy (fetches third-party modules from the Go module proxy into an empty module cache, 1-2 minutes); .ci/run does")
	}
	root := repoRoot(t)
	proxy := t.TempDir()
	if err := writeProxy(root, proxyTestVersion, time.Unix(1700000000, 0), proxy); err != nil {
		t.Fatal(err)
	}
	env, gopath := userEnv(t, proxy)
	start := time.Now()
	defer func() { t.Logf("with an empty module cache: %.0fs", time.Since(start).Seconds()) }()

	t.Run("go install", func(t *testing.T) {
		goCmd(t, env, t.TempDir(), "install", "github.com/hostguard/hostguard/cmd/hostguard@"+proxyTestVersion)
		out, err := exec.Command(filepath.Join(gopath, "bin", "hostguard"), "version").CombinedOutput()
		if err != nil {
			t.Fatalf("hostguard version: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), proxyTestVersion) {
			t.Errorf("hostguard version printed %q, want %s in it", out, proxyTestVersion)
		}
	})

	t.Run("library alone", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "go.mod", "module example.com/user\n\ngo 1.26.0\n")
		write(t, dir, "main.go", `package main

import (
	"fmt"

	"github.com/hostguard/hostguard"
)

func main() {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: []string{"example.com", "10.0.0.0/8"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Allow("EXAMPLE.com:443"), g.Allow("10.1.2.3"), g.Allow("evil.example"))
}
`)
		goCmd(t, env, dir, "get", "github.com/hostguard/hostguard@"+proxyTestVersion)
		goCmd(t, env, dir, "mod", "tidy")
		all := goCmd(t, env, dir, "list", "-m", "all")
		var others []string
		for _, m := range strings.Split(strings.TrimSpace(all), "\n") {
			if m != "example.com/user" {
				others = append(others, m)
			}
		}
		t.Logf("go list -m all: %d modules besides the user's own:\n%s", len(others), strings.Join(others, "\n"))
		if len(others) > 10 {
			t.Errorf("a module that imports the library has %d modules in go list -m all, want at most 10", len(others))
		}
		if !strings.Contains(all, "github.com/hostguard/hostguard "+proxyTestVersion+"\n") {
			t.Errorf("go list -m all lacks the library at %s", proxyTestVersion)
		}
		if out := goCmd(t, env, dir, "run", "."); strings.TrimSpace(out) != "true true false" {
			t.Errorf("the program printed %q, want true true false", out)
		}
	})

	t.Run("README library in one screen", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "go.mod", "module example.com/user\n\ngo 1.26.0\n")
		write(t, dir, "main.go", fmt.Sprintf(`package main

import (
	"context"
	"log"
	"net/http"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/discover"
)

func main() {
	ctx := context.Background()
	mux := http.NewServeMux()
%s}
`, readmeLibrary(t, root)))
		goCmd(t, env, dir, "get", "github.com/hostguard/hostguard@"+proxyTestVersion, "github.com/hostguard/hostguard/discover@"+proxyTestVersion)
		goCmd(t, env, dir, "mod", "tidy")
		goCmd(t, env, dir, "vet", ".")
		goCmd(t, env, dir, "build", "-o", filepath.Join(dir, "app"), ".")
	})
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
