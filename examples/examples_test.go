package examples

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var hostguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostguard-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hostguardBin = filepath.Join(dir, "hostguard")
	build := exec.Command("go", "build", "-o", hostguardBin, "./cmd/hostguard")
	build.Dir = ".."
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
// added, in an environment holding only env, and fails unless the current
// CLI accepts it. It also checks that every HOSTGUARD_ variable in env is
// one the subcommand documents.
func checkCommand(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no hostguard command", where)
	}
	sub := args[0]
	help, _ := exec.Command(hostguardBin, sub, "-h").CombinedOutput()
	for k := range env {
		if strings.HasPrefix(k, "HOSTGUARD_") && !strings.Contains(string(help), "env "+k+")") {
			t.Errorf("%s: hostguard %s does not read %s", where, sub, k)
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
		t.Errorf("%s: hostguard %s is not valid for the current CLI: %v\n%s", where, strings.Join(full, " "), err, out)
	}
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

func assertHealthPath(t *testing.T, where, path string) {
	t.Helper()
	if !slices.Contains(healthPaths(t), path) {
		t.Errorf("%s: health check path %q is not a route of the example apps (%v)", where, path, healthPaths(t))
	}
}

func TestKubernetes(t *testing.T) {
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(read(t, "kubernetes/deployment.yaml"), &d); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	if err := yaml.UnmarshalStrict(read(t, "kubernetes/service.yaml"), &svc); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "Deployment" || svc.Kind != "Service" {
		t.Fatalf("kinds %q %q", d.Kind, svc.Kind)
	}
	var hg *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "hostguard" {
			hg = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if hg == nil {
		t.Fatal("no hostguard container")
	}
	env := map[string]string{}
	fieldRefs := map[string]string{}
	for _, e := range hg.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
			continue
		}
		env[e.Name] = e.Value
	}
	for name, path := range map[string]string{"POD_IP": "status.podIP", "POD_IPS": "status.podIPs", "HOST_IP": "status.hostIP"} {
		if fieldRefs[name] != path {
			t.Errorf("downward API: %s comes from %q, want %s", name, fieldRefs[name], path)
		}
	}
	checkCommand(t, "kubernetes hostguard container", hg.Args, env)

	port := ""
	for _, p := range hg.Ports {
		if p.Name == "http" {
			port = fmt.Sprint(p.ContainerPort)
		}
	}
	if !slices.Contains(hg.Args, ":"+port) {
		t.Errorf("the container port %s is not the one hostguard listens on (%v)", port, hg.Args)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": hg.ReadinessProbe, "liveness": hg.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		assertHealthPath(t, name+" probe", p.HTTPGet.Path)
		if p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe port %s", name, p.HTTPGet.Port.String())
		}
	}
	if svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Selector["app"] != d.Spec.Template.Labels["app"] {
		t.Errorf("the Service does not reach the hostguard port: %+v", svc.Spec)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 30 {
		t.Error("terminationGracePeriodSeconds must exceed hostguard's --grace 30s")
	}
}

