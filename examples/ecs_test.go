package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// awsValues fill the placeholders of the AWS examples.
var awsValues = map[string]string{
	"<account-id>":          "123456789012",
	"<region>":              "eu-west-1",
	"<vpc-id>":              "vpc-0a1b2c3d4e5f60718",
	"<cluster>":             "lhy",
	"<subnet-a>":            "subnet-0a1b2c3d4e5f60711",
	"<subnet-b>":            "subnet-0a1b2c3d4e5f60712",
	"<public-subnet-a>":     "subnet-0a1b2c3d4e5f60721",
	"<public-subnet-b>":     "subnet-0a1b2c3d4e5f60722",
	"<task-security-group>": "sg-0a1b2c3d4e5f60731",
	"<alb-security-group>":  "sg-0a1b2c3d4e5f60732",
	"<target-group-arn>":    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/lhy-web/73e2d6bc24d8a067",
	"<load-balancer-arn>":   "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/lhy-web/50dc6c495c0c9188",
	"<environment-name>":    "lhy-web-prod",
	"<application-name>":    "lhy-web",
	"<instance-id>":         "i-0123456789abcdef0",
	"<bucket>":              "lhy-web-bundles",
	"<private-ip>":          "127.0.0.1",
	"<instance-profile>":    "lhy-web-ec2",
	"<instance-role>":       "lhy-web-ec2",
	"<container-id>":        "4f5e6d7c8b9a",
	"<pod-ip>":              "10.244.1.7",
	"<wheel-dir>":           "hostguard-wheels",
}

// fargateSizes are the task CPU values Fargate accepts and the memory
// (MiB) allowed with each (ECS Developer Guide, "Task CPU and memory").
var fargateSizes = func() map[int][]int {
	steps := func(from, to, step int) []int {
		var v []int
		for m := from; m <= to; m += step {
			v = append(v, m)
		}
		return v
	}
	return map[int][]int{
		256:   {512, 1024, 2048},
		512:   steps(1024, 4096, 1024),
		1024:  steps(2048, 8192, 1024),
		2048:  steps(4096, 16384, 1024),
		4096:  steps(8192, 30720, 1024),
		8192:  steps(16384, 61440, 4096),
		16384: steps(32768, 122880, 8192),
	}
}()

// ecsTaskPayload is task metadata v4's answer for a Fargate task in the
// form AWS documents it ("Task metadata v4 examples").
const ecsTaskPayload = `{"Cluster":"arn:aws:ecs:eu-west-1:123456789012:cluster/lhy","TaskARN":"arn:aws:ecs:eu-west-1:123456789012:task/lhy/e9028f8d5d8e4f258373e7b93ce9a3c3",` +
	`"Family":"lhy-web","Revision":"1","DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Limits":{"CPU":0.5,"Memory":1024},` +
	`"PullStartedAt":"2026-12-01T08:00:00.132Z","PullStoppedAt":"2026-12-01T08:00:08.418Z","AvailabilityZone":"eu-west-1a","LaunchType":"FARGATE",` +
	`"Containers":[{"DockerId":"e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603","Name":"hostguard","DockerName":"hostguard","Image":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/hostguard:1.0.0",` +
	`"Labels":{"com.amazonaws.ecs.container-name":"hostguard"},"DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Limits":{"CPU":2},"Type":"NORMAL",` +
	`"Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.2.106"],"AttachmentIndex":0,"MACAddress":"0e:9e:32:c7:48:85","IPv4SubnetCIDRBlock":"10.0.2.0/24",` +
	`"PrivateDNSName":"ip-10-0-2-106.eu-west-1.compute.internal","SubnetGatewayIpv4Address":"10.0.2.1/24"}]},` +
	`{"DockerId":"e9028f8d5d8e4f258373e7b93ce9a3c3-1211830346","Name":"app","DockerName":"app","Image":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/lhy-web:1.0.0",` +
	`"DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Type":"NORMAL","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.2.106"]}]}],` +
	`"ClockDrift":{"ClockErrorBound":0.5,"ReferenceTimestamp":"2026-12-01T08:00:00Z","ClockSynchronizationStatus":"SYNCHRONIZED"}}`

