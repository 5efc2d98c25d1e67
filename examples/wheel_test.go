package examples

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Python example installs hostguard from its wheel, so its tests build
// the wheel as a release does (packaging/python/build), from the static
// binary TestMain built, once per test process.
var wheels struct {
	once sync.Once
	dir  string
	err  error
}

// wheelVersion is the version the tests' wheels carry (PEP 440 form
// 0.0.0.dev0+examples).
const wheelVersion = "v0.0.0-examples"

// wheelDir returns a directory holding hostguard's linux/amd64 wheels. It
// skips the test without Debian's python3, unless HOSTGUARD_REQUIRE_E2E=1.
func wheelDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		if os.Getenv("HOSTGUARD_REQUIRE_E2E") == "1" {
			t.Fatal("/usr/bin/python3 is required to build the wheel (HOSTGUARD_REQUIRE_E2E=1)")
		}
		t.Skip("/usr/bin/python3 is missing: the wheel cannot be built")
	}
	wheels.once.Do(func() {
		root := filepath.Join(filepath.Dir(hostguardBin), "wheel")
		bin := filepath.Join(root, "bin", "linux-amd64")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			wheels.err = err
			return
		}
		if err := os.Symlink(hostguardBin, filepath.Join(bin, "hostguard")); err != nil {
			wheels.err = err
			return
		}
		repo, _ := filepath.Abs("..")
		wheels.dir = filepath.Join(root, "out")
		cmd := exec.Command(filepath.Join(repo, "packaging", "python", "build")) // #!/usr/bin/python3
		cmd.Env = append(os.Environ(), "VERSION="+wheelVersion, "OUT="+wheels.dir, "BINDIR="+filepath.Dir(bin),
			"SOURCE_DATE_EPOCH=315532800", "REPO="+repo, "PLATFORMS=linux-amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			wheels.err = fmt.Errorf("packaging/python/build: %v\n%s", err, out)
		}
	})
	if wheels.err != nil {
		t.Fatal(wheels.err)
	}
	return wheels.dir
}

