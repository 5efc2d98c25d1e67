package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

type execCall struct {
	path    string
	argv    []string
	environ []string
}

func runExecCLI(t *testing.T, vars map[string]string, args ...string) (int, string, *execCall) {
	t.Helper()
	var out, errb bytes.Buffer
	e := testEnv("", &out, &errb, vars)
	var call *execCall
	e.execve = func(path string, argv, environ []string) error {
		call = &execCall{path, argv, environ}
		return nil
	}
	code := run(e, append([]string{"exec"}, args...))
	return code, out.String() + errb.String(), call
}

func TestExecExpandsSelf(t *testing.T) {
	code, out, call := runExecCLI(t, nil, "--allow", "lhy.kr,@self,.lhy.kr", "--env", "DJANGO_ALLOWED_HOSTS",
		"--platform", "none", "--self", "10.0.1.23,2001:db8::7", "--", "sh", "-c", "true")
	if call == nil {
		t.Fatalf("no exec: %d %s", code, out)
	}
	if !slices.Contains(call.environ, "DJANGO_ALLOWED_HOSTS=lhy.kr,10.0.1.23,[2001:db8::7],.lhy.kr") || !slices.Contains(call.environ, "KEEP=1") {
		t.Errorf("environ %q", call.environ)
	}
	if !strings.HasSuffix(call.path, "/sh") || !slices.Equal(call.argv, []string{"sh", "-c", "true"}) {
		t.Errorf("exec %s %q", call.path, call.argv)
	}
	if !strings.Contains(out, "@self 10.0.1.23 from static") {
		t.Errorf("no explanation: %s", out)
	}
}

func TestExecFromEnvironment(t *testing.T) {
	vars := map[string]string{"HOSTGUARD_ALLOW": "lhy.kr,@self", "HOSTGUARD_ENV": "ALLOWED", "HOSTGUARD_SEP": " ",
		"HOSTGUARD_PLATFORM": "none", "HOSTGUARD_SELF": "10.0.0.9"}
	_, out, call := runExecCLI(t, vars, "--", "true")
	if call == nil || !slices.Contains(call.environ, "ALLOWED=lhy.kr 10.0.0.9") {
		t.Fatalf("%s %+v", out, call)
	}
}

func TestExecWithoutSelfSkipsDiscovery(t *testing.T) {
	// An unreachable IMDS would fail discovery; without @self none runs.
	_, out, call := runExecCLI(t, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closedURL(t)},
		"--allow", "lhy.kr", "--env", "A", "--platform", "ec2", "--", "true")
	if call == nil || !slices.Contains(call.environ, "A=lhy.kr") {
		t.Fatalf("%s", out)
	}
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestExecRefusesWhenDiscoveryFails(t *testing.T) {
	vars := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closedURL(t)}
	code, out, call := runExecCLI(t, vars, "--allow", "lhy.kr,@self", "--env", "A", "--platform", "ec2", "--", "true")
	if code != exitFail || call != nil || !strings.Contains(out, "not starting true") || !strings.Contains(out, "--allow-missing") || !strings.Contains(out, "/latest/meta-data/local-ipv4") {
		t.Errorf("%d %s", code, out)
	}
	code, out, call = runExecCLI(t, vars, "--allow", "lhy.kr,@self", "--env", "A", "--platform", "ec2", "--allow-missing", "--", "true")
	if call == nil || !slices.Contains(call.environ, "A=lhy.kr") || !strings.Contains(out, "warning") {
		t.Errorf("--allow-missing: %d %s", code, out)
	}
}

func TestExecUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "A", "--", "true"}, "no allow list"},
		{[]string{"--allow", "lhy.kr", "--", "true"}, "no variable"},
		{[]string{"--allow", "lhy.kr", "--env", "1A", "--", "true"}, `"1A"`},
		{[]string{"--allow", "lhy.kr", "--env", "A"}, "no command"},
		{[]string{"--allow", "http://lhy.kr", "--env", "A", "--", "true"}, `"http://lhy.kr"`},
		{[]string{"--allow", "lhy.kr", "--env", "A", "--", "no-such-command-hostguard"}, `"no-such-command-hostguard"`},
		{[]string{"--allow", "lhy.kr", "--env", "A", "--sep", "", "--", "true"}, "--sep"},
		{[]string{"--allow", "@self", "--env", "A", "--timeout", "x", "--", "true"}, `"x"`},
	} {
		code, out, call := runExecCLI(t, nil, tt.args...)
		if code != exitUsage || call != nil || !strings.Contains(out, tt.want) {
			t.Errorf("%q: %d %s", tt.args, code, out)
		}
	}
}

func TestExecCheck(t *testing.T) {
	code, out, call := runExecCLI(t, nil, "--allow", "lhy.kr,@self", "--env", "DJANGO_ALLOWED_HOSTS", "--platform", "ec2", "--check", "--", "true")
	if code != exitOK || call != nil || !strings.Contains(out, "ok: would set DJANGO_ALLOWED_HOSTS") {
		t.Errorf("%d %s", code, out)
	}
}

// TestExecReplacesProcess runs the real binary: the command's output and
// exit status must be the command's own.
func TestExecReplacesProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "exec", "--allow", "lhy.kr,@self", "--env", "DJANGO_ALLOWED_HOSTS",
		"--platform", "none", "--self", "10.0.1.23", "--", "sh", "-c", `echo "got $DJANGO_ALLOWED_HOSTS"; exit 7`)
	cmd.Env = append(os.Environ(), "HOSTGUARD_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || out.String() != "got lhy.kr,10.0.1.23\n" {
		t.Errorf("err %v, stdout %q", err, out.String())
	}
}
