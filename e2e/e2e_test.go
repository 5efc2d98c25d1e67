package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/hostguard/hostguard/internal/aemm"
	"github.com/hostguard/hostguard/internal/netwait"
)

// RequireEnv, when 1, makes missing parts a failure instead of a skip. CI
// sets it after installing them.
const RequireEnv = "HOSTGUARD_REQUIRE_E2E"

var (
	binDir    string // hostguard and goapp, built once
	djangoDir string // examples/django
	python    = "/usr/bin/python3"
	gunicorn  = "/usr/bin/gunicorn"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	root, _ := filepath.Abs("..")
	djangoDir = filepath.Join(root, "examples", "django")
	for _, b := range [][]string{
		{root, "-o", filepath.Join(dir, "hostguard"), "./cmd/hostguard"},
		{filepath.Join(root, "examples"), "-o", filepath.Join(dir, "goapp"), "./goapp"},
	} {
		cmd := exec.Command("go", append([]string{"build"}, b[1:]...)...)
		cmd.Dir = b[0]
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b[3], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireParts skips (or, in CI, fails) when a component is missing.
func requireParts(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("haproxy"); err != nil {
		missing = append(missing, "haproxy (apt-get install -y haproxy)")
	}
	if _, err := os.Stat(gunicorn); err != nil {
		missing = append(missing, "gunicorn (apt-get install -y gunicorn)")
	}
	if err := exec.Command(python, "-c", "import django").Run(); err != nil {
		missing = append(missing, "Django for "+python+" (apt-get install -y python3-django)")
	}
	if _, err := aemm.Binary(); err != nil {
		missing = append(missing, "ec2-metadata-mock ("+aemm.Install+")")
	}
	if len(missing) == 0 {
		return
	}
	msg := "end-to-end parts missing: " + strings.Join(missing, "; ")
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// proc is a process the test started; it is stopped, with its children
// (gunicorn's workers), when the test ends, also on failure.
type proc struct {
	cmd *exec.Cmd
	log string
}

func start(t *testing.T, name string, env []string, dir string, argv ...string) *proc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{cmd: cmd, log: logf.Name()}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- log of %s:\n%s", name, b)
		}
	})
	return p
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	if err := netwait.Listening(addr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// instance is one load-balancer target on its own loopback address, with
// its own metadata service.
type instance struct {
	name string // i1, i2
	ip   string // 127.0.0.11, 127.0.0.12
	port int    // the app's port, the same on every instance
	imds *aemm.Mock
	tls  bool // the target speaks HTTPS (an HTTPS target group)
}

// url is the instance's base URL.
func (in instance) url() string {
	if in.tls {
		return "https://" + in.addr()
	}
	return "http://" + in.addr()
}

func (in instance) addr() string { return net.JoinHostPort(in.ip, strconv.Itoa(in.port)) }

// instances returns n targets with a port free on all their addresses.
func instances(t *testing.T, n int) []instance {
	t.Helper()
	for try := 0; try < 20; try++ {
		l, err := net.Listen("tcp", "127.0.0.11:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		free := true
		for i := 2; i <= n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", 10+i, port))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			var out []instance
			for i := 1; i <= n; i++ {
				out = append(out, instance{name: fmt.Sprintf("i%d", i), ip: fmt.Sprintf("127.0.0.%d", 10+i), port: port})
			}
			return out
		}
	}
	t.Fatal("no port free on every instance address")
	return nil
}

// withIMDS gives every instance a real metadata mock whose local-ipv4 is
// the instance's address.
func withIMDS(t *testing.T, ins []instance, v2Only bool) []instance {
	for i := range ins {
		ins[i].imds = aemm.Start(t, aemm.Config{LocalIPv4: ins[i].ip, IPv6: fmt.Sprintf("fd00:e2e::%d", i+1), V2Only: v2Only})
	}
	return ins
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lb is HAProxy configured like an ALB target group: an HTTP check every
// second on /health/ with Host: <target ip>:<port> and the ELB User-Agent,
// 200 healthy, two checks to change state.
type lb struct {
	url  string // the frontend
	sock string // the stats socket
}

var haproxyConfig = template.Must(template.New("").Parse(`global
    stats socket {{.Sock}} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{{.Port}}
    default_backend app
backend app
    balance roundrobin
{{range .Ins}}    server {{.Name}} {{.Addr}}{{if .TLS}} ssl verify none{{end}} track chk_{{.Name}}/{{.Name}}
{{end}}
{{range .Ins}}backend chk_{{.Name}}
    option httpchk
    http-check send meth GET uri /health/ ver HTTP/1.1 hdr Host {{.Addr}} hdr User-Agent ELB-HealthChecker/2.0 hdr Connection close
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    server {{.Name}} {{.Addr}} check{{if .TLS}} check-ssl verify none ssl{{end}}
{{end}}`))

func startLB(t *testing.T, ins []instance) *lb {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	type srv struct {
		Name, Addr string
		TLS        bool // HTTPS to the target, checks included, not verified (as an ALB)
	}
	var servers []srv
	for _, in := range ins {
		servers = append(servers, srv{in.name, in.addr(), in.tls})
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	if err := haproxyConfig.Execute(f, map[string]any{"Sock": sock, "Port": port, "Ins": servers}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start(t, "haproxy", nil, dir, "haproxy", "-db", "-f", cfg)
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", port))
	// The stats socket may appear after the frontend listens.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy's stats socket never appeared: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &lb{url: fmt.Sprintf("http://127.0.0.1:%d", port), sock: sock}
}

// serverState is one row of HAProxy's "show stat".
type serverState struct {
	status, checkStatus, checkCode string
}

func (l *lb) stats(t *testing.T) map[string]serverState {
	t.Helper()
	c, err := net.DialTimeout("unix", l.sock, time.Second)
	if err != nil {
		t.Fatalf("stats socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "show stat\n")
	b, _ := io.ReadAll(c)
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("stats: %v %q", err, b)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := map[string]serverState{}
	for _, row := range rows[1:] {
		if len(row) <= col["check_code"] {
			continue
		}
		out[row[col["pxname"]]+"/"+row[col["svname"]]] = serverState{row[col["status"]], row[col["check_status"]], row[col["check_code"]]}
	}
	return out
}

// waitStates waits until every instance is in the state want (UP or DOWN)
// in the load-balancing backend, after real checks that answered code.
func (l *lb) waitStates(t *testing.T, ins []instance, want, code string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := l.stats(t)
		ok := true
		for _, in := range ins {
			app, chk := st["app/"+in.name], st["chk_"+in.name+"/"+in.name]
			ok = ok && strings.HasPrefix(app.status, want) && chk.checkCode == code
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances not %s after checks answering %s: %+v", want, code, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func request(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // targets' certificates are not verified, as by load balancers
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %s: %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkFixed asserts scenario 5 for a fixed deployment: through the load
// balancer lhy.kr gets 200 and evil.example 400, and no instance accepts
// another instance's private address.
func checkFixed(t *testing.T, l *lb, ins []instance) {
	t.Helper()
	for range 4 { // round robin: every instance answers
		if code, body := request(t, l.url+"/", "lhy.kr"); code != 200 {
			t.Errorf("through the load balancer, Host lhy.kr: %d %q", code, body)
		}
		if code, _ := request(t, l.url+"/", "evil.example"); code != 400 {
			t.Errorf("through the load balancer, Host evil.example: %d, want 400", code)
		}
	}
	for i, in := range ins {
		other := ins[(i+1)%len(ins)]
		if code, _ := request(t, in.url()+"/health/", other.addr()); code != 400 {
			t.Errorf("%s accepted %s's address as Host: %d", in.name, other.name, code)
		}
		if code, _ := request(t, in.url()+"/health/", in.addr()); code != 200 {
			t.Errorf("%s rejected its own address as Host: %d", in.name, code)
		}
	}
}

func hostguardBin() string { return filepath.Join(binDir, "hostguard") }

// probe runs hostguard probe and returns its exit code and output.
func probe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, hostguardBin(), append([]string{"probe"}, args...)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func imdsEnv(in instance) []string {
	return []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + in.imds.URL, "HOSTGUARD_PLATFORM=ec2"}
}

func djangoEnv(allowed string) []string {
	return []string{"DJANGO_ALLOWED_HOSTS=" + allowed, "PYTHONDONTWRITEBYTECODE=1"}
}

func gunicornArgs(bind string) []string {
	return []string{gunicorn, "--bind", bind, "--workers", "2", "--access-logfile", "-", "mysite.wsgi"}
}

// --- the scenarios ---------------------------------------------------------

// Scenario 1 and 8: the bug, reproduced, and probe naming its cause.
func TestBugReproduced(t *testing.T) {
	requireParts(t)
	ins := instances(t, 2)
	var apps []*proc
	for _, in := range ins {
		apps = append(apps, start(t, "django-"+in.name, djangoEnv("lhy.kr"), djangoDir, gunicornArgs(in.addr())...))
	}
	l := startLB(t, ins)
	l.waitStates(t, ins, "DOWN", "400")
	for i, in := range ins {
		if want := fmt.Sprintf("Invalid HTTP_HOST header: '%s'", in.addr()); !strings.Contains(apps[i].output(), want) {
			t.Errorf("%s did not log %q", in.name, want)
		}
	}
	if code, _ := request(t, l.url+"/", "lhy.kr"); code != 503 {
		t.Errorf("with every target down the load balancer must answer 503, got %d", code)
	}
	code, out := probe(t, "http://"+ins[0].addr()+"/health/", "--host", "lhy.kr")
	if code != 1 || !strings.Contains(out, "unhealthy: 400") || !strings.Contains(out, "allow-list problem") || !strings.Contains(out, "Django") {
		t.Errorf("probe against the bug: exit %d\n%s", code, out)
	}
}

// Scenarios 2, 5, 6 and 8: hostguard exec hands Django its list with @self
// expanded, from IMDSv1+v2 and from IMDSv2-only metadata services.
func TestExecDjango(t *testing.T) {
	requireParts(t)
	for _, v2Only := range []bool{false, true} {
		t.Run(fmt.Sprintf("imdsv2-only=%v", v2Only), func(t *testing.T) {
			ins := withIMDS(t, instances(t, 2), v2Only)
			for _, in := range ins {
				argv := append([]string{hostguardBin(), "exec", "--allow", "lhy.kr,@self", "--env", "DJANGO_ALLOWED_HOSTS", "--"}, gunicornArgs(in.addr())...)
				start(t, "exec-"+in.name, append(imdsEnv(in), "PYTHONDONTWRITEBYTECODE=1"), djangoDir, argv...)
			}
			l := startLB(t, ins)
			l.waitStates(t, ins, "UP", "200")
			checkFixed(t, l, ins)
			code, out := probe(t, "http://"+ins[0].addr()+"/health/", "--host", "lhy.kr")
			if code != 0 || !strings.Contains(out, "healthy: 200") {
				t.Errorf("probe against the fixed app: exit %d\n%s", code, out)
			}
		})
	}
}

// Scenario 3 and 5: hostguard proxy in front of the unchanged Django.
func TestProxyDjango(t *testing.T) {
	requireParts(t)
	ins := withIMDS(t, instances(t, 2), false)
	for _, in := range ins {
		up := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		start(t, "django-"+in.name, djangoEnv("lhy.kr"), djangoDir, gunicornArgs(up)...)
		start(t, "proxy-"+in.name, imdsEnv(in), "", hostguardBin(), "proxy", "--listen", in.addr(), "--upstream", "http://"+up, "--allow", "lhy.kr,@self")
		waitListening(t, up)
	}
	l := startLB(t, ins)
	l.waitStates(t, ins, "UP", "200")
	checkFixed(t, l, ins)
}

// Scenario 9: an HTTPS target group. hostguard proxy serves TLS with a
// certificate it made for @self and the canonical host; HAProxy checks over
// TLS without verifying it, with Host = the target's address, as an ALB
// does: every target UP; through the load balancer a foreign Host is
// refused; probe checks over https as the load balancer does.
func TestProxyDjangoHTTPS(t *testing.T) {
	requireParts(t)
	ins := withIMDS(t, instances(t, 2), false)
	for i, in := range ins {
		ins[i].tls = true
		up := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		start(t, "django-"+in.name, djangoEnv("lhy.kr"), djangoDir, gunicornArgs(up)...)
		start(t, "proxy-"+in.name, imdsEnv(in), "", hostguardBin(), "proxy", "--listen", in.addr(), "--upstream", "http://"+up,
			"--allow", "lhy.kr,@self", "--tls-self-signed")
		waitListening(t, up)
	}
	l := startLB(t, ins)
	l.waitStates(t, ins, "UP", "200")
	checkFixed(t, l, ins)
	code, out := probe(t, ins[0].url()+"/health/", "--host", "lhy.kr")
	if code != 0 || !strings.Contains(out, "healthy: 200") {
		t.Errorf("probe over https: exit %d\n%s", code, out)
	}
	code, out = probe(t, "http://"+ins[0].addr()+"/health/", "--host", "lhy.kr")
	if code != 1 || !strings.Contains(out, "speaks TLS") {
		t.Errorf("probe over plain http to the TLS target: exit %d\n%s", code, out)
	}
}

// Scenario 4 and 5: the Go example app with the middleware and @self.
func TestGoApp(t *testing.T) {
	requireParts(t)
	ins := withIMDS(t, instances(t, 2), false)
	for _, in := range ins {
		start(t, "goapp-"+in.name, append(imdsEnv(in), "GOAPP_LISTEN="+in.addr(), "GOAPP_ALLOW=lhy.kr,@self"), "", filepath.Join(binDir, "goapp"))
	}
	l := startLB(t, ins)
	l.waitStates(t, ins, "UP", "200")
	checkFixed(t, l, ins)
}

// hangingServer accepts connections and never answers: a metadata service
// behind a hop limit of 1.
func hangingServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = bufio.NewReader(c).ReadString(0) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

func closedEndpoint(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
}

// Scenario 7: the metadata service down or hanging. exec refuses to start
// the app, within its deadline, with a clear error; proxy refuses too, or
// with --allow-missing starts with the listed names only.
func TestMetadataUnavailable(t *testing.T) {
	requireParts(t)
	for name, endpoint := range map[string]string{"down": closedEndpoint(t), "hanging": hangingServer(t)} {
		t.Run(name, func(t *testing.T) {
			env := []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + endpoint, "HOSTGUARD_PLATFORM=ec2"} // the default deadline
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)                   // a liveness bound, not a timing assertion
			defer cancel()
			cmd := exec.CommandContext(ctx, hostguardBin(), "exec", "--allow", "lhy.kr,@self", "--env", "DJANGO_ALLOWED_HOSTS", "--", "sh", "-c", "echo APP STARTED")
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 || strings.Contains(string(out), "APP STARTED") || !strings.Contains(string(out), "not starting sh") ||
				!strings.Contains(string(out), endpoint+"/latest/meta-data/") {
				t.Errorf("exec: %v\n%s", err, out)
			}
			if name == "hanging" && !strings.Contains(string(out), "hop-limit 2") {
				t.Errorf("exec against a hanging IMDS must name the hop-limit fix:\n%s", out)
			}

			port := freePort(t)
			cmd = exec.CommandContext(ctx, hostguardBin(), "proxy", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--allow", "lhy.kr,@self")
			cmd.Env = append(os.Environ(), env...)
			out, err = cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not starting") {
				t.Errorf("proxy without --allow-missing: %v\n%s", err, out)
			}

			p := start(t, "proxy-missing", env, "", hostguardBin(), "proxy", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--allow", "lhy.kr,@self", "--allow-missing")
			waitListening(t, fmt.Sprintf("127.0.0.1:%d", port))
			if code, _ := request(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "lhy.kr"); code != 200 {
				t.Errorf("--allow-missing proxy, Host lhy.kr: %d", code)
			}
			if code, _ := request(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "127.0.0.11"); code != 400 {
				t.Errorf("--allow-missing proxy must not admit addresses: %d", code)
			}
			if !strings.Contains(p.output(), "@self is empty") {
				t.Errorf("no warning in the proxy's log:\n%s", p.output())
			}
		})
	}
}