// checkECS checks the ECS example in a sandbox copy (mutate, when set,
// breaks a file first): the rules of Fargate and of this setup on the
// files, hostguard's discovery with the container's environment, and, when
// cli is set, the README's commands against the AWS stand-in, which must
// send exactly these files.
func checkECS(t *testing.T, mutate func(dir string), cli bool) []error {
	t.Helper()
	dir := sandbox(t, "ecs-fargate", awsValues)
	if mutate != nil {
		mutate(dir)
	}
	var errs []error
	var built []string
	decode := func(name string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(read(t, filepath.Join(dir, name)), &m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return m
	}
	reg, svc, tg := decode("task-definition.json"), decode("service.json"), decode("target-group.json")
	if cli {
		stub := newAWSStub(t)
		r := &readmeRun{t: t, dir: dir, aws: stub, cli: awsCLI(t)}
		errs = append(errs, r.run(readmeCommands(string(read(t, filepath.Join(dir, "README.md")))))...)
		built = r.built
		for _, c := range []struct {
			service, op string
			file        map[string]any
		}{{"ecs", "RegisterTaskDefinition", reg}, {"ecs", "CreateService", svc}} {
			call := stub.call(c.service, c.op)
			if call == nil || fmt.Sprint(call.JSON) != fmt.Sprint(c.file) {
				errs = append(errs, fmt.Errorf("the README's %s did not send the example's file: %v", c.op, call))
			}
		}
		if call := stub.call("elasticloadbalancing", "CreateTargetGroup"); call == nil || call.Form.Get("VpcId") != fmt.Sprint(tg["VpcId"]) {
			errs = append(errs, fmt.Errorf("the README's create-target-group did not send target-group.json: %v", call))
		}
		if pol := stub.call("iam", "PutRolePolicy"); pol == nil || pol.Form.Get("PolicyDocument") == "" {
			errs = append(errs, fmt.Errorf("the README grants the execution role no policy of its own"))
		}
	}
	if reg == nil || svc == nil || tg == nil {
		return errs
	}
	var td ecs.RegisterTaskDefinitionInput
	dec := json.NewDecoder(bytes.NewReader(read(t, filepath.Join(dir, "task-definition.json"))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&td); err != nil {
		errs = append(errs, fmt.Errorf("task-definition.json is not a RegisterTaskDefinition input: %w", err))
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }

	// Fargate's rules that a client cannot see.
	cpu, _ := strconv.Atoi(str(reg, "cpu"))
	mem, _ := strconv.Atoi(str(reg, "memory"))
	if !slices.Contains(fargateSizes[cpu], mem) {
		errs = append(errs, fmt.Errorf("cpu %d with memory %d is not a Fargate size", cpu, mem))
	}
	awslogs, createGroup := false, false
	var hg map[string]any
	for _, c := range anySlice(reg["containerDefinitions"]) {
		c := c.(map[string]any)
		if str(c, "name") == "hostguard" {
			hg = c
		}
		if lc, ok := c["logConfiguration"].(map[string]any); ok && str(lc, "logDriver") == "awslogs" {
			awslogs = true
			opts, _ := lc["options"].(map[string]any)
			createGroup = createGroup || str(opts, "awslogs-create-group") == "true"
		}
	}
	if awslogs && str(reg, "executionRoleArn") == "" {
		errs = append(errs, fmt.Errorf("Fargate requires task definition to have execution role ARN to support log driver awslogs"))
	}
	readme := string(read(t, filepath.Join(dir, "README.md")))
	switch {
	case createGroup && !strings.Contains(string(read(t, filepath.Join(dir, "execution-role-logs.json"))), "logs:CreateLogGroup"):
		errs = append(errs, fmt.Errorf("awslogs-create-group needs logs:CreateLogGroup on the execution role"))
	case awslogs && !createGroup && !strings.Contains(readme, "aws logs create-log-group"):
		errs = append(errs, fmt.Errorf("the awslogs log group is created neither by awslogs-create-group nor by the README"))
	}

	// The target group: ip targets need the VPC.
	if str(tg, "TargetType") == "ip" && str(tg, "VpcId") == "" {
		errs = append(errs, fmt.Errorf("create-target-group: a target group of type ip needs VpcId"))
	}
	if err := checkHealthPath(t, "target group", str(tg, "HealthCheckPath")); err != nil {
		errs = append(errs, err)
	}

	// The hostguard container, as the service's load balancer sees it.
	if hg == nil {
		return append(errs, fmt.Errorf("no hostguard container"))
	}
	env := map[string]string{}
	for _, kv := range anySlice(hg["environment"]) {
		kv := kv.(map[string]any)
		env[str(kv, "name")] = str(kv, "value")
	}
	var command []string
	for _, a := range anySlice(hg["command"]) {
		command = append(command, fmt.Sprint(a))
	}
	if err := checkCommand("ecs hostguard container", command, env); err != nil {
		errs = append(errs, err)
	}
	port := 0
	if pm := anySlice(hg["portMappings"]); len(pm) > 0 {
		p, _ := pm[0].(map[string]any)["containerPort"].(float64)
		port = int(p)
	}
	if tgPort, _ := tg["Port"].(float64); int(tgPort) != port || env["HOSTGUARD_LISTEN"] != fmt.Sprintf(":%d", port) {
		errs = append(errs, fmt.Errorf("target group port %v, container port %d, HOSTGUARD_LISTEN %q", tg["Port"], port, env["HOSTGUARD_LISTEN"]))
	}
	lbs := anySlice(svc["loadBalancers"])
	if len(lbs) != 1 || str(lbs[0].(map[string]any), "containerName") != "hostguard" || lbs[0].(map[string]any)["containerPort"] != float64(port) {
		errs = append(errs, fmt.Errorf("service.json: the load balancer must point at the hostguard container's port %d: %v", port, lbs))
	}
	if nc, _ := svc["networkConfiguration"].(map[string]any); nc == nil {
		errs = append(errs, fmt.Errorf("service.json: an awsvpc task needs networkConfiguration (subnets, security groups)"))
	} else if vpc, _ := nc["awsvpcConfiguration"].(map[string]any); vpc == nil || vpc["subnets"] == nil || vpc["securityGroups"] == nil {
		errs = append(errs, fmt.Errorf("service.json: awsvpcConfiguration needs subnets and security groups: %v", nc))
	}
	if str(svc, "taskDefinition") != str(reg, "family") {
		errs = append(errs, fmt.Errorf("service.json runs task definition %q, the README registers %q", str(svc, "taskDefinition"), str(reg, "family")))
	}
	// Stop order: ECS stops containers in reverse dependency order; the
	// proxy must stop (and drain) before the app.
	dependsOnApp := false
	for _, d := range anySlice(hg["dependsOn"]) {
		dependsOnApp = dependsOnApp || str(d.(map[string]any), "containerName") == "app"
	}
	if !dependsOnApp {
		errs = append(errs, fmt.Errorf("the hostguard container must depend on the app, so that ECS stops it first"))
	}
	if stop, _ := hg["stopTimeout"].(float64); stop <= 30 {
		errs = append(errs, fmt.Errorf("stopTimeout %v must exceed hostguard's 30 s grace period", stop))
	}
	if img := str(hg, "image"); cli && !slices.Contains(built, img) {
		errs = append(errs, fmt.Errorf("the hostguard image %s is not one the README builds (%v)", img, built))
	}
	// hostguard's discovery with the container's environment, against a
	// task metadata stand-in with AWS's documented payload.
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603/task" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, ecsTaskPayload)
	}))
	defer meta.Close()
	denv := map[string]string{"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603"}
	for k, v := range env {
		denv[k] = v
	}
	if out, err := discoverWith(denv); err != nil {
		errs = append(errs, err)
	} else if !strings.Contains(out, "10.0.2.106\n") {
		errs = append(errs, fmt.Errorf("discovery with the container's environment found %q, not the task's 10.0.2.106", out))
	}
	return errs
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

