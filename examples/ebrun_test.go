package examples

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostguard/hostguard/internal/aemm"
)

// TestElasticBeanstalkPythonRuns deploys the Python bundle as Elastic
// Beanstalk would, in a network namespace the test creates: hostguard is
// installed from the bundle's wheel into a virtualenv, the instance's
// address is 10.0.1.23, the EC2 metadata mock answers for it on the
// namespace's loopback, the Procfile's web command runs as it stands (with
// the virtualenv's bin first on PATH, as EB runs it), and
// nginx proxies to it configured as EB's Python platform configures it. A
// health check with Host = the instance's address must get 200, an unknown
// Host 400. Nothing leaves the namespace.
func TestElasticBeanstalkPythonRuns(t *testing.T) {
	need := func(what string, ok bool) {
		if ok {
			return
		}
		if os.Getenv("HOSTGUARD_REQUIRE_E2E") == "1" {
			t.Fatalf("%s is required (HOSTGUARD_REQUIRE_E2E=1)", what)
		}
		t.Skipf("%s is missing", what)
	}
	need("root, for network namespaces", os.Geteuid() == 0)
	for _, bin := range []string{"ip", "nginx", "gunicorn", "curl", "python3"} {
		_, err := exec.LookPath(bin)
		if err != nil && bin == "nginx" {
			_, err = os.Stat("/usr/sbin/nginx")
		}
		need(bin, err == nil)
	}
	need("python3 with Django", exec.Command("python3", "-c", "import django").Run() == nil)
	mockBin, _, err := aemm.Command(aemm.Config{}, t.TempDir(), 1)
	need("ec2-metadata-mock ("+aemm.Install+")", err == nil)
	_ = mockBin

	ns := fmt.Sprintf("hg-eb-%d", os.Getpid())
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	sh("ip", "-n", ns, "addr", "add", "10.0.1.23/32", "dev", "lo")
	inNS := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}

	need("Debian's python3 -m venv (python3-venv)", exec.Command("/usr/bin/python3", "-c", "import ensurepip, venv, gunicorn").Run() == nil)

	// The bundle, built from the wheels, unpacked as EB unpacks it.
	work := t.TempDir()
	dir := sandbox(t, "elastic-beanstalk-python", awsValues)
	zip := filepath.Join(work, "bundle.zip")
	bundle := exec.Command("bash", "bundle.sh", wheelDir(t))
	bundle.Dir = dir
	bundle.Env = append(os.Environ(), "OUT="+zip)
	if out, err := bundle.CombinedOutput(); err != nil {
		t.Fatalf("bundle.sh: %v\n%s", err, out)
	}
	app := filepath.Join(work, "current")
	if err := unzip(zip, app); err != nil {
		t.Fatal(err)
	}

	// EB's Python platform makes a virtualenv and runs pip install -r
	// requirements.txt in the app's directory. PyPI is out of reach here, so
	// Django and gunicorn come from Debian (the system site-packages) and
	// pip runs the bundle's hostguard lines alone, as they stand (the
	// relative --find-links included), without an index.
	venv := filepath.Join(work, "venv")
	sh("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv) // Debian's, with Django and gunicorn
	var lines []string
	for _, l := range strings.Split(string(read(t, filepath.Join(app, "requirements.txt"))), "\n") {
		if strings.HasPrefix(l, "--find-links ") || strings.HasPrefix(l, "hostguard==") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("the bundle's requirements.txt lacks the hostguard lines: %q", lines)
	}
	hgReqs := filepath.Join(app, "requirements-hostguard.txt")
	if err := os.WriteFile(hgReqs, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pip := exec.Command(filepath.Join(venv, "bin", "pip"), "install", "--no-index", "--disable-pip-version-check", "-r", hgReqs)
	pip.Dir = work // not the app's directory: --find-links is read relative to the file
	if out, err := pip.CombinedOutput(); err != nil {
		t.Fatalf("pip install -r (the bundle's hostguard lines): %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "hostguard")); err != nil {
		t.Fatalf("the wheel did not put hostguard in the virtualenv's bin: %v", err)
	}
	// gunicorn as pip installs it in EB's virtualenv: a script there.
	shim := fmt.Sprintf("#!%s/bin/python\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n", venv)
	if err := os.WriteFile(filepath.Join(venv, "bin", "gunicorn"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}

	// start runs a command in the namespace in a process group of its own,
	// stopped when the test ends.
	start := func(name string, cmd *exec.Cmd) {
		t.Helper()
		log, _ := os.Create(filepath.Join(work, name+".log"))
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			log.Close()
		})
	}
	logs := func() string {
		var b strings.Builder
		for _, n := range []string{"mock", "web", "nginx"} {
			out, _ := os.ReadFile(filepath.Join(work, n+".log"))
			fmt.Fprintf(&b, "--- %s:\n%s\n", n, out)
		}
		return b.String()
	}

	// The EC2 metadata mock, answering for the instance's address.
	bin, args, err := aemm.Command(aemm.Config{LocalIPv4: "10.0.1.23", V2Only: true}, work, 1338)
	if err != nil {
		t.Fatal(err)
	}
	mock := inNS(append([]string{bin}, args...)...)
	mock.Dir, mock.Env = work, append(os.Environ(), "HOME="+work)
	start("mock", mock)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if inNS(hostguardBin, "discover", "--platform", "ec2", "--imds-endpoint", "http://127.0.0.1:1338").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metadata mock does not answer in the namespace\n%s", logs())
		}
	}

	// The Procfile's web process, as EB's process manager runs it.
	web := inNS("sh", "-c", "exec "+strings.Join(procfileWeb(t, app), " "))
	web.Dir = app
	web.Env = []string{"PATH=" + filepath.Join(venv, "bin") + ":/usr/bin:/bin", "HOME=" + work,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1338"}
	start("web", web)

	// nginx as EB's Python platform configures it in front of port 8000.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	map $http_upgrade $connection_upgrade { default "upgrade"; }
	server {
		listen 80 default_server;
		location / {
			proxy_pass http://127.0.0.1:8000;
			proxy_http_version 1.1;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Host $host;
			proxy_set_header X-Real-IP $remote_addr;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		}
	}
}
`, user, work)), 0o644); err != nil {
		t.Fatal(err)
	}
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		nginxBin = "/usr/sbin/nginx"
	}
	start("nginx", inNS(nginxBin, "-c", conf, "-p", work))

	// The load balancer's health check: Host = the instance's address.
	var out []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err = inNS(hostguardBin, "probe", "http://10.0.1.23/health/", "--as", "elb").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health check with the instance's address never passed: %v\n%s\n%s", err, out, logs())
		}
	}
	code, err := inNS("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: evil.example", "http://10.0.1.23/health/").Output()
	if err != nil || string(code) != "400" {
		t.Errorf("an unknown Host got %s (%v), want 400\n%s", code, err, logs())
	}
	code, err = inNS("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: lhy.kr", "http://10.0.1.23/").Output()
	if err != nil || string(code) != "200" {
		t.Errorf("the site's own name got %s (%v), want 200\n%s", code, err, logs())
	}
}

// unzip extracts a bundle as unzip(1) does, file modes included.
func unzip(file, dir string) error {
	z, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer z.Close()
	for _, f := range z.File {
		dst := filepath.Join(dir, f.Name)
		if !strings.HasPrefix(dst, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("%s: %q leaves the directory", file, f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err == nil {
			err = os.WriteFile(dst, b, f.Mode().Perm())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
