package discover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of issue #11: what the real platforms do beside the happy path,
// each with the documented payloads and the defaults users get.

// gcePayload is the metadata server's recursive answer for
// instance/network-interfaces/ of a VM behind a passthrough Network Load
// Balancer (one IPv4 and one IPv6 forwarding rule) with a second NIC, in
// the documented form.
const gcePayload = `[{"accessConfigs":[{"externalIp":"34.72.10.20","type":"ONE_TO_ONE_NAT"}],"dnsServers":["` + gceDefaultHost + `"],` +
	`"forwardedIps":["35.202.117.8"],"forwardedIpv6s":["2600:1900:4000:b1c:8000::/96"],"gateway":"10.128.0.1",` +
	`"ip":"10.128.0.9","ipAliases":["10.4.0.0/24"],"ipv6s":["2600:1900:4000:b1c:0:3::"],"mac":"42:01:0a:80:00:09","mtu":1460,` +
	`"network":"projects/123456789012/networks/default","subnetmask":"255.255.240.0","targetInstanceIps":[]},` +
	`{"accessConfigs":[],"dnsServers":["` + gceDefaultHost + `"],"forwardedIps":[],"gateway":"10.130.0.1","ip":"10.130.0.4",` +
	`"ipAliases":[],"mac":"42:01:0a:82:00:04","mtu":1460,"network":"projects/123456789012/networks/backend",` +
	`"subnetmask":"255.255.240.0","targetInstanceIps":[]}]`

// gceServer serves payload as the GCE metadata server does (flavor set
// unless flavor is false).
func gceServer(t *testing.T, payload string, flavor bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if flavor {
			w.Header().Set("Metadata-Flavor", "Google")
		}
		if r.URL.Path != "/computeMetadata/v1/instance/network-interfaces/" || r.URL.Query().Get("recursive") != "true" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, payload)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestGCEForwardedIPs(t *testing.T) {
	res, err := Discover(context.Background(), Options{SysRoot: sysTree(t, trees["gce"]),
		Getenv: env("GCE_METADATA_HOST", gceServer(t, gcePayload, true)), Interfaces: containerInterfaces})
	if err != nil || res.Platform != GCE {
		t.Fatal(err, res)
	}
	want := []string{"10.128.0.9", "10.130.0.4", "35.202.117.8", "127.0.0.1", "::1", "2600:1900:4000:b1c:0:3::", "2600:1900:4000:b1c:8000::"}
	slices.Sort(want)
	got := addrStrings(res)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
	for _, a := range res.Addresses {
		if a.Addr.String() == "35.202.117.8" && !slices.Equal(a.Sources, []string{"gce metadata network-interfaces/0/forwarded-ips"}) {
			t.Errorf("sources of the forwarding rule's address: %v", a.Sources)
		}
	}
	if ev := strings.Join(res.Evidence, "\n"); !strings.Contains(ev, "35.202.117.8 is a forwarded IP of interface 0: the address of a passthrough Network Load Balancer's forwarding rule") {
		t.Errorf("evidence does not explain the forwarded IP:\n%s", ev)
	}
}

