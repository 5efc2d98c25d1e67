package discover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
)

// sysTree writes a fake /sys with the given files (relative paths).
func sysTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, v := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const dmi = "devices/virtual/dmi/id/"

var trees = map[string]map[string]string{
	"nitro":     {dmi + "sys_vendor": "Amazon EC2", dmi + "bios_vendor": "Amazon EC2", dmi + "product_name": "m6i.large", dmi + "board_asset_tag": "i-0123456789abcdef0"},
	"xen-bios":  {dmi + "sys_vendor": "Xen", dmi + "bios_version": "4.11.amazon", dmi + "product_name": "HVM domU"},
	"xen-uuid":  {"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef", dmi + "sys_vendor": "Xen"},
	"gce":       {dmi + "sys_vendor": "Google", dmi + "product_name": "Google Compute Engine"},
	"azure":     {dmi + "sys_vendor": "Microsoft Corporation", dmi + "chassis_asset_tag": azureChassisTag},
	"bare":      {dmi + "sys_vendor": "Dell Inc.", dmi + "product_name": "PowerEdge R640"},
	"class":     {"class/dmi/id/sys_vendor": "Amazon EC2"},
	"xen-other": {"hypervisor/uuid": "9f2d1c2e-0000-0000-0000-000000000000", dmi + "sys_vendor": "Xen", dmi + "bios_version": "4.2"},
	"empty":     {},
}

func TestDetect(t *testing.T) {
	tests := []struct {
		tree string
		env  func(string) string
		want Platform
		why  string
	}{
		{"nitro", env(), EC2, "Nitro"},
		{"xen-bios", env(), EC2, "bios_version"},
		{"xen-uuid", env(), EC2, "hypervisor/uuid"},
		{"class", env(), EC2, "class/dmi/id/sys_vendor"},
		{"gce", env(), GCE, "GCE"},
		{"azure", env(), Azure, "chassis_asset_tag"},
		{"bare", env(), Local, "no platform detected"},
		{"xen-other", env(), Local, "no platform detected"},
		{"empty", env(), Local, "no DMI files"},
		{"nitro", env("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/x"), ECS, "ECS_CONTAINER_METADATA_URI_V4"},
		{"nitro", env("KUBERNETES_SERVICE_HOST", "10.96.0.1"), Kubernetes, "KUBERNETES_SERVICE_HOST"},
		{"empty", env("POD_IP", "10.1.2.3"), Kubernetes, "POD_IP"},
		{"empty", env("ECS_CONTAINER_METADATA_URI", "http://x/v3"), Local, "older than 1.39"},
	}
	for _, tt := range tests {
		p, ev := Detect(Options{SysRoot: sysTree(t, trees[tt.tree]), Getenv: tt.env})
		if p != tt.want || !strings.Contains(strings.Join(ev, "\n"), tt.why) {
			t.Errorf("tree %s: Detect = %s, %q; want %s mentioning %q", tt.tree, p, ev, tt.want, tt.why)
		}
	}
}