func TestECSFargate(t *testing.T) {
	var td ecs.RegisterTaskDefinitionInput
	dec := json.NewDecoder(bytes.NewReader(read(t, "ecs-fargate/task-definition.json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&td); err != nil {
		t.Fatal(err)
	}
	if td.NetworkMode != ecstypes.NetworkModeAwsvpc || !slices.Contains(td.RequiresCompatibilities, ecstypes.CompatibilityFargate) {
		t.Errorf("network mode %q, compatibilities %v", td.NetworkMode, td.RequiresCompatibilities)
	}
	var tg struct {
		Port            int32
		TargetType      string
		HealthCheckPath string
	}
	if err := json.Unmarshal(read(t, "ecs-fargate/target-group.json"), &tg); err != nil {
		t.Fatal(err)
	}
	if tg.TargetType != "ip" {
		t.Errorf("an awsvpc task needs target type ip, not %q", tg.TargetType)
	}
	assertHealthPath(t, "target group", tg.HealthCheckPath)
	var found bool
	for _, c := range td.ContainerDefinitions {
		if c.Name == nil || *c.Name != "hostguard" {
			continue
		}
		found = true
		env := map[string]string{}
		for _, kv := range c.Environment {
			env[*kv.Name] = *kv.Value
		}
		checkCommand(t, "ecs hostguard container", c.Command, env)
		if len(c.PortMappings) == 0 || *c.PortMappings[0].ContainerPort != tg.Port || env["HOSTGUARD_LISTEN"] != fmt.Sprintf(":%d", tg.Port) {
			t.Errorf("target group port %d, container port %v, listen %q", tg.Port, c.PortMappings, env["HOSTGUARD_LISTEN"])
		}
		if hc := c.HealthCheck; hc == nil || len(hc.Command) < 3 || hc.Command[2] != "probe" {
			t.Error("the container health check should run hostguard probe")
		} else {
			// The probe must be a valid command line too; run its usage check.
			out, err := exec.Command(hostguardBin, append(hc.Command[2:3], "-h")...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--as") {
				t.Errorf("probe: %v %s", err, out)
			}
		}
	}
	if !found {
		t.Fatal("no hostguard container")
	}
}

// ebOptions is the part of an .ebextensions file the tests read.
type ebOptions struct {
	OptionSettings map[string]map[string]any `json:"option_settings"`
}

func ebHealthPath(t *testing.T, file string) string {
	var o ebOptions
	if err := yaml.UnmarshalStrict(read(t, file), &o); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	p, _ := o.OptionSettings["aws:elasticbeanstalk:environment:process:default"]["HealthCheckPath"].(string)
	return p
}

func TestElasticBeanstalkPython(t *testing.T) {
	var procs map[string]string
	if err := yaml.UnmarshalStrict(read(t, "elastic-beanstalk-python/Procfile"), &procs); err != nil {
		t.Fatal(err)
	}
	web := strings.Fields(procs["web"])
	if len(web) < 2 || web[0] != "hostguard" {
		t.Fatalf("Procfile web: %q", procs["web"])
	}
	checkCommand(t, "Procfile", web[1:], nil)
	if !slices.Contains(web, "DJANGO_ALLOWED_HOSTS") {
		t.Error("the Procfile must hand Django its list in DJANGO_ALLOWED_HOSTS, the variable settings.py reads")
	}
	assertHealthPath(t, "elastic-beanstalk-python", ebHealthPath(t, "elastic-beanstalk-python/.ebextensions/healthcheck.config"))
	bashSyntax(t, "elastic-beanstalk-python/.platform/hooks/prebuild/01-install-hostguard.sh")
}

func TestElasticBeanstalkDocker(t *testing.T) {
	df := parseDockerfile(t, "elastic-beanstalk-docker/Dockerfile")
	argv := append(df.entrypoint, df.cmd...)
	if len(argv) < 2 || argv[0] != "hostguard" {
		t.Fatalf("entrypoint+cmd %q", argv)
	}
	checkCommand(t, "elastic-beanstalk-docker Dockerfile", argv[1:], df.env)
	if df.env["HOSTGUARD_ENV"] != "DJANGO_ALLOWED_HOSTS" || df.user == "" || df.user == "root" {
		t.Errorf("env %v, user %q", df.env, df.user)
	}
	assertHealthPath(t, "elastic-beanstalk-docker", ebHealthPath(t, "elastic-beanstalk-docker/.ebextensions/healthcheck.config"))
	hook := string(read(t, "elastic-beanstalk-docker/.platform/hooks/prebuild/01-imds-hop-limit.sh"))
	if !strings.Contains(hook, "--http-put-response-hop-limit 2") {
		t.Error("the hook must raise the hop limit to 2")
	}
	bashSyntax(t, "elastic-beanstalk-docker/.platform/hooks/prebuild/01-imds-hop-limit.sh")
}

func TestRootDockerfile(t *testing.T) {
	df := parseDockerfile(t, "../Dockerfile")
	if df.user == "" || strings.HasPrefix(df.user, "0") || df.user == "root" {
		t.Errorf("the image must run as a non-root user, not %q", df.user)
	}
	if !strings.Contains(string(read(t, "../Dockerfile")), "CGO_ENABLED=0") {
		t.Error("the binary must be static (CGO_ENABLED=0) for a scratch image")
	}
	if !slices.Equal(df.entrypoint, []string{"/hostguard"}) {
		t.Errorf("entrypoint %q", df.entrypoint)
	}
	checkCommand(t, "root Dockerfile CMD", df.cmd, df.env)
}

func TestSystemd(t *testing.T) {
	var exec []string
	s := bufio.NewScanner(bytes.NewReader(read(t, "systemd/hostguard.service")))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "ExecStart="); ok {
			exec = strings.Fields(v)
		}
	}
	if len(exec) < 2 || filepath.Base(exec[0]) != "hostguard" {
		t.Fatalf("ExecStart %q", exec)
	}
	checkCommand(t, "systemd ExecStart", exec[1:], nil)
}

func bashSyntax(t *testing.T, file string) {
	t.Helper()
	if out, err := exec.Command("bash", "-n", file).CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", file, err, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("%s must be executable (EB runs hooks directly)", file)
	}
}

type dockerfile struct {
	entrypoint, cmd []string
	env             map[string]string
	user            string
}

// parseDockerfile reads the last stage's ENTRYPOINT, CMD (exec form), ENV
// and USER.
func parseDockerfile(t *testing.T, file string) dockerfile {
	t.Helper()
	df := dockerfile{env: map[string]string{}}
	text := strings.ReplaceAll(string(read(t, file)), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		kw, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			df = dockerfile{env: map[string]string{}}
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				t.Fatalf("%s: %s must use the exec form: %v", file, kw, err)
			}
			if kw == "CMD" {
				df.cmd = argv
			} else {
				df.entrypoint = argv
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				df.env[k] = v
			}
		case "USER":
			df.user = rest
		}
	}
	return df
}
