package examples

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/apps"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	appsvalidation "k8s.io/kubernetes/pkg/apis/apps/validation"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	networkingvalidation "k8s.io/kubernetes/pkg/apis/networking/validation"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// The Kubernetes example is checked as a cluster would take it: strict
// decoding into the API types, the API server's defaulting and validation
// (k8s.io/kubernetes), and the Pod Security admission at level
// "restricted" (k8s.io/pod-security-admission), then this setup's own
// rules.

// k8sObjects are the example's manifests, decoded strictly.
type k8sObjects struct {
	ns      corev1.Namespace
	deploy  appsv1.Deployment
	svc     corev1.Service
	ingress networkingv1.Ingress
}

var k8sFiles = []string{"namespace.yaml", "deployment.yaml", "service.yaml", "ingress.yaml"}

func decodeK8s(dir string) (*k8sObjects, []error) {
	o := &k8sObjects{}
	var errs []error
	for file, obj := range map[string]any{"namespace.yaml": &o.ns, "deployment.yaml": &o.deploy, "service.yaml": &o.svc, "ingress.yaml": &o.ingress} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err == nil {
			err = yaml.UnmarshalStrict(b, obj)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
		}
	}
	return o, errs
}

// apiServerValidation defaults and validates each object as the API server
// does on create.
func apiServerValidation(o *k8sObjects) []error {
	var errs []error
	check := func(what string, in runtime.Object, internal any, validate func() field.ErrorList) {
		legacyscheme.Scheme.Default(in)
		if err := legacyscheme.Scheme.Convert(in, internal, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		for _, e := range validate() {
			errs = append(errs, fmt.Errorf("%s: the API server refuses it: %v", what, e))
		}
	}
	var ns core.Namespace
	check("namespace.yaml", o.ns.DeepCopy(), &ns, func() field.ErrorList { return corevalidation.ValidateNamespace(&ns) })
	var d apps.Deployment
	check("deployment.yaml", o.deploy.DeepCopy(), &d, func() field.ErrorList {
		return appsvalidation.ValidateDeployment(&d, corevalidation.PodValidationOptions{})
	})
	var svc core.Service
	check("service.yaml", o.svc.DeepCopy(), &svc, func() field.ErrorList { return corevalidation.ValidateServiceCreate(&svc) })
	var ing networking.Ingress
	check("ingress.yaml", o.ingress.DeepCopy(), &ing, func() field.ErrorList {
		return networkingvalidation.ValidateIngressCreate(&ing)
	})
	return nonNil(errs)
}

// podSecurity evaluates the pod template at the namespace's enforced
// level (which must be "restricted").
func podSecurity(o *k8sObjects) []error {
	var errs []error
	if lvl := o.ns.Labels[psaapi.EnforceLevelLabel]; lvl != string(psaapi.LevelRestricted) {
		errs = append(errs, fmt.Errorf("namespace.yaml: %s is %q, want restricted", psaapi.EnforceLevelLabel, lvl))
	}
	if o.deploy.Namespace != o.ns.Name {
		errs = append(errs, fmt.Errorf("the Deployment is in namespace %q, not the restricted %q", o.deploy.Namespace, o.ns.Name))
	}
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return append(errs, err)
	}
	tpl := o.deploy.Spec.Template
	for _, r := range ev.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &tpl.ObjectMeta, &tpl.Spec) {
		if !r.Allowed {
			errs = append(errs, fmt.Errorf("Pod Security restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail))
		}
	}
	return errs
}

// k8sRules are this setup's own rules.
func k8sRules(t *testing.T, o *k8sObjects) []error {
	var errs []error
	var hg *corev1.Container
	spec := o.deploy.Spec.Template.Spec
	for i := range spec.Containers {
		if spec.Containers[i].Name == "hostguard" {
			hg = &spec.Containers[i]
		}
	}
	if hg == nil {
		return []error{fmt.Errorf("no hostguard container")}
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
			errs = append(errs, fmt.Errorf("downward API: %s comes from %q, want %s", name, fieldRefs[name], path))
		}
	}
	errs = append(errs, checkCommand("kubernetes hostguard container", hg.Args, env))
	ports := map[string]string{}
	for _, p := range hg.Ports {
		ports[p.Name] = fmt.Sprint(p.ContainerPort)
	}
	argValue := func(flag string) string {
		if i := slices.Index(hg.Args, flag); i >= 0 && i+1 < len(hg.Args) {
			return hg.Args[i+1]
		}
		return ""
	}
	if argValue("--listen") != ":"+ports["http"] {
		errs = append(errs, fmt.Errorf("the http port %s is not the one hostguard listens on (%v)", ports["http"], hg.Args))
	}
	if rp := hg.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Port.String() != "http" {
		errs = append(errs, fmt.Errorf("the readiness probe must check the app through hostguard (port http)"))
	} else {
		errs = append(errs, checkHealthPath(t, "readiness probe", rp.HTTPGet.Path))
	}
	// The liveness probe must not go through to the app: a slow app would
	// get the proxy restarted.
	if lp := hg.LivenessProbe; lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/livez" || lp.HTTPGet.Port.String() != "admin" ||
		argValue("--metrics") != ":"+ports["admin"] {
		errs = append(errs, fmt.Errorf("the liveness probe must ask hostguard's own /livez on its --metrics listener (port admin), not the app"))
	}
	grace := 30
	if g := argValue("--grace"); g != "" {
		fmt.Sscanf(strings.TrimSuffix(g, "s"), "%d", &grace)
	}
	preStop := 0
	if hg.Lifecycle == nil || hg.Lifecycle.PreStop == nil || hg.Lifecycle.PreStop.Sleep == nil {
		errs = append(errs, fmt.Errorf("hostguard needs a preStop sleep, so that the endpoints and the load balancer drop the pod before it drains"))
	} else {
		preStop = int(hg.Lifecycle.PreStop.Sleep.Seconds)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || int(*g) <= preStop+grace {
		errs = append(errs, fmt.Errorf("terminationGracePeriodSeconds must exceed preStop (%d s) + --grace (%d s)", preStop, grace))
	}
	if len(o.svc.Spec.Ports) == 0 || o.svc.Spec.Ports[0].TargetPort.String() != "http" || o.svc.Spec.Selector["app"] != o.deploy.Spec.Template.Labels["app"] {
		errs = append(errs, fmt.Errorf("the Service does not reach the hostguard port: %+v", o.svc.Spec))
	}
	a := o.ingress.Annotations
	if a["alb.ingress.kubernetes.io/target-type"] != "ip" {
		errs = append(errs, fmt.Errorf("ingress.yaml: target type ip, so that the checks reach the pod (and @self) directly"))
	}
	errs = append(errs, checkHealthPath(t, "ingress health check", a["alb.ingress.kubernetes.io/healthcheck-path"]))
	for _, r := range o.ingress.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			if b := p.Backend.Service; b == nil || b.Name != o.svc.Name || b.Port.Name != o.svc.Spec.Ports[0].Name {
				errs = append(errs, fmt.Errorf("ingress.yaml: the backend is not the Service's http port: %+v", p.Backend))
			}
		}
	}
	// Discovery with the container's environment, as the kubelet fills it.
	denv := map[string]string{"POD_IP": "10.244.1.7", "POD_IPS": "10.244.1.7", "HOST_IP": "192.168.49.2"}
	for k, v := range env {
		denv[k] = v
	}
	if out, err := discoverWith(denv); err != nil {
		errs = append(errs, err)
	} else if !strings.Contains(out, "10.244.1.7\n") {
		errs = append(errs, fmt.Errorf("discovery with the container's environment found %q, not the pod IP", out))
	}
	return nonNil(errs)
}