func fakeInterfaces() ([]Interface, error) {
	return []Interface{
		{Name: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
		{Name: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00::5")}},
		{Name: "eth1", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.7")}},
	}, nil
}

func noInterfaces() ([]Interface, error) { return nil, nil }

// containerInterfaces are a Docker bridge container's: the load balancer
// never targets 172.17.0.2 on EC2, ECS bridge mode, GCE or Azure.
func containerInterfaces() ([]Interface, error) {
	return []Interface{
		{Name: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Name: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.2")}},
	}, nil
}

func addrStrings(r *Result) []string {
	var out []string
	for _, a := range r.Addresses {
		out = append(out, a.Addr.String())
	}
	return out
}

// TestUndetectedSendsNothing proves that on a machine with no platform
// evidence discovery opens no connection at all.
func TestUndetectedSendsNothing(t *testing.T) {
	for _, tree := range []string{"bare", "empty", "xen-other"} {
		var dials atomic.Int64
		res, err := Discover(context.Background(), Options{
			SysRoot:     sysTree(t, trees[tree]),
			Getenv:      env(),
			Interfaces:  fakeInterfaces,
			DialContext: noNetwork(t, &dials),
		})
		if err != nil {
			t.Fatalf("%s: %v", tree, err)
		}
		if dials.Load() != 0 {
			t.Errorf("%s: %d dials", tree, dials.Load())
		}
		want := []string{"10.0.0.5", "127.0.0.1", "::1", "fd00::5"}
		if res.Platform != Local || !slices.Equal(addrStrings(res), want) {
			t.Errorf("%s: platform %s, addresses %v, want local %v", tree, res.Platform, addrStrings(res), want)
		}
	}
}

func TestNoneAndStatic(t *testing.T) {
	var dials atomic.Int64
	res, err := Discover(context.Background(), Options{
		Platform: None, Static: []netip.Addr{netip.MustParseAddr("10.9.9.9")},
		Interfaces: fakeInterfaces, DialContext: noNetwork(t, &dials),
	})
	if err != nil || !slices.Equal(addrStrings(res), []string{"10.9.9.9"}) || res.Addresses[0].Sources[0] != "static" {
		t.Errorf("none+static: %v %+v", err, res)
	}
}

// ec2Opts are the options of an EC2 discovery against a fake, with the
// defaults users get and the interfaces of a container.
func ec2Opts(endpoint string) Options {
	return Options{Platform: EC2, IMDSEndpoint: endpoint, Getenv: env(), Interfaces: containerInterfaces}
}

var wantEC2 = []string{"10.0.1.23", "10.0.1.24", "10.0.2.50", "127.0.0.1", "::1", "2600:1f18::23"}

func TestEC2(t *testing.T) {
	tests := []struct {
		name  string
		fake  faults
		v1off bool
	}{
		{"IMDSv2 with v1 allowed", faults{}, false},
		{"IMDSv2 required", faults{v2Required: true}, false},
		{"IMDSv2 required, v1 fallback off", faults{v2Required: true}, true},
		{"IMDSv1 only (no token endpoint)", faults{tokenStatus: 404}, false},
		{"token refused (403), v1 allowed", faults{tokenStatus: 403}, false},
		{"token expired once", faults{v2Required: true, expireOnce: true}, false},
		{"token hangs (hop limit 1), v1 allowed", faults{hangToken: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := newFakeIMDS(t, tt.fake)
			o := ec2Opts(url)
			o.DisableIMDSv1 = tt.v1off
			res, err := Discover(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := addrStrings(res); !slices.Equal(got, wantEC2) {
				t.Errorf("addresses %v, want %v", got, wantEC2)
			}
			src := res.Addresses[0].Sources
			if !slices.Contains(src, "ec2 metadata local-ipv4") || !slices.Contains(src, "ec2 metadata network/interfaces/macs/0e:49:61:0f:c3:11/local-ipv4s") {
				t.Errorf("sources of 10.0.1.23: %v", src)
			}
		})
	}
}

func TestEC2Faults(t *testing.T) {
	tests := []struct {
		name   string
		fake   faults
		v1off  bool
		getenv func(string) string
		want   []string // substrings of the error
	}{
		{"token refused, v1 refused", faults{v2Required: true, tokenStatus: 403}, false, nil, []string{"403", "401", "disabled"}},
		{"token hangs, v1 off", faults{hangToken: true}, true, nil, []string{"ec2 metadata", "/latest/api/token", "no answer before the deadline", "hop-limit 2"}},
		{"token hangs, v2 required", faults{hangToken: true, v2Required: true}, false, nil, []string{"401", "HttpTokens=required", "hop-limit 2"}},
		{"everything hangs", faults{hangAll: true}, false, nil, []string{"nothing answered within the 2s deadline", "hop-limit 2", "Options.Platform"}},
		{"500", faults{status: 500}, false, nil, []string{"500", "transient", "tries"}},
		{"403 disabled", faults{status: 403}, false, nil, []string{"403", "--http-endpoint enabled"}},
		{"garbage body", faults{body: "<html>captive portal</html>"}, false, nil, []string{"garbage", "captive portal", "/local-ipv4"}},
		{"garbage macs", faults{values: map[string]string{"local-ipv4": "10.0.0.1", "network/interfaces/macs": "zz/"}}, false, nil, []string{"not a MAC"}},
		{"disabled by env", faults{}, false, env("AWS_EC2_METADATA_DISABLED", "true"), []string{"AWS_EC2_METADATA_DISABLED"}},
		{"v1 off by env, token hangs", faults{hangToken: true}, false, env("AWS_EC2_METADATA_V1_DISABLED", "true"), []string{"AWS_EC2_METADATA_V1_DISABLED", "hop-limit 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := newFakeIMDS(t, tt.fake)
			o := ec2Opts(url)
			o.DisableIMDSv1 = tt.v1off
			if tt.getenv != nil {
				o.Getenv = tt.getenv
			}
			err := discoverWithin(t, o)
			var se *SourceError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SourceError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.getenv != nil && strings.Contains(tt.name, "disabled") && f.requests.Load() != 0 {
				t.Errorf("disabled IMDS was asked %d times", f.requests.Load())
			}
		})
	}
}

// discoverWithin runs Discover and fails the test if it does not return
// long after its deadline: a liveness check, not a timing assertion.
func discoverWithin(t *testing.T, o Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Discover(context.Background(), o)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Discover hung past its deadline")
		return nil
	}
}

func TestEC2EnvEndpoint(t *testing.T) {
	f, url := newFakeIMDS(t, faults{})
	o := ec2Opts("")
	o.Getenv = env("AWS_EC2_METADATA_SERVICE_ENDPOINT", url+"/")
	res, err := Discover(context.Background(), o)
	if err != nil || !slices.Equal(addrStrings(res), wantEC2) {
		t.Fatalf("endpoint from env: %v, %v", err, res)
	}
	if f.requests.Load() == 0 {
		t.Error("the fake was not asked")
	}
}

func TestSlowAnswerPastDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	o := Options{Platform: Azure, AzureEndpoint: srv.URL, Getenv: env(), Interfaces: noInterfaces}
	err := discoverWithin(t, o)
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("slow azure: %v", err)
	}
}

func ecsServer(t *testing.T, body string, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v4/abc/task" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v4/abc"
}

const ecsAwsvpc = `{"LaunchType":"FARGATE","Containers":[{"Name":"app","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.2.106"],"IPv6Addresses":["2600:1f18::106"]}]},{"Name":"sidecar","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.2.106"]}]}]}`
const ecsBridge = `{"LaunchType":"EC2","Containers":[{"Name":"app","Networks":[{"NetworkMode":"bridge","IPv4Addresses":["172.17.0.2"]}]}]}`

func TestECS(t *testing.T) {
	res, err := Discover(context.Background(), Options{Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, ecsAwsvpc, 200)), Interfaces: containerInterfaces, SysRoot: t.TempDir()})
	if err != nil || res.Platform != ECS || !slices.Equal(addrStrings(res), []string{"10.0.2.106", "127.0.0.1", "::1", "2600:1f18::106"}) {
		t.Fatalf("awsvpc: %v %v %v", err, res.Platform, addrStrings(res))
	}

	_, imdsURL := newFakeIMDS(t, faults{})
	res, err = Discover(context.Background(), Options{Platform: ECS, IMDSEndpoint: imdsURL, Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, ecsBridge, 200)), Interfaces: containerInterfaces})
	if err != nil || !slices.Equal(addrStrings(res), wantEC2) {
		t.Fatalf("bridge: %v %v", err, addrStrings(res))
	}
	if slices.Contains(addrStrings(res), "172.17.0.2") {
		t.Error("bridge mode must not use the Docker bridge address")
	}

	for body, want := range map[string]string{
		`not json`: "garbage",
		`{"Containers":[{"Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.0.300"]}]}]}`: "not an IP",
		`{"Containers":[]}`: "no container network",
	} {
		_, err := Discover(context.Background(), Options{Platform: ECS, Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, body, 200)), Interfaces: noInterfaces})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "/task") {
			t.Errorf("ECS body %q: error %v, want %q and the URL", body, err, want)
		}
	}
	_, err = Discover(context.Background(), Options{Platform: ECS, Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, "", 500)), Interfaces: noInterfaces})
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("ECS 500: %v", err)
	}
	_, err = Discover(context.Background(), Options{Platform: ECS, Getenv: env(), Interfaces: noInterfaces})
	if err == nil || !strings.Contains(err.Error(), "ECS_CONTAINER_METADATA_URI_V4 is not set") {
		t.Errorf("ECS without env: %v", err)
	}
}

