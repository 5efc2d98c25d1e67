package examples

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hostguard/hostguard/internal/aemm"

	"sigs.k8s.io/yaml"
)

// ebOptionNames are the option_settings the Elastic Beanstalk documentation
// lists ("General options for all environments", "Platform specific
// options") for the namespaces these examples and their users touch. An
// option outside it is a typo EB would reject ("Invalid option
// specification").
var ebOptionNames = map[string][]string{
	"aws:elasticbeanstalk:environment:process:default": {"DeregistrationDelay", "HealthCheckInterval", "HealthCheckPath",
		"HealthCheckTimeout", "HealthyThresholdCount", "MatcherHTTPCode", "Port", "Protocol", "StickinessEnabled",
		"StickinessLBCookieDuration", "StickinessType", "UnhealthyThresholdCount"},
	"aws:autoscaling:launchconfiguration": {"BlockDeviceMappings", "DisableDefaultEC2SecurityGroup", "DisableIMDSv1", "EC2KeyName",
		"IamInstanceProfile", "ImageId", "InstanceType", "LaunchTemplateTagPropagationEnabled", "MonitoringInterval",
		"RootVolumeIOPS", "RootVolumeSize", "RootVolumeThroughput", "RootVolumeType", "SecurityGroups", "SSHSourceRestriction"},
	"aws:elasticbeanstalk:environment":            {"EnvironmentType", "ExternalLoadBalancer", "LoadBalancerIsShared", "LoadBalancerType", "ServiceRole"},
	"aws:elasticbeanstalk:environment:proxy":      {"ProxyServer"},
	"aws:elasticbeanstalk:healthreporting:system": {"ConfigDocument", "EnhancedHealthAuthEnabled", "HealthCheckSuccessThreshold", "SystemType"},
	"aws:elasticbeanstalk:container:python":       {"NumProcesses", "NumThreads", "WSGIPath"},
}

