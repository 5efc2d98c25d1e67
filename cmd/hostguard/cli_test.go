package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// testRoot is the command tree, for tests that read its definitions.
func testRoot() *cobra.Command {
	var out, errb bytes.Buffer
	code := 0
	return newRoot(testEnv("", &out, &errb, nil), &code)
}

// flagEnvironment is every flag of every subcommand and the environment
// variable that sets it ("": none, deliberately). A new flag fails the test
// until it is added here, with its variable decided, and to the table of
// docs/cli.md.
var flagEnvironment = map[string]string{
	"match --allow":       "",
	"match --allow-empty": "",
	"match --explain":     "",
	"match --format":      "",
	"match --summary":     "",
	"match --self":        "",

	"discover --format":  "",
	"discover --verbose": "",

	"exec --allow":         "HOSTGUARD_ALLOW",
	"exec --env":           "HOSTGUARD_ENV",
	"exec --format":        "HOSTGUARD_FORMAT",
	"exec --sep":           "HOSTGUARD_SEP",
	"exec --allow-missing": "HOSTGUARD_ALLOW_MISSING",
	"exec --check":         "",
	"exec --print":         "",

	"probe --as":      "",
	"probe --host":    "",
	"probe --expect":  "",
	"probe --timeout": "",

	"proxy --allow":                   "HOSTGUARD_ALLOW",
	"proxy --listen":                  "HOSTGUARD_LISTEN",
	"proxy --upstream":                "HOSTGUARD_UPSTREAM",
	"proxy --canonical-host":          "HOSTGUARD_CANONICAL_HOST",
	"proxy --trusted-proxy":           "HOSTGUARD_TRUSTED_PROXY",
	"proxy --allow-empty-host":        "HOSTGUARD_ALLOW_EMPTY_HOST",
	"proxy --report-only":             "HOSTGUARD_REPORT_ONLY",
	"proxy --metrics":                 "HOSTGUARD_METRICS",
	"proxy --grace":                   "HOSTGUARD_GRACE",
	"proxy --read-header-timeout":     "HOSTGUARD_READ_HEADER_TIMEOUT",
	"proxy --idle-timeout":            "HOSTGUARD_IDLE_TIMEOUT",
	"proxy --write-timeout":           "HOSTGUARD_WRITE_TIMEOUT",
	"proxy --body-timeout":            "HOSTGUARD_BODY_TIMEOUT",
	"proxy --max-header-bytes":        "HOSTGUARD_MAX_HEADER_BYTES",
	"proxy --upstream-dial-timeout":   "HOSTGUARD_UPSTREAM_DIAL_TIMEOUT",
	"proxy --upstream-timeout":        "HOSTGUARD_UPSTREAM_TIMEOUT",
	"proxy --tunnel-idle-timeout":     "HOSTGUARD_TUNNEL_IDLE_TIMEOUT",
	"proxy --keep-underscore-headers": "HOSTGUARD_KEEP_UNDERSCORE_HEADERS",
	"proxy --allow-missing":           "HOSTGUARD_ALLOW_MISSING",
	"proxy --refresh":                 "HOSTGUARD_REFRESH",
	"proxy --log-format":              "HOSTGUARD_LOG_FORMAT",
	"proxy --access-log":              "HOSTGUARD_ACCESS_LOG",
	"proxy --tls-cert":                "HOSTGUARD_TLS_CERT",
	"proxy --tls-key":                 "HOSTGUARD_TLS_KEY",
	"proxy --tls-self-signed":         "HOSTGUARD_TLS_SELF_SIGNED",
	"proxy --check":                   "",
}

// discoveryEnvironment is the discovery flags of discover, exec and proxy.
var discoveryEnvironment = map[string]string{
	"--platform":      "HOSTGUARD_PLATFORM",
	"--timeout":       "HOSTGUARD_TIMEOUT",
	"--self":          "HOSTGUARD_SELF",
	"--sysfs":         "HOSTGUARD_SYSFS",
	"--imds-endpoint": "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"--no-imdsv1":     "AWS_EC2_METADATA_V1_DISABLED",
}