func TestKubernetes(t *testing.T) {
	var dials atomic.Int64
	res, err := Discover(context.Background(), Options{
		Getenv:      env("KUBERNETES_SERVICE_HOST", "10.96.0.1", "POD_IP", "10.244.1.7", "POD_IPS", "10.244.1.7,fd00:10:244::7", "HOST_IP", "192.168.49.2"),
		Interfaces:  fakeInterfaces, // the downward API says it all: not read
		DialContext: noNetwork(t, &dials),
	})
	if err != nil || res.Platform != Kubernetes || !slices.Equal(addrStrings(res), []string{"10.244.1.7", "127.0.0.1", "192.168.49.2", "::1", "fd00:10:244::7"}) {
		t.Fatalf("%v %v %v", err, res.Platform, addrStrings(res))
	}
	// Without the downward API, the pod's interfaces.
	res, err = Discover(context.Background(), Options{Getenv: env("KUBERNETES_SERVICE_HOST", "10.96.0.1"), Interfaces: fakeInterfaces, DialContext: noNetwork(t, &dials)})
	if err != nil || !slices.Equal(addrStrings(res), []string{"10.0.0.5", "127.0.0.1", "::1", "fd00::5"}) {
		t.Fatalf("pod without downward API: %v %v", err, addrStrings(res))
	}
	_, err = Discover(context.Background(), Options{Platform: Kubernetes, Getenv: env("POD_IP", "$(POD_IP)"), Interfaces: noInterfaces})
	if err == nil || !strings.Contains(err.Error(), "POD_IP") {
		t.Errorf("bad POD_IP: %v", err)
	}
}

