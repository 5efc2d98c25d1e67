package examples

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var hostguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostguard-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hostguardBin = filepath.Join(dir, "hostguard")
	// Static, as a release builds it: the Python example's wheel carries it.
	build := exec.Command("go", "build", "-o", hostguardBin, "./cmd/hostguard")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building hostguard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkCommand runs a hostguard command line from an artefact with --check
// added, in an environment holding only env, and returns an error unless
// the current CLI accepts it. It also checks that every HOSTGUARD_ variable
// in env is one the subcommand documents.
func checkCommand(where string, args []string, env map[string]string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: no hostguard command", where)
	}
	sub := args[0]
	help, _ := exec.Command(hostguardBin, sub, "-h").CombinedOutput()
	var errs []error
	for k := range env {
		if strings.HasPrefix(k, "HOSTGUARD_") && !strings.Contains(string(help), "env "+k+")") {
			errs = append(errs, fmt.Errorf("%s: hostguard %s does not read %s", where, sub, k))
		}
	}
	full := append([]string{sub, "--check"}, args[1:]...)
	cmd := exec.Command(hostguardBin, full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok: ") {
		errs = append(errs, fmt.Errorf("%s: hostguard %s is not valid for the current CLI: %v\n%s", where, strings.Join(full, " "), err, out))
	}
	return errors.Join(errs...)
}

// discoverWith runs hostguard discover with env (the example's own
// environment plus the stand-ins' endpoints) and returns what it printed:
// --check does not discover, so a platform setting that finds nothing would
// pass it.
func discoverWith(env map[string]string) (string, error) {
	cmd := exec.Command(hostguardBin, "discover", "--verbose")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("hostguard discover with %v: %v\n%s", env, err, errb.String())
	}
	return out.String(), nil
}

// healthPaths are the routes the example apps answer with 200, read from
// their sources so that a renamed route fails this test.
func healthPaths(t *testing.T) []string {
	var paths []string
	for _, m := range regexp.MustCompile(`path\("([^"]*health[^"]*)"`).FindAllStringSubmatch(string(read(t, "django/mysite/urls.py")), -1) {
		paths = append(paths, "/"+m[1])
	}
	for _, m := range regexp.MustCompile(`"GET (/health[^"]*)"`).FindAllStringSubmatch(string(read(t, "goapp/main.go")), -1) {
		paths = append(paths, m[1])
	}
	if len(paths) == 0 {
		t.Fatal("no health route found in the example apps")
	}
	return paths
}

func checkHealthPath(t *testing.T, where, path string) error {
	t.Helper()
	if !slices.Contains(healthPaths(t), path) {
		return fmt.Errorf("%s: health check path %q is not a route of the example apps (%v)", where, path, healthPaths(t))
	}
	return nil
}

// report fails the test with every error in errs.
func report(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// mustFail runs a check on an artefact broken on purpose and fails the
// test if the check finds nothing wrong: the checks can fail.
func mustFail(t *testing.T, what string, errs []error) {
	t.Helper()
	if errors.Join(errs...) == nil {
		t.Errorf("broken on purpose (%s), yet the checks found nothing", what)
	}
}

// runHostguard runs a hostguard command a README gives: probe against a
// stand-in app that answers 200 on every path (the URL's host and port
// replaced by the stand-in's), exec and proxy with --check.
func runHostguard(t *testing.T, args []string) error {
	t.Helper()
	if len(args) == 0 {
		return errors.New("hostguard without a command")
	}
	switch args[0] {
	case "probe":
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
		defer app.Close()
		args = slices.Clone(args)
		for i, a := range args {
			if u, err := url.Parse(a); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				u.Host = strings.TrimPrefix(app.URL, "http://")
				args[i] = u.String()
			}
		}
		out, err := exec.Command(hostguardBin, args...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "healthy") {
			return fmt.Errorf("hostguard %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	case "exec", "proxy":
		return checkCommand("README", args, nil)
	}
	return fmt.Errorf("hostguard %s: the tests do not run it", args[0])
}
