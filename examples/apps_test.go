package examples

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The READMEs of the apps (and of examples/): their hostguard commands for
// real, gunicorn's with --check-config (it loads the app), the Go app run
// and asked for its health.

// gunicornCheck runs a gunicorn command line with --check-config in the
// Django example, which imports the WSGI app: a wrong module or a broken
// settings.py fails.
func gunicornCheck(argv []string) error {
	gunicorn, err := exec.LookPath("gunicorn")
	if err != nil {
		if os.Getenv("HOSTGUARD_REQUIRE_E2E") == "1" {
			return fmt.Errorf("gunicorn is required (HOSTGUARD_REQUIRE_E2E=1): %w", err)
		}
		return nil // the e2e suite needs it too; it skips there
	}
	cmd := exec.Command(gunicorn, append([]string{"--check-config"}, argv[1:]...)...)
	cmd.Dir = "django"
	cmd.Env = append(os.Environ(), "DJANGO_ALLOWED_HOSTS=lhy.kr")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gunicorn --check-config %v: %v\n%s", argv[1:], err, out)
	}
	return nil
}

func TestDjangoReadme(t *testing.T) {
	var handlers map[string]func([]string) error
	handlers = map[string]func([]string) error{
		"gunicorn": gunicornCheck,
		"DJANGO_ALLOWED_HOSTS=lhy.kr": func(argv []string) error {
			argv = argv[1:]
			if n := len(argv); n > 0 && argv[n-1] == "&" {
				argv = argv[:n-1]
			}
			return gunicornCheck(argv)
		},
		"hostguard": func(argv []string) error {
			if argv[1] == "exec" {
				// The command after -- is checked too.
				if i := slices.Index(argv, "--"); i >= 0 {
					if err := handlers["gunicorn"](argv[i+1:]); err != nil {
						return err
					}
				}
			}
			return runHostguard(t, argv[1:])
		},
	}
	r := &readmeRun{t: t, dir: "django", handlers: handlers}
	report(t, r.run(filledCommands(t, "django/README.md")))
}

func TestGoappReadme(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "goapp")
	if out, err := exec.Command("go", "build", "-o", bin, "./goapp").CombinedOutput(); err != nil {
		t.Fatalf("building goapp: %v\n%s", err, out)
	}
	r := &readmeRun{t: t, dir: "goapp", handlers: map[string]func([]string) error{
		"go": func(argv []string) error {
			// go run ./goapp ARGS: run the app with ARGS (on a free port)
			// and ask it for its health as a load balancer would.
			if len(argv) < 3 || argv[1] != "run" || argv[2] != "./goapp" {
				return fmt.Errorf("an unexpected go command: %q", argv)
			}
			args := slices.Clone(argv[3:])
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			addr := l.Addr().String()
			l.Close()
			if i := slices.Index(args, "--listen"); i >= 0 && i+1 < len(args) {
				args[i+1] = addr
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "HOSTGUARD_PLATFORM=none", "HOSTGUARD_SELF=127.0.0.1")
			if err := cmd.Start(); err != nil {
				return err
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			var out []byte
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				out, err = exec.Command(hostguardBin, "probe", "http://"+addr+"/health/", "--host", "lhy.kr").CombinedOutput()
				if err == nil {
					return nil
				}
			}
			return fmt.Errorf("goapp %v: not healthy: %v\n%s", args, err, out)
		},
	}}
	report(t, r.run(filledCommands(t, "goapp/README.md")))
}

func TestExamplesReadme(t *testing.T) {
	r := &readmeRun{t: t, dir: "."}
	report(t, r.run(filledCommands(t, "README.md")))
}
