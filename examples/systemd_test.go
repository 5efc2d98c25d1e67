package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostguard/hostguard/internal/aemm"
)

// The one unit and env file: the packages install them, examples/systemd
// documents them.
const (
	unitFile = "../packaging/linux/hostguard.service"
	envFile  = "../packaging/linux/hostguard.env"
)

// maxExposure is the highest "systemd-analyze security" rating that still
// reads "OK".
const maxExposure = 2.9

// systemdAnalyze returns Debian's systemd-analyze, or skips; with
// HOSTGUARD_REQUIRE_E2E=1 (CI) it fails instead.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		return p
	}
	if os.Getenv("HOSTGUARD_REQUIRE_E2E") == "1" {
		t.Fatal("systemd-analyze is required (HOSTGUARD_REQUIRE_E2E=1): apt-get install systemd")
	}
	t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	return ""
}

// parseEnvFile reads an EnvironmentFile= the way systemd does for the
// simple lines ours holds: KEY=VALUE, comments and blank lines skipped, a
// later assignment replacing an earlier one.
func parseEnvFile(b []byte, into map[string]string) error {
	s := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(k) {
			return fmt.Errorf("line %d: %q is not NAME=VALUE", n, line)
		}
		if strings.ContainsAny(v, `"'\$`) {
			return fmt.Errorf("line %d: %q: quotes, escapes and $ mean something to systemd; keep values plain", n, line)
		}
		into[k] = v
	}
	return s.Err()
}

// checkUnit verifies a unit with systemd-analyze (any warning counts: an
// unknown key is only a warning to systemd), with its ExecStart binary at
// bin, rates its exposure, and checks hostguard's command line with the
// settings of its environment files (files maps each path the unit names
// to its content; absent means absent) and the stop timing.
func checkUnit(t *testing.T, unit []byte, files map[string][]byte, bin string) []error {
	var errs []error
	var execStart []string
	stop := 0 * time.Second
	env := map[string]string{}
	read := 0
	s := bufio.NewScanner(bytes.NewReader(unit))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(s.Text(), "TimeoutStopSec="); ok {
			d, err := time.ParseDuration(v + "s")
			if err == nil {
				stop = d
			}
		}
		if v, ok := strings.CutPrefix(s.Text(), "EnvironmentFile="); ok {
			path, optional := strings.CutPrefix(v, "-")
			b, ok := files[path]
			switch {
			case !ok && !optional:
				errs = append(errs, fmt.Errorf("EnvironmentFile=%s is missing", v))
			case ok:
				read++
				if err := parseEnvFile(b, env); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", path, err))
				}
			}
		}
	}
	if read == 0 {
		errs = append(errs, fmt.Errorf("the unit reads none of the env files %v", keys(files)))
	}
	if len(execStart) < 2 || filepath.Base(execStart[0]) != "hostguard" {
		return append(errs, fmt.Errorf("ExecStart %q", execStart))
	}
	errs = append(errs, checkCommand("systemd ExecStart", execStart[1:], env))
	grace := 30 * time.Second // proxy.DefaultGrace
	if v, ok := env["HOSTGUARD_GRACE"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HOSTGUARD_GRACE=%s: %v", v, err))
		}
		grace = d
	}
	if stop <= grace {
		errs = append(errs, fmt.Errorf("TimeoutStopSec %v must exceed hostguard's grace period %v", stop, grace))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "hostguard.service")
	if err := os.WriteFile(file, bytes.ReplaceAll(unit, []byte(execStart[0]), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(systemdAnalyze(t), "verify", file).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		errs = append(errs, fmt.Errorf("systemd-analyze verify: %v\n%s", err, out))
	}
	if e, err := exposure(t, file); err != nil {
		errs = append(errs, err)
	} else if e > maxExposure {
		errs = append(errs, fmt.Errorf("systemd-analyze security rates the unit %.1f, above %.1f (OK)", e, maxExposure))
	}
	return nonNil(errs)
}