func TestGCEWithoutMetadataFlavor(t *testing.T) {
	_, err := Discover(context.Background(), Options{Platform: GCE, Getenv: env("GCE_METADATA_HOST", gceServer(t, gcePayload, false)), Interfaces: noInterfaces})
	if err == nil || !strings.Contains(err.Error(), "Metadata-Flavor: Google") || !strings.Contains(err.Error(), "captive portal") {
		t.Errorf("an answer without Metadata-Flavor: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), gceDefaultHost) {
		t.Errorf("the error names an address that was not asked: %v", err)
	}
}

// TestEC2SlowService: an IMDS that takes 700 ms for every answer, token
// included, works when the deadline allows it; with the default deadline
// the error says that it is slow, not that the hop limit is wrong.
func TestEC2SlowService(t *testing.T) {
	t.Parallel()
	_, url := newFakeIMDS(t, faults{delay: 700 * time.Millisecond, v2Required: true})
	o := ec2Opts(url)
	o.Timeout = 10 * time.Second // as --timeout 10s
	res, err := Discover(context.Background(), o)
	if err != nil || !slices.Equal(addrStrings(res), wantEC2) {
		t.Fatalf("slow IMDS with a 10 s budget: %v %v", err, addrStrings(res))
	}

	err = discoverWithin(t, ec2Opts(url))
	if err == nil || !strings.Contains(err.Error(), "slow") || !strings.Contains(err.Error(), "Options.Timeout") {
		t.Errorf("slow IMDS with the default deadline: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "hop-limit") {
		t.Errorf("a token was issued, yet the error blames the hop limit: %v", err)
	}
}

// TestEC2HopLimitHint: a dropped token answer (a container on an instance
// with a hop limit of 1) names the hop limit whenever IMDSv1 cannot help,
// under the default deadline; where IMDSv1 is allowed, discovery succeeds.
func TestEC2HopLimitHint(t *testing.T) {
	for _, tt := range []struct {
		name   string
		fake   faults
		v1off  bool
		getenv func(string) string
		ok     bool
	}{
		{"v1 allowed: works through IMDSv1", faults{hangToken: true}, false, nil, true},
		{"v1 off by option", faults{hangToken: true}, true, nil, false},
		{"v1 off by AWS_EC2_METADATA_V1_DISABLED", faults{hangToken: true}, false, env("AWS_EC2_METADATA_V1_DISABLED", "true"), false},
		{"instance requires IMDSv2", faults{hangToken: true, v2Required: true}, false, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, url := newFakeIMDS(t, tt.fake)
			o := ec2Opts(url)
			o.DisableIMDSv1 = tt.v1off
			if tt.getenv != nil {
				o.Getenv = tt.getenv
			}
			res, err := Discover(context.Background(), o)
			if tt.ok {
				if err != nil || !slices.Equal(addrStrings(res), wantEC2) {
					t.Fatalf("%v %v", err, addrStrings(res))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "--http-put-response-hop-limit 2") || !strings.Contains(err.Error(), "token") {
				t.Errorf("error does not name the hop limit: %v", err)
			}
		})
	}
}

// azureServer answers the first failures requests with status, then the
// documented instance payload.
func azureServer(t *testing.T, status, failures int) (string, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if int(n.Add(1)) <= failures {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"Too many requests"}`)
			return
		}
		fmt.Fprint(w, `{"compute":{"location":"westeurope","vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6"},"network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4","publicIpAddress":""}],"subnet":[{"address":"10.1.0.0","prefix":"24"}]},"ipv6":{"ipAddress":[]},"macAddress":"000D3AF806EC"}]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestAzureRetries(t *testing.T) {
	for _, tt := range []struct {
		name             string
		status, failures int
		ok               bool
		want             string // in the evidence, or in the error
	}{
		{"throttled twice", http.StatusTooManyRequests, 2, true, "throttled the request (HTTP 429) 2 times"},
		{"maintenance (410)", http.StatusGone, 1, true, "answered on try 2"},
		{"503 once", http.StatusServiceUnavailable, 1, true, "answered on try 2"},
		{"throttled throughout", http.StatusTooManyRequests, 1 << 30, false, "throttled"},
		{"failing throughout", http.StatusInternalServerError, 1 << 30, false, "status 500"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, n := azureServer(t, tt.status, tt.failures)
			res, err := Discover(context.Background(), Options{Platform: Azure, AzureEndpoint: url, Getenv: env(), Interfaces: containerInterfaces})
			if tt.ok {
				if err != nil || !slices.Equal(addrStrings(res), []string{"10.1.0.4", "127.0.0.1", "::1"}) {
					t.Fatalf("%v %v", err, addrStrings(res))
				}
				if ev := strings.Join(res.Evidence, "\n"); !strings.Contains(ev, tt.want) {
					t.Errorf("evidence lacks %q:\n%s", tt.want, ev)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v lacks %q", err, tt.want)
			}
			if n.Load() < 3 {
				t.Errorf("asked %d times in the 2 s deadline; it must retry with backoff", n.Load())
			}
		})
	}
}