// TestFlagEnvironment lists every flag with its variable, checks that the
// command defines exactly those, that help says the variable, that the
// variable sets the flag, and that docs/cli.md's table says the same.
func TestFlagEnvironment(t *testing.T) {
	want := map[string]string{}
	for k, v := range flagEnvironment {
		want[k] = v
	}
	for _, cmd := range []string{"discover", "exec", "proxy"} {
		for f, v := range discoveryEnvironment {
			want[cmd+" "+f] = v
		}
	}
	got := map[string]string{}
	for _, c := range testRoot().Commands() {
		for _, f := range flagsOf(c) {
			if f.Name != "help" {
				got[c.Name()+" --"+f.Name] = envOf(f)
				if v := envOf(f); v != "" && !strings.Contains(f.Usage, "(env "+v+")") {
					t.Errorf("%s --%s: help does not name %s: %q", c.Name(), f.Name, v, f.Usage)
				}
			}
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: no such flag", k)
		} else if g != v {
			t.Errorf("%s: variable %q, want %q", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s (variable %q) is not in the list of this test: decide its variable and add it", k, v)
		}
	}

	// docs/cli.md holds the same table, one row per flag.
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `hostguard (\\w+) (--[a-z0-9-]+)` \\| (?:`([A-Z0-9_]+)`|(—)) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]+" "+m[2]] = m[3]
	}
	for k, v := range want {
		if d, ok := documented[k]; !ok {
			t.Errorf("docs/cli.md's flag table lacks %s", k)
		} else if d != v {
			t.Errorf("docs/cli.md's flag table gives %s the variable %q, want %q", k, d, v)
		}
	}
	if len(documented) != len(want) {
		t.Errorf("docs/cli.md's flag table has %d rows, the command %d flags", len(documented), len(want))
	}

	// The variables do set their flags: a sample of each kind.
	for _, tt := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{map[string]string{"HOSTGUARD_ALLOW_MISSING": "true", "HOSTGUARD_ALLOW": "lhy.kr,@self", "HOSTGUARD_ENV": "A",
			"HOSTGUARD_PLATFORM": "ec2", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1"}, []string{"exec", "--timeout", "100ms", "--print"}, "lhy.kr\n"},
		{map[string]string{"HOSTGUARD_FORMAT": "plain", "HOSTGUARD_ALLOW": "lhy.kr:8443", "HOSTGUARD_ENV": "DJANGO_ALLOWED_HOSTS"}, []string{"exec", "--print"}, "lhy.kr:8443\n"},
		{map[string]string{"HOSTGUARD_PLATFORM": "none", "HOSTGUARD_SELF": "10.0.1.23"}, []string{"discover"}, "10.0.1.23\n"},
	} {
		var out, errb bytes.Buffer
		if code := run(testEnv("", &out, &errb, tt.vars), tt.args); code != exitOK || out.String() != tt.want {
			t.Errorf("%v %q: %d %q %q", tt.vars, tt.args, code, out.String(), errb.String())
		}
	}
}

