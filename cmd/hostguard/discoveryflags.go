package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/hostguard/hostguard/discover"
)

// discoveryFlags are the flags discover, exec and proxy share. Their
// environment is read by discover.OptionsFromEnv, as a Go program reads
// it; a flag given on the command line wins over its variable.
type discoveryFlags struct {
	f            *flagSet
	platform     *string
	timeout      *time.Duration
	self         *listFlag
	sysfs        *string
	imdsEndpoint *string
	noIMDSv1     *bool
}

func addDiscoveryFlags(f *flagSet) *discoveryFlags {
	d := &discoveryFlags{
		f: f,
		platform: f.String("platform", "auto",
			"where @self comes from: auto, ec2, ecs, k8s, gce, azure, local or none"),
		timeout: f.Duration("timeout", discover.DefaultTimeout, "deadline for the whole discovery"),
		self:    new(listFlag),
		sysfs:   f.String("sysfs", "/sys", "directory read as /sys for platform detection"),
		imdsEndpoint: f.String("imds-endpoint", "",
			"EC2 metadata endpoint (default: http://169.254.169.254, or http://[fd00:ec2::254] with AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6)"),
		noIMDSv1: f.Bool("no-imdsv1", false, "never fall back to IMDSv1"),
	}
	f.Var(d.self, "self", "addresses always part of @self, besides those of HOSTGUARD_SELF; comma separated, repeatable")
	platforms := []string{"auto"}
	for _, p := range discover.Platforms() {
		platforms = append(platforms, p.String())
	}
	f.choices("platform", platforms...)
	for name, envName := range map[string]string{
		"platform": discover.EnvPlatform, "timeout": discover.EnvTimeout, "self": discover.EnvSelf, "sysfs": discover.EnvSysfs,
		"imds-endpoint": "AWS_EC2_METADATA_SERVICE_ENDPOINT", "no-imdsv1": "AWS_EC2_METADATA_V1_DISABLED",
	} {
		f.annotate(name, envName)
	}
	return d
}

// options returns the discovery options: those of the environment
// (discover.OptionsFromEnv), then the flags given. Errors name the flag or
// the variable.
func (d *discoveryFlags) options(e *env) (discover.Options, error) {
	o, err := discover.OptionsFromEnv(e.getenv)
	if err != nil {
		return o, err
	}
	changed := d.f.Changed
	if changed("platform") {
		p, err := discover.ParsePlatform(*d.platform)
		if err != nil {
			return o, fmt.Errorf("--platform: %w", err)
		}
		o.Platform = p
	}
	if changed("timeout") {
		if *d.timeout <= 0 {
			return o, fmt.Errorf("--timeout: %q is not a positive duration; write it as 2s or 500ms", d.timeout.String())
		}
		o.Timeout = *d.timeout
	}
	for _, s := range *d.self {
		a, err := parseSelfAddr(s)
		if err != nil {
			return o, fmt.Errorf("--self: %w", err)
		}
		o.Static = append(o.Static, a)
	}
	if changed("sysfs") {
		o.SysRoot = *d.sysfs
	}
	o.IMDSEndpoint = *d.imdsEndpoint
	o.DisableIMDSv1 = *d.noIMDSv1
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

// flagWords returns a discovery error as the command says it, without the
// package's prefix.
func flagWords(err error) string { return optionsAsFlags.Replace(errText(err)) }
