package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostguard/hostguard/internal/aemm"
)

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

// checkUnit verifies a unit with systemd-analyze (any warning counts: an
// unknown key is only a warning to systemd), with its ExecStart binary at
// bin, and checks hostguard's command line and the stop timing.
func checkUnit(t *testing.T, unit []byte, bin string) []error {
	var errs []error
	var execStart []string
	stop := 0 * time.Second
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
	}
	if len(execStart) < 2 || filepath.Base(execStart[0]) != "hostguard" {
		return []error{fmt.Errorf("ExecStart %q", execStart)}
	}
	errs = append(errs, checkCommand("systemd ExecStart", execStart[1:], nil))
	if stop <= 30*time.Second {
		errs = append(errs, fmt.Errorf("TimeoutStopSec %v must exceed hostguard's 30 s grace period", stop))
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
	return nonNil(errs)
}

func TestSystemd(t *testing.T) {
	dir := sandbox(t, "systemd", map[string]string{"<private-ip>": "127.0.0.1"})
	report(t, checkUnit(t, read(t, filepath.Join(dir, "hostguard.service")), hostguardBin))

	// The unit's --platform ec2, against the EC2 metadata mock.
	m := aemm.Start(t, aemm.Config{LocalIPv4: "10.0.1.23", V2Only: true})
	if out, err := discoverWith(map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": m.URL, "HOSTGUARD_PLATFORM": "ec2"}); err != nil || !strings.Contains(out, "10.0.1.23\n") {
		t.Errorf("discovery on the unit's platform: %q %v", out, err)
	}

	// The README's commands, with the system's directories in a
	// temporary root.
	root := t.TempDir()
	inRoot := func(p string) string { return filepath.Join(root, p) }
	r := &readmeRun{t: t, dir: dir, handlers: map[string]func([]string) error{
		"CGO_ENABLED=0": func(argv []string) error { // the build: the tests' own hostguard
			if !strings.Contains(strings.Join(argv, " "), "go -C ../.. build -o examples/systemd/hostguard ./cmd/hostguard") {
				return fmt.Errorf("an unexpected build: %q", argv)
			}
			b, err := os.ReadFile(hostguardBin)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "hostguard"), b, 0o755)
			}
			return err
		},
		"install": func(argv []string) error {
			if len(argv) != 5 || argv[1] != "-m" {
				return fmt.Errorf("install %q", argv)
			}
			b, err := os.ReadFile(filepath.Join(dir, argv[3]))
			if err == nil {
				_ = os.MkdirAll(filepath.Dir(inRoot(argv[4])), 0o755)
				err = os.WriteFile(inRoot(argv[4]), b, 0o755)
			}
			return err
		},
		"cp": func(argv []string) error {
			b, err := os.ReadFile(filepath.Join(dir, argv[1]))
			if err == nil {
				_ = os.MkdirAll(filepath.Dir(inRoot(argv[2])), 0o755)
				err = os.WriteFile(inRoot(argv[2]), b, 0o644)
			}
			return err
		},
		"systemctl": func(argv []string) error {
			unit, err := os.ReadFile(inRoot("/etc/systemd/system/hostguard.service"))
			if err != nil {
				return fmt.Errorf("systemctl %v before the unit was installed: %w", argv[1:], err)
			}
			if _, err := os.Stat(inRoot("/usr/local/bin/hostguard")); err != nil {
				return fmt.Errorf("systemctl %v before hostguard was installed: %w", argv[1:], err)
			}
			if len(argv) > 1 && argv[1] == "enable" {
				if errs := checkUnit(t, unit, inRoot("/usr/local/bin/hostguard")); len(errs) > 0 {
					return fmt.Errorf("the unit systemctl would start: %v", errs)
				}
			}
			return nil
		},
	}}
	report(t, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md"))))))
}

func TestSystemdBroken(t *testing.T) {
	unit := read(t, "systemd/hostguard.service")
	for name, change := range map[string][2]string{
		"a misspelt key":               {"ProtectHome=yes", "ProtectHom=yes"},
		"a flag hostguard lacks":       {"--grace 30s", "--grace 30s --drain 30s"},
		"a stop timeout shorter":       {"TimeoutStopSec=40", "TimeoutStopSec=20"},
		"an unknown section directive": {"[Install]", "[Instal]"},
	} {
		t.Run(name, func(t *testing.T) {
			if !bytes.Contains(unit, []byte(change[0])) {
				t.Fatalf("the unit no longer holds %q", change[0])
			}
			mustFail(t, name, checkUnit(t, bytes.Replace(unit, []byte(change[0]), []byte(change[1]), 1), hostguardBin))
		})
	}
}