// TestSourcesPerPlatform: with a Docker container's interfaces present,
// only a plain machine (and a pod without the downward API) takes its
// addresses from the interfaces; everywhere but none, loopback is kept.
func TestSourcesPerPlatform(t *testing.T) {
	_, imdsURL := newFakeIMDS(t, faults{})
	azureURL, _ := azureServer(t, 0, 0)
	for _, tt := range []struct {
		name      string
		o         Options
		bridge    bool // 172.17.0.2 belongs in the result
		loopback  bool
		wantExtra string
	}{
		{"ec2", Options{Platform: EC2, IMDSEndpoint: imdsURL, Getenv: env()}, false, true, "10.0.1.23"},
		{"ecs bridge", Options{Platform: ECS, IMDSEndpoint: imdsURL, Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, ecsBridge, 200))}, false, true, "10.0.1.23"},
		{"ecs awsvpc", Options{Platform: ECS, Getenv: env("ECS_CONTAINER_METADATA_URI_V4", ecsServer(t, ecsAwsvpc, 200))}, false, true, "10.0.2.106"},
		{"gce", Options{Platform: GCE, Getenv: env("GCE_METADATA_HOST", gceServer(t, gcePayload, true))}, false, true, "35.202.117.8"},
		{"azure", Options{Platform: Azure, AzureEndpoint: azureURL, Getenv: env()}, false, true, "10.1.0.4"},
		{"k8s with the downward API", Options{Platform: Kubernetes, Getenv: env("POD_IP", "10.244.1.7")}, false, true, "10.244.1.7"},
		{"k8s without it", Options{Platform: Kubernetes, Getenv: env()}, true, true, ""},
		{"local", Options{Platform: Local, Getenv: env()}, true, true, ""},
		{"none", Options{Platform: None, Getenv: env()}, false, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Interfaces = containerInterfaces
			res, err := Discover(context.Background(), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			got := addrStrings(res)
			if slices.Contains(got, "172.17.0.2") != tt.bridge {
				t.Errorf("%v: the container's bridge address included: %v, want %v", got, !tt.bridge, tt.bridge)
			}
			if slices.Contains(got, "127.0.0.1") != tt.loopback || slices.Contains(got, "::1") != tt.loopback {
				t.Errorf("%v: loopback wanted: %v", got, tt.loopback)
			}
			if tt.wantExtra != "" && !slices.Contains(got, tt.wantExtra) {
				t.Errorf("%v lacks %s", got, tt.wantExtra)
			}
		})
	}
}

// TestErrorsNameOptionsNotFlags: a Go caller has no flags; the library's
// messages name Options fields (the command words its flags).
func TestErrorsNameOptionsNotFlags(t *testing.T) {
	var errs []error
	_, hang := newFakeIMDS(t, faults{hangAll: true})
	_, slow := newFakeIMDS(t, faults{delay: 900 * time.Millisecond})
	azureURL, _ := azureServer(t, http.StatusTooManyRequests, 1<<30)
	for _, o := range []Options{
		{Platform: EC2, IMDSEndpoint: hang, Getenv: env(), Interfaces: noInterfaces},
		{Platform: EC2, IMDSEndpoint: slow, Getenv: env(), Interfaces: noInterfaces},
		{Platform: EC2, IMDSEndpoint: hang, DisableIMDSv1: true, Getenv: env(), Interfaces: noInterfaces},
		{Platform: EC2, Getenv: env("AWS_EC2_METADATA_DISABLED", "true"), Interfaces: noInterfaces},
		{Platform: ECS, Getenv: env(), Interfaces: noInterfaces},
		{Platform: Azure, AzureEndpoint: azureURL, Getenv: env(), Interfaces: noInterfaces},
	} {
		_, err := Discover(context.Background(), o)
		if err == nil {
			t.Fatalf("no error for %+v", o)
		}
		errs = append(errs, err)
	}
	_, ev := Detect(Options{SysRoot: t.TempDir(), Getenv: env()})
	errs = append(errs, errors.New(strings.Join(ev, "; ")))
	for _, err := range errs {
		for _, flag := range []string{"--timeout", "--platform", "--self", "--imds-endpoint", "--no-imdsv1", "--sysfs"} {
			if strings.Contains(err.Error(), flag) {
				t.Errorf("a library message names the flag %s: %v", flag, err)
			}
		}
	}
}
