// Package discover finds the addresses under which this instance is reached
// by its load balancer's health checks: the addresses that the "@self" entry
// of a hostguard allow list stands for.
//
// Discovery first looks at local evidence only (environment variables, DMI
// files in sysfs) to decide which platform it runs on, and contacts a
// metadata service only when that evidence, or the caller, names its
// platform: on an undetected machine it sends no packet at all. The whole
// discovery is bounded by one deadline ([Options.Timeout], 2 s by default).
//
// Each platform's sources describe what its load balancer targets, and
// nothing else:
//
//	ec2    the instance: the EC2 instance metadata service (IMDSv2, falling
//	       back to v1 unless disabled): local-ipv4 and every interface's
//	       local-ipv4s and ipv6s
//	ecs    the task in awsvpc mode (Fargate, ECS IP targets): ECS task
//	       metadata v4 (/task); the instance in bridge or host mode: EC2
//	       metadata
//	k8s    the pod (and its node, for instance-mode targets): POD_IP,
//	       POD_IPS, HOST_IP and HOST_IPS from the downward API; the pod's
//	       interfaces when none of them is set
//	gce    the VM: the GCE metadata server's ip and ipv6s of every interface,
//	       and the forwarded-ips and forwarded-ipv6s of passthrough Network
//	       Load Balancers
//	azure  the VM: Azure IMDS, every interface's private IPv4 and IPv6
//	       addresses
//	local  a plain machine: the private, unique-local and loopback addresses
//	       of its network interfaces
//	none   only the static addresses
//
// A container's own bridge address (172.17.0.2 in Docker) is not what the
// load balancer targets on EC2, ECS bridge mode, GCE or Azure, so the local
// interfaces are read only on a plain machine and in a pod. On every
// platform but none the loopback addresses are added (checks from the
// machine itself, Azure Application Gateway's default probe), and so are the
// static addresses of [Options.Static].
package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Platform names where discovery runs.
type Platform string

// The platforms. Auto, the zero value, detects the platform from local
// evidence.
const (
	Auto       Platform = ""
	EC2        Platform = "ec2"
	ECS        Platform = "ecs"
	Kubernetes Platform = "k8s"
	GCE        Platform = "gce"
	Azure      Platform = "azure"
	Local      Platform = "local"
	None       Platform = "none"
)

// Platforms returns every platform a caller may name, in the order of the
// documentation.
func Platforms() []Platform { return []Platform{EC2, ECS, Kubernetes, GCE, Azure, Local, None} }

// ParsePlatform parses a platform name; "auto" and "" mean Auto.
func ParsePlatform(s string) (Platform, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "auto" {
		return Auto, nil
	}
	if s == "kubernetes" {
		return Kubernetes, nil
	}
	for _, p := range Platforms() {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(Platforms()))
	for i, p := range Platforms() {
		names[i] = string(p)
	}
	return Auto, fmt.Errorf("unknown platform %q; use auto, %s", s, strings.Join(names, ", "))
}

// String returns the platform's name, "auto" for Auto.
func (p Platform) String() string {
	if p == Auto {
		return "auto"
	}
	return string(p)
}

// DefaultTimeout bounds a whole discovery when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Interface is a network interface and its addresses.
type Interface struct {
	Name  string
	Addrs []netip.Addr
}