func nonNil(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

func checkKubernetes(t *testing.T, dir string) []error {
	o, errs := decodeK8s(dir)
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, apiServerValidation(o)...)
	errs = append(errs, podSecurity(o)...)
	return append(errs, k8sRules(t, o)...)
}

func TestKubernetes(t *testing.T) {
	dir := sandbox(t, "kubernetes", awsValues)
	report(t, checkKubernetes(t, dir))
	r := &readmeRun{t: t, dir: dir, handlers: map[string]func([]string) error{
		"kubectl": func(argv []string) error { return kubectl(t, dir, argv) },
	}}
	report(t, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md"))))))
}

// kubectl is the stand-in for the cluster: apply validates what it would
// create; exec runs the hostguard command it would run in the pod.
func kubectl(t *testing.T, dir string, argv []string) error {
	args := argv[1:]
	if len(args) >= 2 && args[0] == "-n" {
		args = args[2:]
	}
	switch {
	case len(args) > 0 && args[0] == "apply":
		var files []string
		for i := 1; i < len(args); i++ {
			if args[i] == "-f" && i+1 < len(args) {
				files = append(files, args[i+1])
				i++
			}
		}
		slices.Sort(files)
		want := slices.Clone(k8sFiles)
		slices.Sort(want)
		if !slices.Equal(files, want) {
			return fmt.Errorf("kubectl apply creates %v, the example has %v", files, want)
		}
		return nil // checkKubernetes validated them
	case len(args) > 0 && args[0] == "exec":
		if i := slices.Index(args, "--"); i >= 0 && i+1 < len(args) && filepath.Base(args[i+1]) == "hostguard" {
			return runHostguard(t, args[i+2:])
		}
	}
	return fmt.Errorf("kubectl %v: the tests do not run it", args)
}

// TestKubernetesBroken breaks one field at a time: each must be caught.
func TestKubernetesBroken(t *testing.T) {
	for name, change := range map[string][2]string{
		"no seccomp profile":                {"\n        seccompProfile: {type: RuntimeDefault}", ""},
		"privilege escalation allowed":      {"allowPrivilegeEscalation: false\n          capabilities: {drop: [ALL]}\n      - name: app", "allowPrivilegeEscalation: true\n          capabilities: {drop: [ALL]}\n      - name: app"},
		"liveness through the app":          {"httpGet: {path: /livez, port: admin}", "httpGet: {path: /health/, port: http}"},
		"an invalid port name":              {"{name: admin, containerPort: 9090}", "{name: Admin_Port, containerPort: 9090}"},
		"a grace period shorter than drain": {"terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"},
		"an unknown field":                  {"runAsNonRoot: true", "runAsNonRoot: true\n        runAsNobody: true"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := sandbox(t, "kubernetes", awsValues)
			file := filepath.Join(dir, "deployment.yaml")
			b := read(t, file)
			if !bytes.Contains(b, []byte(change[0])) {
				t.Fatalf("deployment.yaml no longer holds %q", change[0])
			}
			if err := os.WriteFile(file, bytes.Replace(b, []byte(change[0]), []byte(change[1]), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			mustFail(t, name, checkKubernetes(t, dir))
		})
	}
}
