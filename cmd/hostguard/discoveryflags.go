package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/hostguard/hostguard/discover"
)

// discoveryFlags are the flags discover, exec and proxy share, each with
// its default from an environment variable, so a container needs no wrapper.
type discoveryFlags struct {
	platform     *string
	timeout      *time.Duration
	self         *listFlag
	sysfs        *string
	imdsEndpoint *string
	noIMDSv1     *bool
}

func addDiscoveryFlags(f *envFlags) *discoveryFlags {
	return &discoveryFlags{
		platform: f.str("platform", "HOSTGUARD_PLATFORM", "auto",
			"where @self comes from: auto, ec2, ecs, k8s, gce, azure, local or none"),
		timeout: f.duration("timeout", "HOSTGUARD_TIMEOUT", discover.DefaultTimeout, "deadline for the whole discovery"),
		self:    f.list("self", "HOSTGUARD_SELF", "addresses always part of @self"),
		sysfs:   f.str("sysfs", "HOSTGUARD_SYSFS", "/sys", "directory read as /sys for platform detection"),
		imdsEndpoint: f.fs.String("imds-endpoint", "",
			"EC2 metadata endpoint (default: env AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254, or http://[fd00:ec2::254] with AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6)"),
		noIMDSv1: f.fs.Bool("no-imdsv1", false, "never fall back to IMDSv1 (also env AWS_EC2_METADATA_V1_DISABLED=true)"),
	}
}

// options turns the flags into discovery options; errors name the flag.
func (f *discoveryFlags) options(e *env) (discover.Options, error) {
	var o discover.Options
	p, err := discover.ParsePlatform(*f.platform)
	if err != nil {
		return o, fmt.Errorf("--platform / HOSTGUARD_PLATFORM: %w", err)
	}
	d := *f.timeout
	if d <= 0 {
		return o, fmt.Errorf("--timeout / HOSTGUARD_TIMEOUT: %q is not a positive duration; write it as 2s or 500ms", d)
	}
	for _, s := range *f.self {
		a, err := parseSelfAddr(s)
		if err != nil {
			return o, fmt.Errorf("--self / HOSTGUARD_SELF: %w", err)
		}
		o.Static = append(o.Static, a)
	}
	o.Platform, o.Timeout = p, d
	o.SysRoot = *f.sysfs
	o.Getenv = e.getenv
	o.IMDSEndpoint = *f.imdsEndpoint
	o.DisableIMDSv1 = *f.noIMDSv1
	o.Interfaces = e.interfaces
	return o, nil
}

// optionsAsFlags words discovery messages for the command line: the library
// names the Options fields a Go caller sets, the command has flags for them.
var optionsAsFlags = strings.NewReplacer(
	"Options.Timeout", "--timeout",
	"Options.Platform", "--platform",
	"Options.Static", "--self",
	"Options.IMDSEndpoint", "--imds-endpoint",
	"Options.DisableIMDSv1", "--no-imdsv1",
	"Options.SysRoot", "--sysfs",
	"Options.GCEMetadataHost or ", "", // only the environment variable sets it here
	"Options.AzureEndpoint or ", "",
)

// flagWords returns a discovery error as the command says it.
func flagWords(err error) string { return optionsAsFlags.Replace(err.Error()) }