// Options configures [Discover]. The zero value detects the platform and
// uses the real environment, sysfs and network interfaces.
type Options struct {
	// Platform skips detection when set.
	Platform Platform

	// Timeout bounds the whole discovery. Zero means DefaultTimeout.
	Timeout time.Duration

	// Static addresses are always part of the result (the command's
	// --self and HOSTGUARD_SELF).
	Static []netip.Addr

	// SysRoot is the directory that stands for /sys, so that tests can
	// use fake trees. Empty means "/sys".
	SysRoot string

	// Getenv reads environment variables. Nil means os.Getenv. Every
	// variable discovery reads goes through it, including the AWS SDK's
	// AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT,
	// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE and AWS_EC2_METADATA_V1_DISABLED.
	Getenv func(string) string

	// Interfaces lists the local network interfaces. Nil means the real
	// ones (net.Interfaces).
	Interfaces func() ([]Interface, error)

	// IMDSEndpoint overrides the EC2 metadata endpoint, such as
	// "http://127.0.0.1:1338". Empty: AWS_EC2_METADATA_SERVICE_ENDPOINT,
	// else the SDK's default (http://169.254.169.254, or
	// http://[fd00:ec2::254] in IPv6 endpoint mode).
	IMDSEndpoint string

	// DisableIMDSv1 turns off the fallback to IMDSv1 when no IMDSv2 token
	// can be had. AWS_EC2_METADATA_V1_DISABLED=true does the same.
	DisableIMDSv1 bool

	// GCEMetadataHost overrides the GCE metadata host, such as
	// "127.0.0.1:8080". Empty: GCE_METADATA_HOST, else 169.254.169.254.
	GCEMetadataHost string

	// AzureEndpoint overrides the Azure IMDS endpoint. Empty:
	// HOSTGUARD_AZURE_ENDPOINT, else http://169.254.169.254.
	AzureEndpoint string

	// DialContext, when set, opens every connection discovery makes. Tests
	// use it to prove that nothing is sent.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Address is one discovered address and every source that reported it.
type Address struct {
	Addr    netip.Addr `json:"address"`
	Sources []string   `json:"sources"`
}

// Result is what a discovery found and why.
type Result struct {
	// Platform is the platform used: the one named in Options, the one
	// detected, or Local when nothing was detected.
	Platform Platform `json:"platform"`
	// Evidence explains, one line each, what was detected and why.
	Evidence []string `json:"evidence"`
	// Addresses are the addresses found, sorted, each once.
	Addresses []Address `json:"addresses"`
}

// Addrs returns the addresses without their sources.
func (r *Result) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(r.Addresses))
	for i, a := range r.Addresses {
		out[i] = a.Addr
	}
	return out
}

func (r *Result) add(a netip.Addr, source string) {
	if !a.IsValid() {
		return
	}
	for i := range r.Addresses {
		if r.Addresses[i].Addr == a {
			if !slices.Contains(r.Addresses[i].Sources, source) {
				r.Addresses[i].Sources = append(r.Addresses[i].Sources, source)
			}
			return
		}
	}
	r.Addresses = append(r.Addresses, Address{Addr: a, Sources: []string{source}})
}

func (r *Result) note(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}

// Discover finds the addresses of this instance. It returns a Result even
// on error, holding what was found; the error joins a [*SourceError] for
// every source that failed. It never blocks past the deadline.
func Discover(ctx context.Context, o Options) (*Result, error) {
	d := newDiscoverer(o)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	res := &Result{Platform: o.Platform}
	if res.Platform == Auto {
		res.Platform, res.Evidence = d.detect()
	} else {
		res.note("platform %s given by the caller; nothing detected", res.Platform)
	}

	var errs []error
	switch res.Platform {
	case EC2:
		errs = append(errs, d.ec2(ctx, res))
	case ECS:
		errs = append(errs, d.ecs(ctx, res))
	case Kubernetes:
		found, err := d.kubernetes(res)
		errs = append(errs, err)
		if !found && err == nil {
			errs = append(errs, d.local(res))
		}
	case GCE:
		errs = append(errs, d.gce(ctx, res))
	case Azure:
		errs = append(errs, d.azure(ctx, res))
	case Local, None:
	default:
		errs = append(errs, fmt.Errorf("discover: unknown platform %q", res.Platform))
	}
	if res.Platform == Local {
		errs = append(errs, d.local(res))
	}
	if res.Platform != None {
		for _, a := range []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
			res.add(a, "loopback")
		}
	}
	for _, a := range o.Static {
		res.add(a, "static")
	}
	slices.SortFunc(res.Addresses, func(a, b Address) int { return a.Addr.Compare(b.Addr) })
	return res, errors.Join(errs...)
}

// discoverer holds the resolved options of one discovery.
type discoverer struct {
	o       Options
	timeout time.Duration
	getenv  func(string) string
	sysRoot string

	hcOnce sync.Once
	hc     *http.Client // see client
}

func newDiscoverer(o Options) *discoverer {
	d := &discoverer{o: o, timeout: o.Timeout, getenv: o.Getenv, sysRoot: cmp.Or(o.SysRoot, "/sys")}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	return d
}

// parseAddrs parses a newline- or comma-separated list of addresses.
func parseAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == ' ' || r == '\r' || r == '\t' }) {
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address", truncate(f))
		}
		out = append(out, a)
	}
	return out, nil
}

// truncate shortens garbage for error messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