// exposure returns the overall exposure level systemd-analyze security
// gives the unit file.
func exposure(t *testing.T, file string) (float64, error) {
	out, _ := exec.Command(systemdAnalyze(t), "security", "--offline=true", file).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) `).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("systemd-analyze security gave no exposure level:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// withAllow returns the shipped env file with HOSTGUARD_ALLOW set, as a
// user sets it.
func withAllow(t *testing.T) []byte {
	env := read(t, envFile)
	if !bytes.Contains(env, []byte("\nHOSTGUARD_ALLOW=\n")) {
		t.Fatalf("%s no longer holds an empty HOSTGUARD_ALLOW= line for users to fill", envFile)
	}
	return bytes.Replace(env, []byte("\nHOSTGUARD_ALLOW=\n"), []byte("\nHOSTGUARD_ALLOW=lhy.kr,@self\n"), 1)
}

func TestSystemdUnit(t *testing.T) {
	unit := read(t, unitFile)
	report(t, checkUnit(t, unit, map[string][]byte{"/etc/default/hostguard": withAllow(t)}, hostguardBin))
	report(t, checkUnit(t, unit, map[string][]byte{"/etc/sysconfig/hostguard": withAllow(t)}, hostguardBin))

	// As shipped, without an allow list, hostguard refuses to start and
	// says what is missing.
	env := map[string]string{}
	if err := parseEnvFile(read(t, envFile), env); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hostguardBin, "proxy", "--check")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "allow list") {
		t.Errorf("the shipped env file: hostguard proxy --check %v\n%s", err, out)
	}

	// What the packages need the unit to keep.
	for _, line := range []string{
		"ExecStart=/usr/bin/hostguard proxy",
		"EnvironmentFile=-/etc/default/hostguard",
		"EnvironmentFile=-/etc/sysconfig/hostguard",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	} {
		if !bytes.Contains(unit, []byte("\n"+line+"\n")) {
			t.Errorf("the unit lacks %q", line)
		}
	}
	// The build installs the files where the unit reads them.
	build := string(read(t, "../packaging/linux/build"))
	for _, want := range []string{
		"src: $here/hostguard.service\n    dst: /usr/lib/systemd/system/hostguard.service",
		"src: $here/hostguard.env\n    dst: /etc/default/hostguard\n    type: config|noreplace\n    packager: deb",
		"src: $here/hostguard.env\n    dst: /etc/sysconfig/hostguard\n    type: config|noreplace\n    packager: rpm",
		"dst: /usr/bin/hostguard",
	} {
		if !strings.Contains(build, want) {
			t.Errorf("packaging/linux/build does not install %q", want)
		}
	}
	if e, err := exposure(t, unitFile); err != nil || e > maxExposure {
		t.Errorf("systemd-analyze security: %.1f %v", e, err)
	} else {
		t.Logf("systemd-analyze security --offline=true: %.1f", e)
	}
}

func TestSystemd(t *testing.T) {
	dir := sandbox(t, "systemd", map[string]string{"<private-ip>": "127.0.0.1", "<tag>": "v0.1.0", "<version>": "0.1.0-1"})

	// The README's commands, with the system's directories in a
	// temporary root.
	root := t.TempDir()
	inRoot := func(p string) string { return filepath.Join(root, p) }
	put := func(from, to string, mode os.FileMode) error {
		b, err := os.ReadFile(from)
		if err == nil {
			_ = os.MkdirAll(filepath.Dir(inRoot(to)), 0o755)
			err = os.WriteFile(inRoot(to), b, mode)
		}
		return err
	}
	// What a package installs, with the env file at etc. The .rpm goes
	// to another machine (a root of its own): one machine has one of them.
	rpmRoot := t.TempDir()
	pkg := func(root, etc string) error {
		for _, f := range [][3]string{
			{hostguardBin, "/usr/bin/hostguard", "755"},
			{unitFile, "/usr/lib/systemd/system/hostguard.service", "644"},
			{envFile, etc, "644"},
		} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				return err
			}
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			_ = os.MkdirAll(filepath.Dir(filepath.Join(root, f[1])), 0o755)
			if err := os.WriteFile(filepath.Join(root, f[1]), b, os.FileMode(mode)); err != nil {
				return err
			}
		}
		return nil
	}
	// The names packaging/linux/build gives the packages of v0.1.0.
	packages := map[string]string{
		"hostguard_0.1.0-1_amd64.deb": "/etc/default/hostguard", "hostguard_0.1.0-1_arm64.deb": "/etc/default/hostguard",
		"hostguard-0.1.0-1.x86_64.rpm": "/etc/sysconfig/hostguard", "hostguard-0.1.0-1.aarch64.rpm": "/etc/sysconfig/hostguard",
	}
	install := func(argv []string) error { // apt-get install ./F, dnf install ./F
		if len(argv) != 3 || argv[1] != "install" || !strings.HasPrefix(argv[2], "./") {
			return fmt.Errorf("%q: want install ./FILE", argv)
		}
		f := strings.TrimPrefix(argv[2], "./")
		etc, ok := packages[f]
		if !ok || (argv[0] == "dnf") != strings.HasSuffix(f, ".rpm") {
			return fmt.Errorf("%s: not a package packaging/linux/build writes for %s", f, argv[0])
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%s was not downloaded first: %w", f, err)
		}
		if argv[0] == "dnf" {
			return pkg(rpmRoot, etc)
		}
		return pkg(root, etc)
	}
	// The unit systemd would use: /etc's before /usr/lib's.
	unitPath := func() string {
		if _, err := os.Stat(inRoot("/etc/systemd/system/hostguard.service")); err == nil {
			return inRoot("/etc/systemd/system/hostguard.service")
		}
		return inRoot("/usr/lib/systemd/system/hostguard.service")
	}
	var enabled []byte // the settings the service started with
	r := &readmeRun{t: t, dir: dir, handlers: map[string]func([]string) error{
		"CGO_ENABLED=0": func(argv []string) error { // the build: the tests' own hostguard
			if !strings.Contains(strings.Join(argv, " "), "go -C ../.. build -trimpath -o examples/systemd/hostguard ./cmd/hostguard") {
				return fmt.Errorf("an unexpected build: %q", argv)
			}
			b, err := os.ReadFile(hostguardBin)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "hostguard"), b, 0o755)
			}
			return err
		},
		"curl": func(argv []string) error {
			if len(argv) != 3 || argv[1] != "-fsSLO" {
				return fmt.Errorf("curl %q: want curl -fsSLO URL", argv[1:])
			}
			if f, ok := strings.CutPrefix(argv[2], "https://github.com/hostguard/hostguard/releases/download/v0.1.0/"); ok {
				if _, ok := packages[f]; !ok {
					return fmt.Errorf("%s: not a package packaging/linux/build writes for v0.1.0", f)
				}
				return os.WriteFile(filepath.Join(dir, f), []byte("stand-in"), 0o644)
			}
			if p, ok := strings.CutPrefix(argv[2], "https://raw.githubusercontent.com/hostguard/hostguard/v0.1.0/"); ok {
				b, err := os.ReadFile(filepath.Join("..", p))
				if err != nil {
					return fmt.Errorf("%s is not a file of the repository: %w", p, err)
				}
				return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
			}
			return fmt.Errorf("curl %s: neither a release asset nor a file of the repository at v0.1.0", argv[2])
		},
		"apt-get": install,
		"dnf":     install,
		"sed": func(argv []string) error { // sed -i ... FILE, for real, in the root
			if len(argv) < 4 || argv[1] != "-i" || !strings.HasPrefix(argv[len(argv)-1], "/etc/") {
				return fmt.Errorf("sed %q: want sed -i EXPRESSIONS /etc/FILE", argv[1:])
			}
			target := inRoot(argv[len(argv)-1])
			before, err := os.ReadFile(target)
			if err != nil {
				return fmt.Errorf("sed on %s before it was installed: %w", argv[len(argv)-1], err)
			}
			args := append(append([]string{}, argv[1:len(argv)-1]...), target)
			if out, err := exec.Command("sed", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("sed: %v\n%s", err, out)
			}
			if after, _ := os.ReadFile(target); bytes.Equal(before, after) {
				return fmt.Errorf("sed %q changed nothing in %s", argv[1:], argv[len(argv)-1])
			}
			return nil
		},
		"install": func(argv []string) error {
			if len(argv) != 5 || argv[1] != "-m" {
				return fmt.Errorf("install %q", argv)
			}
			mode, err := strconv.ParseUint(argv[2], 8, 32)
			if err != nil {
				return fmt.Errorf("install -m %s: %w", argv[2], err)
			}
			return put(filepath.Join(dir, argv[3]), argv[4], os.FileMode(mode))
		},
		"systemctl": func(argv []string) error {
			unit, err := os.ReadFile(unitPath())
			if err != nil {
				return fmt.Errorf("systemctl %v before the unit was installed: %w", argv[1:], err)
			}
			if _, err := os.Stat(inRoot("/usr/bin/hostguard")); err != nil {
				return fmt.Errorf("systemctl %v before hostguard was installed: %w", argv[1:], err)
			}
			switch strings.Join(argv[1:], " ") {
			case "daemon-reload":
				return nil
			case "enable --now hostguard":
				files := map[string][]byte{}
				for _, p := range []string{"/etc/default/hostguard", "/etc/sysconfig/hostguard"} {
					if b, err := os.ReadFile(inRoot(p)); err == nil {
						files[p] = b
					}
				}
				if errs := checkUnit(t, unit, files, inRoot("/usr/bin/hostguard")); len(errs) > 0 {
					return fmt.Errorf("the unit systemctl would start: %v", errs)
				}
				enabled = files["/etc/default/hostguard"]
				return nil
			}
			return fmt.Errorf("systemctl %v: the tests do not run it", argv[1:])
		},
	}}
	report(t, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md"))))))
	if enabled == nil {
		t.Fatal("the README never enables the unit with /etc/default/hostguard")
	}

	// The settings the service started with, against the EC2 metadata
	// mock: discovery finds the instance's address.
	env := map[string]string{}
	if err := parseEnvFile(enabled, env); err != nil {
		t.Fatal(err)
	}
	m := aemm.Start(t, aemm.Config{LocalIPv4: "10.0.1.23", V2Only: true})
	env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = m.URL
	if env["HOSTGUARD_PLATFORM"] != "ec2" {
		t.Errorf("after the README's commands, HOSTGUARD_PLATFORM=%q, want ec2", env["HOSTGUARD_PLATFORM"])
	}
	if out, err := discoverWith(env); err != nil || !strings.Contains(out, "10.0.1.23\n") {
		t.Errorf("discovery with the README's settings: %q %v", out, err)
	}
}

func TestSystemdBroken(t *testing.T) {
	unit := read(t, unitFile)
	hardening := regexp.MustCompile(`(?s)\nDynamicUser=yes\n.*\nSystemCallErrorNumber=EPERM\n`).Find(unit)
	if hardening == nil {
		t.Fatal("the unit's hardening block (DynamicUser= to SystemCallErrorNumber=) is gone")
	}
	for name, change := range map[string][3]string{
		"a misspelt key":               {"unit", "ProtectHome=yes", "ProtectHom=yes"},
		"a flag hostguard lacks":       {"unit", "ExecStart=/usr/bin/hostguard proxy", "ExecStart=/usr/bin/hostguard proxy --drain 30s"},
		"a variable hostguard lacks":   {"env", "HOSTGUARD_GRACE=30s", "HOSTGUARD_DRAIN=30s"},
		"a grace longer than the stop": {"env", "HOSTGUARD_GRACE=30s", "HOSTGUARD_GRACE=45s"},
		"a stop timeout shorter":       {"unit", "TimeoutStopSec=40", "TimeoutStopSec=20"},
		"an unknown section directive": {"unit", "[Install]", "[Instal]"},
		"the env file not read":        {"unit", "EnvironmentFile=-/etc/default/hostguard", "EnvironmentFile=-/etc/default/hostgard"},
		"the hardening dropped":        {"unit", string(hardening), "\n"},
		"no allow list":                {"env", "HOSTGUARD_ALLOW=lhy.kr,@self", "HOSTGUARD_ALLOW="},
	} {
		t.Run(name, func(t *testing.T) {
			u, env := unit, withAllow(t)
			target := &u
			if change[0] == "env" {
				target = &env
			}
			if !bytes.Contains(*target, []byte(change[1])) {
				t.Fatalf("the %s no longer holds %q", change[0], change[1])
			}
			*target = bytes.Replace(*target, []byte(change[1]), []byte(change[2]), 1)
			mustFail(t, name, checkUnit(t, u, map[string][]byte{"/etc/default/hostguard": env}, hostguardBin))
		})
	}
}
