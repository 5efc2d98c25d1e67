package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hostguard/hostguard/discover"
)

// discoveryFlags are the flags discover, exec and proxy share. Each takes its
// default from an environment variable, so a container needs no wrapper.
type discoveryFlags struct {
	platform     string
	timeout      string
	self         listFlag
	sysfs        string
	imdsEndpoint string
	noIMDSv1     bool
}

// envOr returns the value of the environment variable name, or def.
func envOr(e *env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func addDiscoveryFlags(fs *flag.FlagSet, e *env) *discoveryFlags {
	f := &discoveryFlags{}
	fs.StringVar(&f.platform, "platform", envOr(e, "HOSTGUARD_PLATFORM", "auto"),
		"where @self comes from: auto, ec2, ecs, k8s, gce, azure, local or none (env HOSTGUARD_PLATFORM)")
	fs.StringVar(&f.timeout, "timeout", envOr(e, "HOSTGUARD_TIMEOUT", discover.DefaultTimeout.String()),
		"deadline for the whole discovery (env HOSTGUARD_TIMEOUT)")
	_ = f.self.Set(e.getenv("HOSTGUARD_SELF"))
	fs.Var(&f.self, "self", "addresses always part of @self, comma separated; repeatable (env HOSTGUARD_SELF)")
	fs.StringVar(&f.sysfs, "sysfs", envOr(e, "HOSTGUARD_SYSFS", "/sys"),
		"directory read as /sys for platform detection (env HOSTGUARD_SYSFS)")
	fs.StringVar(&f.imdsEndpoint, "imds-endpoint", "",
		"EC2 metadata endpoint (default: env AWS_EC2_METADATA_SERVICE_ENDPOINT, else the SDK default)")
	fs.BoolVar(&f.noIMDSv1, "no-imdsv1", false,
		"never fall back to IMDSv1 (also env AWS_EC2_METADATA_V1_DISABLED=true)")
	return f
}

// options turns the flags into discovery options; errors name the flag.
func (f *discoveryFlags) options(e *env) (discover.Options, error) {
	var o discover.Options
	p, err := discover.ParsePlatform(f.platform)
	if err != nil {
		return o, fmt.Errorf("--platform / HOSTGUARD_PLATFORM: %w", err)
	}
	d, err := time.ParseDuration(f.timeout)
	if err != nil || d <= 0 {
		return o, fmt.Errorf("--timeout / HOSTGUARD_TIMEOUT: %q is not a positive duration; write it as 2s or 500ms", f.timeout)
	}
	for _, s := range f.self {
		a, err := netip.ParseAddr(strings.Trim(s, "[]"))
		if err != nil || a.Zone() != "" {
			return o, fmt.Errorf("--self / HOSTGUARD_SELF: %q is not an IP address", s)
		}
		o.Static = append(o.Static, a)
	}
	o.Platform, o.Timeout = p, d
	o.SysRoot = f.sysfs
	o.Getenv = e.getenv
	o.IMDSEndpoint = f.imdsEndpoint
	o.DisableIMDSv1 = f.noIMDSv1
	o.Interfaces = e.interfaces
	return o, nil
}