// TestFlagsAfterArguments: flags may come after the files and the URL.
func TestFlagsAfterArguments(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, []byte("lhy.kr\nevil.example\n"), 0o600)
	code, stdout, stderr := runCLI(t, "", "match", file, "--allow", "lhy.kr", "--explain")
	if code != exitFail || stdout != "accept\tlhy.kr\tlhy.kr\nreject\thost not in allow list\n" {
		t.Errorf("match FILE --allow: %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "", "match", "--allow", "lhy.kr", file, "--allow", "evil.example")
	if code != exitOK || stdout != "accept\tlhy.kr\naccept\tevil.example\n" {
		t.Errorf("flags around the file: %d %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "discover", "--platform", "none", "--self", "10.0.1.23", "--format", "csv")
	if code != exitOK || stdout != "address,sources\n10.0.1.23,static\n" {
		t.Errorf("discover: %d %q", code, stdout)
	}
}

// TestSingleDashLongFlags: -allow, -allow=x and -explain, which the
// standard flag package accepted, keep working.
func TestSingleDashLongFlags(t *testing.T) {
	code, stdout, stderr := runCLI(t, "lhy.kr\n10.0.1.23\n", "match", "-allow", "lhy.kr", "-self=10.0.1.23", "-allow=@self", "-explain")
	if code != exitOK || stdout != "accept\tlhy.kr\tlhy.kr\naccept\t10.0.1.23\t@self\n" {
		t.Errorf("match: %d %q %q", code, stdout, stderr)
	}
	// A value that starts with '-' is a value, not a flag.
	code, out, call := runExecCLI(t, nil, "-allow", "lhy.kr,a.example", "-env", "A", "-sep", "-", "-platform=none", "--", "true")
	if call == nil || !slices.Contains(call.environ, "A=lhy.kr-a.example") {
		t.Errorf("exec: %d %s", code, out)
	}
	if code, stdout, _ := runCLI(t, "", "-version"); code != exitOK || !strings.HasPrefix(stdout, "hostguard ") {
		t.Errorf("-version: %d %q", code, stdout)
	}
	if code, stdout, _ := runCLI(t, "", "probe", "-help"); code != exitOK || !strings.Contains(stdout, "--expect") {
		t.Errorf("probe -help: %d %q", code, stdout)
	}
}

// TestExecStopsAtCommand: exec's flags end at its command, with or
// without "--"; the command's own flags, single-dash too, are its own.
func TestExecStopsAtCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--allow", "lhy.kr", "--env", "A", "--platform", "none", "--", "sh", "-c", "true", "--allow", "x", "-env", "B"},
		{"--allow", "lhy.kr", "--env", "A", "--platform", "none", "sh", "-c", "true", "--allow", "x", "-env", "B"},
		{"-allow", "lhy.kr", "-env", "A", "sh", "-c", "true", "--allow", "x", "-env", "B"},
	} {
		code, out, call := runExecCLI(t, nil, args...)
		if call == nil {
			t.Errorf("%q: %d %s", args, code, out)
			continue
		}
		if !slices.Equal(call.argv, []string{"sh", "-c", "true", "--allow", "x", "-env", "B"}) || !slices.Contains(call.environ, "A=lhy.kr") {
			t.Errorf("%q: ran %q with %q", args, call.argv, call.environ)
		}
	}
}

// TestBadFlagShortError: an unknown flag, a missing value or a value that
// does not parse gets one line naming it, and a hint, not the usage.
func TestBadFlagShortError(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"probe", "http://127.0.0.1/", "--bogus"}, "hostguard probe: unknown flag: --bogus\n"},
		{[]string{"proxy", "--allow"}, "hostguard proxy: flag needs an argument: --allow\n"},
		{[]string{"proxy", "--allow", "lhy.kr", "--grace", "soon"}, `hostguard proxy: invalid argument "soon" for "--grace" flag`},
		{[]string{"match", "-bogus"}, "hostguard match: unknown shorthand flag: 'b' in -bogus\n"},
		{[]string{"frobnicate"}, `hostguard: unknown command "frobnicate" for "hostguard"`},
		{[]string{"completion", "tcsh"}, `hostguard completion: invalid argument "tcsh" for "hostguard completion"`},
	} {
		code, stdout, stderr := runCLI(t, "", tt.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		hint := "Run 'hostguard " + tt.args[0] + " --help' for usage."
		if tt.args[0] == "frobnicate" {
			hint = "Run 'hostguard --help' for usage."
		}
		if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, tt.want) || len(lines) != 2 || lines[1] != hint {
			t.Errorf("%q: %d %q\n%s", tt.args, code, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	_, long, _ := runCLI(t, "", "--version")
	_, sub, _ := runCLI(t, "", "version")
	if !strings.HasPrefix(long, "hostguard ") || long != sub || strings.Count(long, "\n") != 1 {
		t.Errorf("--version %q, version %q", long, sub)
	}
	if code, _, stderr := runCLI(t, "", "version", "x"); code != exitUsage || !strings.Contains(stderr, `"x"`) {
		t.Errorf("version x: %d %q", code, stderr)
	}
}

// TestVersionStamped: a version set with -ldflags -X main.version is the
// one printed; without it, the module's (go install ...@vX sets it).
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "hostguard")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, arg := range []string{"--version", "version", "-version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !strings.HasPrefix(string(out), "hostguard v9.8.7-test ") {
			t.Errorf("%s: %q %v", arg, out, err)
		}
	}
}