// checkEBOptions checks the option names of every .ebextensions file.
func checkEBOptions(dir string) []error {
	var errs []error
	files, _ := filepath.Glob(filepath.Join(dir, ".ebextensions", "*.config"))
	if len(files) == 0 {
		return []error{fmt.Errorf("%s: no .ebextensions/*.config", dir)}
	}
	for _, f := range files {
		var doc struct {
			OptionSettings map[string]map[string]any `json:"option_settings"`
		}
		b, _ := os.ReadFile(f)
		if err := yaml.UnmarshalStrict(b, &doc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		for ns, opts := range doc.OptionSettings {
			known, ok := ebOptionNames[ns]
			if !ok && ns != "aws:elasticbeanstalk:application:environment" { // environment properties: any name
				errs = append(errs, fmt.Errorf("%s: namespace %q is not one EB documents", f, ns))
				continue
			}
			for name := range opts {
				if ok && !slices.Contains(known, name) {
					errs = append(errs, fmt.Errorf("%s: %s has no option %q (EB: Invalid option specification)", f, ns, name))
				}
			}
		}
	}
	return errs
}

func ebHealthPath(t *testing.T, dir string) string {
	var doc struct {
		OptionSettings map[string]map[string]any `json:"option_settings"`
	}
	_ = yaml.Unmarshal(read(t, filepath.Join(dir, ".ebextensions", "healthcheck.config")), &doc)
	p, _ := doc.OptionSettings["aws:elasticbeanstalk:environment:process:default"]["HealthCheckPath"].(string)
	return p
}

// bundleHandler runs a bundle.sh of a README in the sandbox, with the
// hostguard the tests built.
func bundleHandler(dir string) func([]string) error {
	return func(argv []string) error {
		cmd := exec.Command("bash", append([]string{argv[0]}, argv[1:]...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOSTGUARD_BIN="+hostguardBin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
}

// procfileWeb returns the Procfile's web command.
func procfileWeb(t *testing.T, dir string) []string {
	var procs map[string]string
	if err := yaml.UnmarshalStrict(read(t, filepath.Join(dir, "Procfile")), &procs); err != nil {
		t.Fatal(err)
	}
	return strings.Fields(procs["web"])
}

func checkEBPython(t *testing.T, dir string) []error {
	errs := checkEBOptions(dir)
	web := procfileWeb(t, dir)
	if len(web) < 2 || web[0] != "hostguard" {
		return append(errs, fmt.Errorf("Procfile web: %q: it must run hostguard from the virtualenv, where the wheel installs it", web))
	}
	errs = append(errs, checkCommand("Procfile", web[1:], nil))
	if !slices.Contains(web, "DJANGO_ALLOWED_HOSTS") || !strings.Contains(string(read(t, "django/mysite/settings.py")), `"DJANGO_ALLOWED_HOSTS"`) {
		errs = append(errs, fmt.Errorf("the Procfile must hand Django its list in DJANGO_ALLOWED_HOSTS, the variable settings.py reads"))
	}
	errs = append(errs, checkHealthPath(t, "elastic-beanstalk-python", ebHealthPath(t, dir)))
	reqs := string(read(t, filepath.Join(dir, "requirements.txt")))
	if !regexp.MustCompile(`(?m)^hostguard==\d+\.\d+\.\d+$`).MatchString(reqs) || !regexp.MustCompile(`(?m)^--find-links wheels$`).MatchString(reqs) {
		errs = append(errs, fmt.Errorf("requirements.txt must pin hostguard (hostguard==X.Y.Z) and find it in the bundle's wheels/ (--find-links wheels):\n%s", reqs))
	}
	var cfg struct {
		Deploy struct {
			Artifact string `json:"artifact"`
		} `json:"deploy"`
	}
	if err := yaml.UnmarshalStrict(read(t, filepath.Join(dir, ".elasticbeanstalk", "config.yml")), &cfg); err != nil {
		errs = append(errs, fmt.Errorf(".elasticbeanstalk/config.yml: %w", err))
	} else if bundle := string(read(t, filepath.Join(dir, "bundle.sh"))); cfg.Deploy.Artifact == "" ||
		!strings.Contains(bundle, "out=${OUT:-"+cfg.Deploy.Artifact+"}") {
		errs = append(errs, fmt.Errorf(".elasticbeanstalk/config.yml: deploy.artifact %q is not the bundle bundle.sh writes", cfg.Deploy.Artifact))
	}
	return nonNil(errs)
}

func TestElasticBeanstalkPython(t *testing.T) {
	dir := sandbox(t, "elastic-beanstalk-python", awsValues)
	report(t, checkEBPython(t, dir))
	eb := &ebCLI{dir: dir}
	r := &readmeRun{t: t, dir: dir, aws: newAWSStub(t), cli: awsCLI(t), handlers: map[string]func([]string) error{
		"./bundle.sh": pythonBundleHandler(t, dir),
		"eb":          eb.run,
		"/var/app/venv/staging-LQM1lest/bin/hostguard": func(argv []string) error { return runHostguard(t, argv[1:]) },
	}}
	report(t, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md"))))))
	if c := r.aws.call("elasticbeanstalk", "CreateApplicationVersion"); c == nil || c.Form.Get("SourceBundle.S3Key") == "" {
		t.Errorf("the README does not create an application version from the bundle: %v", c)
	}
	if r.aws.call("s3", "PUT") == nil {
		t.Error("the README does not upload the bundle")
	}
	if !slices.Equal(eb.calls, []string{"init", "create", "deploy"}) {
		t.Errorf("the README's EB CLI commands ran %v, want init, create, deploy", eb.calls)
	}
}

func TestElasticBeanstalkBroken(t *testing.T) {
	for name, tc := range map[string]struct {
		example, file, from, to string
	}{
		"python: a misspelt option":         {"elastic-beanstalk-python", ".ebextensions/healthcheck.config", "HealthCheckPath", "HealthCheckPth"},
		"python: another variable":          {"elastic-beanstalk-python", "Procfile", "DJANGO_ALLOWED_HOSTS", "ALLOWED_HOSTS"},
		"python: hostguard from the bundle": {"elastic-beanstalk-python", "Procfile", "web: hostguard", "web: bin/hostguard"},
		"python: hostguard not required":    {"elastic-beanstalk-python", "requirements.txt", "\nhostguard==", "\n# hostguard=="},
		"python: no wheels":                 {"elastic-beanstalk-python", "requirements.txt", "--find-links wheels", "--find-links dist"},
		"python: the EB CLI zips the dir":   {"elastic-beanstalk-python", ".elasticbeanstalk/config.yml", "artifact: lhy-web-python.zip", "artifact: app.zip"},
		"docker: an unknown namespace": {"elastic-beanstalk-docker", ".ebextensions/healthcheck.config",
			"aws:autoscaling:launchconfiguration", "aws:autoscaling:launchconfig"},
		"docker: no hop-limit permission": {"elastic-beanstalk-docker", "instance-profile-policy.json", "ec2:ModifyInstanceMetadataOptions", "ec2:DescribeInstances"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := sandbox(t, tc.example, awsValues)
			file := filepath.Join(dir, tc.file)
			b := read(t, file)
			if !bytes.Contains(b, []byte(tc.from)) {
				t.Fatalf("%s no longer holds %q", tc.file, tc.from)
			}
			if err := os.WriteFile(file, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.example == "elastic-beanstalk-python" {
				mustFail(t, name, checkEBPython(t, dir))
			} else {
				mustFail(t, name, checkEBDocker(t, dir))
			}
		})
	}
}

func checkEBDocker(t *testing.T, dir string) []error {
	errs := checkEBOptions(dir)
	df, err := parseDockerfileFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		return append(errs, err)
	}
	argv := append(slices.Clone(df.entrypoint), df.cmd...)
	if len(argv) < 2 || argv[0] != "hostguard" {
		return append(errs, fmt.Errorf("entrypoint+cmd %q", argv))
	}
	errs = append(errs, checkCommand("elastic-beanstalk-docker Dockerfile", argv[1:], df.env))
	if df.env["HOSTGUARD_ENV"] != "DJANGO_ALLOWED_HOSTS" || !isNumericUser(df.user) || strings.HasPrefix(df.user, "0") {
		errs = append(errs, fmt.Errorf("env %v, user %q", df.env, df.user))
	}
	if !strings.Contains(df.text, "COPY --from=hostguard /hostguard") || strings.Contains(df.text, "@latest") {
		errs = append(errs, fmt.Errorf("the Dockerfile must copy hostguard from its pinned image, not install @latest"))
	}
	for _, src := range df.copies {
		if _, err := os.Stat(filepath.Join(dir, "..", "django", src)); err != nil {
			errs = append(errs, fmt.Errorf("the Dockerfile copies %s, which bundle.sh does not put in the bundle", src))
		}
	}
	errs = append(errs, checkHealthPath(t, "elastic-beanstalk-docker", ebHealthPath(t, dir)))
	policy := string(read(t, filepath.Join(dir, "instance-profile-policy.json")))
	for _, action := range []string{"ec2:ModifyInstanceMetadataOptions", "ecr:GetAuthorizationToken", "ecr:BatchGetImage"} {
		if !strings.Contains(policy, `"`+action+`"`) {
			errs = append(errs, fmt.Errorf("instance-profile-policy.json lacks %s, which the hooks and the image pull need", action))
		}
	}
	return nonNil(errs)
}

func TestElasticBeanstalkDocker(t *testing.T) {
	dir := sandbox(t, "elastic-beanstalk-docker", awsValues)
	report(t, checkEBDocker(t, dir))
	stub := newAWSStub(t)
	r := &readmeRun{t: t, dir: dir, aws: stub, cli: awsCLI(t), handlers: map[string]func([]string) error{
		"./bundle.sh": bundleHandler(dir),
	}}
	report(t, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md"))))))
	if c := stub.call("iam", "PutRolePolicy"); c == nil || !strings.Contains(c.Form.Get("PolicyDocument"), "ModifyInstanceMetadataOptions") {
		t.Errorf("the README does not give the instance role the policy: %v", c)
	}
	report(t, runEBHooks(t, dir, stub))

	// hostguard's discovery with the image's environment, against the EC2
	// metadata mock (IMDSv2 only, as the hook leaves the instance).
	df, _ := parseDockerfileFile(filepath.Join(dir, "Dockerfile"))
	m := aemm.Start(t, aemm.Config{LocalIPv4: "10.0.1.23", V2Only: true})
	env := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": m.URL}
	for k, v := range df.env {
		env[k] = v
	}
	if out, err := discoverWith(env); err != nil || !strings.Contains(out, "10.0.1.23\n") {
		t.Errorf("discovery with the image's environment: %q %v", out, err)
	}
}

// runEBHooks runs the Docker example's prebuild hooks as EB would, in a
// sandbox: aws goes to the stand-in, docker is a recorder, the metadata
// service a loopback fake.
func runEBHooks(t *testing.T, dir string, stub *awsStub) []error {
	bin := t.TempDir()
	dockerLog := filepath.Join(bin, "docker.log")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("aws", fmt.Sprintf("#!/bin/sh\nexec %s \"$@\" --endpoint-url %s\n", awsCLI(t), stub.srv.URL))
	write("docker", fmt.Sprintf("#!/bin/sh\necho \"$@\" >>%s\ncat >>%s\n", dockerLog, dockerLog))
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			io.WriteString(w, "stub-token")
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "stub-token":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/instance-id":
			io.WriteString(w, "i-0123456789abcdef0")
		case r.URL.Path == "/latest/meta-data/placement/region":
			io.WriteString(w, "eu-west-1")
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	var errs []error
	hooks, _ := filepath.Glob(filepath.Join(dir, ".platform", "hooks", "prebuild", "*.sh"))
	for _, hook := range hooks {
		cmd := exec.Command(hook)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + bin, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL,
			"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("hook %s: %v\n%s", filepath.Base(hook), err, out))
		}
	}
	if c := stub.call("ec2", "ModifyInstanceMetadataOptions"); c == nil || c.Form.Get("HttpPutResponseHopLimit") != "2" || c.Form.Get("InstanceId") != "i-0123456789abcdef0" {
		errs = append(errs, fmt.Errorf("the hop-limit hook did not raise this instance's hop limit to 2: %v", c))
	}
	if log, _ := os.ReadFile(dockerLog); !bytes.Contains(log, []byte("login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com")) ||
		!bytes.Contains(log, []byte("stub-password")) {
		errs = append(errs, fmt.Errorf("the ECR hook did not log Docker in with the ECR password: %s", log))
	}
	return errs
}