func TestAzure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" || r.URL.Query().Get("api-version") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4","publicIpAddress":"20.1.2.3"}]},"ipv6":{"ipAddress":[{"privateIpAddress":"fd00:a::4"}]}}]}}`)
	}))
	defer srv.Close()
	res, err := Discover(context.Background(), Options{SysRoot: sysTree(t, trees["azure"]), AzureEndpoint: srv.URL, Getenv: env(), Interfaces: containerInterfaces})
	if err != nil || res.Platform != Azure {
		t.Fatal(err, res)
	}
	// The VM's private addresses and loopback (Application Gateway's
	// default probe), not its public address nor a container's own.
	if got := addrStrings(res); !slices.Equal(got, []string{"10.1.0.4", "127.0.0.1", "::1", "fd00:a::4"}) {
		t.Errorf("azure: %v", got)
	}
}

func TestFillAndWatch(t *testing.T) {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: []string{"lhy.kr", "@self"}})
	if err != nil {
		t.Fatal(err)
	}
	f, url := newFakeIMDS(t, faults{})
	o := ec2Opts(url)
	if _, err := Fill(context.Background(), g, o); err != nil {
		t.Fatal(err)
	}
	if !g.Allow("10.0.2.50:80") || !g.Allow("[2600:1f18::23]") || g.Allow("10.0.9.9") {
		t.Errorf("@self after Fill: %v", g.Self())
	}

	// A failed refresh keeps the previous set.
	f.set(func(fl *faults) { fl.status = 500 })
	if _, err := Fill(context.Background(), g, o); err == nil {
		t.Fatal("Fill against a failing IMDS succeeded")
	}
	if !g.Allow("10.0.2.50") {
		t.Error("a failed refresh emptied @self")
	}

	// Watch picks up a change.
	f.set(func(fl *faults) {
		fl.status = 0
		fl.values["network/interfaces/macs/0e:49:61:0f:c3:22/local-ipv4s"] = "10.0.2.51"
	})
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan error, 10)
	go Watch(ctx, g, o, 10*time.Millisecond, func(_ *Result, err error) {
		select {
		case reports <- err:
		default:
		}
	})
	defer cancel()
	for i := 0; i < 100 && !g.Allow("10.0.2.51"); i++ {
		select {
		case err := <-reports:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no refresh")
		}
	}
	if !g.Allow("10.0.2.51") || g.Allow("10.0.2.50") {
		t.Errorf("after Watch: %v", g.Self())
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]Platform{"": Auto, "auto": Auto, "EC2": EC2, "kubernetes": Kubernetes, "k8s": Kubernetes, "none": None} {
		if p, err := ParsePlatform(in); err != nil || p != want {
			t.Errorf("ParsePlatform(%q) = %v, %v", in, p, err)
		}
	}
	if _, err := ParsePlatform("aws"); err == nil || !strings.Contains(err.Error(), `"aws"`) {
		t.Errorf("ParsePlatform(aws): %v", err)
	}
}