// shellPath is a directory with "hostguard" running the test binary as
// the command, for the completion scripts, which run it to complete.
func shellPath(t *testing.T) string {
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nHOSTGUARD_TEST_MAIN=1 exec %q \"$@\"\n", os.Args[0])
	if err := os.WriteFile(filepath.Join(dir, "hostguard"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

// needShell finds a shell, or skips (fails with
// HOSTGUARD_REQUIRE_SHELLS=1, which .ci/run sets).
func needShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install %s); set HOSTGUARD_REQUIRE_SHELLS=1 to fail instead", name, name)
	if os.Getenv("HOSTGUARD_REQUIRE_SHELLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// needFile skips without a file of a Debian package (fails with
// HOSTGUARD_REQUIRE_SHELLS=1).
func needFile(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing (apt-get install %s); set HOSTGUARD_REQUIRE_SHELLS=1 to fail instead", path, pkg)
	if os.Getenv("HOSTGUARD_REQUIRE_SHELLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestCompletionScripts sources each shell's completion script in that
// shell and completes subcommands, flags and --as values through it.
func TestCompletionScripts(t *testing.T) {
	path := shellPath(t)
	shells := []struct {
		shell, script string
		want          []string
	}{
		{"bash", `source /usr/share/bash-completion/bash_completion || exit 1
source <(hostguard completion bash) || exit 1
complete -p hostguard || exit 1
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); __start_hostguard hostguard "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; printf '%s\n' "${COMPREPLY[@]}"; }
complete_words hostguard ma
complete_words hostguard match --sum
complete_words hostguard completion ''
complete_words hostguard probe --as ''
`, []string{"match", "--summary", "bash", "zsh", "fish", "classic-elb"}},
		{"zsh", `autoload -U compinit && compinit -u || exit 1
source <(hostguard completion zsh) || exit 1
print -r -- "function: ${+functions[_hostguard]} registered: ${_comps[hostguard]}"
# the protocol the function asks the binary through
hostguard __complete match --sum
`, []string{"function: 1 registered: _hostguard", "--summary"}},
		{"fish", `hostguard completion fish | source; or exit 1
complete -C 'hostguard ma'
complete -C 'hostguard match --sum'
complete -C 'hostguard completion '
complete -C 'hostguard probe --as '
`, []string{"match", "--summary", "bash", "zsh", "fish", "classic-elb"}},
	}
	for _, sh := range shells {
		t.Run(sh.shell, func(t *testing.T) {
			bin := needShell(t, sh.shell)
			if sh.shell == "bash" {
				// cobra's bash script builds on the bash-completion
				// package, as bash users' shells do.
				needFile(t, "/usr/share/bash-completion/bash_completion", "bash-completion")
			}
			cmd := exec.Command(bin, "-c", sh.script)
			if sh.shell == "zsh" {
				cmd = exec.Command(bin, "-f", "-c", sh.script)
			}
			cmd.Env = append(os.Environ(), "PATH="+path, "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range sh.want {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w) + `\b`).Match(out) {
					t.Errorf("%s completion lacks %q:\n%s", sh.shell, w, out)
				}
			}
		})
	}
}

// TestCompletionPrintsScripts: each script names the command, and nothing
// is written to standard error.
func TestCompletionPrintsScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_hostguard", "zsh": "#compdef hostguard", "fish": "complete -c hostguard"} {
		code, stdout, stderr := runCLI(t, "", "completion", shell)
		if code != exitOK || !strings.Contains(stdout, want) || stderr != "" {
			t.Errorf("%s: %d, stderr %q", shell, code, stderr)
		}
	}
	if code, _, _ := runCLI(t, "", "completion"); code != exitUsage {
		t.Errorf("completion without a shell: %d", code)
	}
}