func TestECSFargate(t *testing.T) {
	report(t, checkECS(t, nil, true))
}

// editJSON changes one file of a sandbox through its decoded form.
func editJSON(t *testing.T, file string, change func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(read(t, file), &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestECSFargateBroken breaks one field at a time: each must be caught.
func TestECSFargateBroken(t *testing.T) {
	hostguard := func(m map[string]any) map[string]any { return m["containerDefinitions"].([]any)[0].(map[string]any) }
	for name, mutate := range map[string]func(dir string){
		"no executionRoleArn": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) { delete(m, "executionRoleArn") })
		},
		"no VpcId": func(dir string) {
			editJSON(t, filepath.Join(dir, "target-group.json"), func(m map[string]any) { delete(m, "VpcId") })
		},
		"a misspelt field": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) { m["requiresCompatibility"] = m["requiresCompatibilities"] })
		},
		"not a Fargate size": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) { m["memory"] = "512" })
		},
		"no dependsOn": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) { delete(hostguard(m), "dependsOn") })
		},
		"the service points at the app": func(dir string) {
			editJSON(t, filepath.Join(dir, "service.json"), func(m map[string]any) {
				m["loadBalancers"].([]any)[0].(map[string]any)["containerName"] = "app"
			})
		},
		"no networkConfiguration": func(dir string) {
			editJSON(t, filepath.Join(dir, "service.json"), func(m map[string]any) { delete(m, "networkConfiguration") })
		},
		"no awslogs-create-group": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) {
				for _, c := range m["containerDefinitions"].([]any) {
					delete(c.(map[string]any)["logConfiguration"].(map[string]any)["options"].(map[string]any), "awslogs-create-group")
				}
			})
		},
		"a platform hostguard does not know": func(dir string) {
			editJSON(t, filepath.Join(dir, "task-definition.json"), func(m map[string]any) {
				env := hostguard(m)["environment"].([]any)
				for _, kv := range env {
					if kv.(map[string]any)["name"] == "HOSTGUARD_PLATFORM" {
						kv.(map[string]any)["value"] = "fargate"
					}
				}
			})
		},
	} {
		// The AWS CLI runs only for what only it catches.
		t.Run(name, func(t *testing.T) { mustFail(t, name, checkECS(t, mutate, name == "a misspelt field")) })
	}
}