// pythonBundleHandler runs the Python example's bundle.sh with the wheels
// the tests built, where the README's <wheel-dir> points.
func pythonBundleHandler(t *testing.T, dir string) func([]string) error {
	return func(argv []string) error {
		if len(argv) != 2 {
			return fmt.Errorf("%v: bundle.sh takes the wheel directory", argv)
		}
		link := filepath.Join(dir, argv[1])
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(wheelDir(t), link); err != nil {
				return err
			}
		}
		cmd := exec.Command("bash", argv...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
}

// ebCLI stands in for the EB CLI (awsebcli, not packaged by Debian): it
// checks each command's arguments against the options the EB CLI
// documents, emulates what eb init writes to .elasticbeanstalk/config.yml
// (its "global" section, merged into the file as the EB CLI merges), and
// for eb create and eb deploy checks that the artifact config.yml names
// is a bundle EB can deploy. It records the commands.
type ebCLI struct {
	dir   string
	calls []string
}

var ebPlatform = regexp.MustCompile(`^python-3\.(9|1[0-9])$`)

func (e *ebCLI) run(argv []string) error {
	if len(argv) < 2 {
		return errors.New("eb without a command")
	}
	sub, args := argv[1], argv[2:]
	var positional []string
	opts := map[string]string{}
	valued := map[string][]string{
		"init":   {"-p", "--platform", "--region", "-k", "--keyname", "--profile"},
		"create": {"--elb-type", "-i", "--instance_type", "--region", "-p", "--platform", "--profile", "-c", "--cname", "--envvars"},
		"deploy": {"-l", "--label", "-m", "--message", "--region", "--profile", "--timeout"},
	}
	flags := map[string][]string{"create": {"--single", "-s", "--sample"}, "deploy": {"--staged", "-nh", "--nohang"}}
	known, ok := valued[sub]
	if !ok {
		return fmt.Errorf("eb %s: the tests do not run it", sub)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case slices.Contains(known, a):
			if i+1 >= len(args) {
				return fmt.Errorf("eb %s: %s without a value", sub, a)
			}
			opts[a] = args[i+1]
			i++
		case slices.Contains(flags[sub], a):
			opts[a] = "true"
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("eb %s: %s is not an option of eb %s", sub, a, sub)
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 1 {
		return fmt.Errorf("eb %s: want one name, got %q", sub, positional)
	}
	cfgPath := filepath.Join(e.dir, ".elasticbeanstalk", "config.yml")
	var cfg map[string]map[string]any
	b, err := os.ReadFile(cfgPath)
	if err == nil {
		err = yaml.Unmarshal(b, &cfg)
	}
	if err != nil {
		return fmt.Errorf("eb %s: .elasticbeanstalk/config.yml: %v", sub, err)
	}
	switch sub {
	case "init":
		p := opts["-p"] + opts["--platform"]
		if !ebPlatform.MatchString(p) || opts["--region"] == "" {
			return fmt.Errorf("eb init: platform %q (want python-3.N) and region %q", p, opts["--region"])
		}
		if cfg == nil {
			cfg = map[string]map[string]any{}
		}
		cfg["global"] = map[string]any{"application_name": positional[0], "default_region": opts["--region"], "default_platform": p}
		out, _ := yaml.Marshal(cfg)
		if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
			return err
		}
	case "create", "deploy":
		if cfg["global"]["application_name"] == nil {
			return fmt.Errorf("eb %s before eb init", sub)
		}
		if t := opts["--elb-type"]; t != "" && !slices.Contains([]string{"classic", "application", "network"}, t) {
			return fmt.Errorf("eb create: --elb-type %q", t)
		}
		artifact, _ := cfg["deploy"]["artifact"].(string)
		if artifact == "" {
			return fmt.Errorf("eb %s: config.yml has no deploy.artifact: the EB CLI would zip this directory, which lacks the app and the wheels", sub)
		}
		if err := checkPythonBundle(filepath.Join(e.dir, artifact)); err != nil {
			return fmt.Errorf("eb %s: %w", sub, err)
		}
	}
	e.calls = append(e.calls, sub)
	return nil
}

// checkPythonBundle checks that a bundle holds what EB's Python platform
// needs: the Procfile, .ebextensions, the app, a requirements.txt that
// installs hostguard from the wheels it carries.
func checkPythonBundle(file string) error {
	z, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("the artifact: %w", err)
	}
	defer z.Close()
	var names []string
	var reqs string
	for _, f := range z.File {
		names = append(names, f.Name)
		if f.Name == "requirements.txt" {
			r, err := f.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return err
			}
			reqs = string(b)
		}
	}
	var errs []error
	for _, need := range []string{"Procfile", ".ebextensions/healthcheck.config", "manage.py", "mysite/wsgi.py", "requirements.txt"} {
		if !slices.Contains(names, need) {
			errs = append(errs, fmt.Errorf("%s lacks %s", filepath.Base(file), need))
		}
	}
	m := regexp.MustCompile(`(?m)^hostguard==(\S+)$`).FindStringSubmatch(reqs)
	if m == nil || !strings.Contains(reqs, "--find-links wheels\n") {
		errs = append(errs, fmt.Errorf("%s: requirements.txt does not install hostguard from wheels/:\n%s", filepath.Base(file), reqs))
	} else if !slices.ContainsFunc(names, func(n string) bool {
		return strings.HasPrefix(n, "wheels/hostguard-"+m[1]+"-py3-none-manylinux") && strings.HasSuffix(n, "x86_64.whl")
	}) {
		errs = append(errs, fmt.Errorf("%s: no x86_64 wheel of hostguard %s in wheels/ (%v)", filepath.Base(file), m[1], names))
	}
	return errors.Join(errs...)
}
