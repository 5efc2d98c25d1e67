package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/hostguard/hostguard/discover"
)

// runCLI runs the command in-process with the given standard input.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := testEnv(stdin, &out, &errb, nil)
	code = run(e, args)
	return code, out.String(), errb.String()
}

// testEnv is an environment with the given variables, no network
// interfaces, and an execve that fails the test unless a test replaces it.
func testEnv(stdin string, out, errb *bytes.Buffer, vars map[string]string) *env {
	return &env{
		stdin: strings.NewReader(stdin), stdout: out, stderr: errb,
		getenv:     func(k string) string { return vars[k] },
		environ:    func() []string { return []string{"PATH=" + os.Getenv("PATH"), "KEEP=1"} },
		execve:     func(string, []string, []string) error { return errors.New("execve not expected in this test") },
		interfaces: func() ([]discover.Interface, error) { return nil, nil },
	}
}

func TestMain(m *testing.M) {
	// The test binary doubles as hostguard for tests that need a real
	// process (exec replaces the process).
	if os.Getenv("HOSTGUARD_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	if code, _, stderr := runCLI(t, ""); code != exitUsage || !strings.Contains(stderr, "match") {
		t.Errorf("no args: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `"frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runCLI(t, "", "help"); code != exitOK || !strings.Contains(stdout, "match") {
		t.Errorf("help: code %d", code)
	}
}

func TestMatch(t *testing.T) {
	in := "lhy.kr\nWWW.Example.Org.:8443\r\n10.0.1.23:80\nevil.example\nlhy.kr@evil.example\n"
	code, stdout, stderr := runCLI(t, in, "match", "--allow", "lhy.kr,.example.org", "--allow", "192.168.0.0/16")
	want := "accept\tlhy.kr\n" +
		"accept\twww.example.org:8443\n" +
		"reject\thost not in allow list\n" +
		"reject\thost not in allow list\n" +
		"reject\tinvalid character (a name may hold only a-z, 0-9, '.' and '-')\n"
	if code != exitFail || stdout != want || stderr != "" {
		t.Errorf("code %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, stdout, want, stderr)
	}
}

func TestMatchAllAccepted(t *testing.T) {
	code, stdout, _ := runCLI(t, "a.example\n10.1.2.3\n", "match", "--allow", "a.example,10.0.0.0/8", "--explain")
	if code != exitOK || stdout != "accept\ta.example\ta.example\naccept\t10.1.2.3\t10.0.0.0/8\n" {
		t.Errorf("code %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "\n", "match", "--allow", "a.example", "--allow-empty")
	if code != exitOK || stdout != "accept\t\n" {
		t.Errorf("--allow-empty: code %d, stdout %q", code, stdout)
	}
}

func TestMatchUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"match"}, "no allow list"},
		{[]string{"match", "--allow", "http://lhy.kr"}, `"http://lhy.kr"`},
		{[]string{"match", "--allow", "10.0.0.0/33"}, `"10.0.0.0/33"`},
		{[]string{"match", "--allow", "a.example", "extra"}, `"extra"`},
		{[]string{"match", "--bogus"}, "bogus"},
	} {
		code, stdout, stderr := runCLI(t, "a.example\n", tt.args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: code %d, stdout %q, stderr %q (want it to mention %s)", tt.args, code, stdout, stderr, tt.want)
		}
	}
	if code, _, _ := runCLI(t, "", "match", "-h"); code != exitOK {
		t.Errorf("match -h: code %d", code)
	}
}

func TestMatchSelf(t *testing.T) {
	code, stdout, _ := runCLI(t, "10.0.1.23:80\n10.0.1.24\n", "match", "--allow", "lhy.kr,@self", "--self", "10.0.1.23", "--explain")
	if code != exitFail || stdout != "accept\t10.0.1.23:80\t@self\nreject\thost not in allow list\n" {
		t.Errorf("code %d stdout %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, "", "match", "--allow", "@self", "--self", "nope"); code != exitUsage || !strings.Contains(stderr, `"nope"`) {
		t.Errorf("bad --self: %d %q", code, stderr)
	}
}
