package discover

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// The environment variables [OptionsFromEnv] reads, the same as the
// hostguard command's discovery flags.
const (
	EnvPlatform = "HOSTGUARD_PLATFORM" // Options.Platform: auto, ec2, ecs, k8s, gce, azure, local, none
	EnvTimeout  = "HOSTGUARD_TIMEOUT"  // Options.Timeout: a Go duration, such as 2s
	EnvSelf     = "HOSTGUARD_SELF"     // Options.Static: addresses, comma or space separated
	EnvSysfs    = "HOSTGUARD_SYSFS"    // Options.SysRoot
)

// OptionsFromEnv returns the Options the hostguard command would use with
// no discovery flag: HOSTGUARD_PLATFORM, HOSTGUARD_TIMEOUT, HOSTGUARD_SELF
// and HOSTGUARD_SYSFS set the fields of the same meaning, and getenv (nil:
// os.Getenv) becomes Options.Getenv, through which discovery reads the
// variables of the AWS SDK (AWS_EC2_METADATA_SERVICE_ENDPOINT,
// AWS_EC2_METADATA_V1_DISABLED, ...), GCE_METADATA_HOST,
// HOSTGUARD_AZURE_ENDPOINT and the Kubernetes downward API. Unset
// variables leave their field zero. The error names every variable that
// does not parse, with its value and the form expected; the Options are
// then those of the variables that did.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	o := Options{Getenv: getenv, SysRoot: getenv(EnvSysfs)}
	var errs []error
	if v := getenv(EnvPlatform); v != "" {
		p, err := ParsePlatform(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvPlatform, err))
		}
		o.Platform = p
	}
	if v := getenv(EnvTimeout); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a positive duration; write it as 2s or 500ms", EnvTimeout, v))
		} else {
			o.Timeout = d
		}
	}
	for _, s := range strings.FieldsFunc(getenv(EnvSelf), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if err != nil || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an IP address without zone, such as 10.0.1.23 or 2001:db8::1", EnvSelf, truncate(s)))
			continue
		}
		o.Static = append(o.Static, a.Unmap())
	}
	return o, errors.Join(errs...)
}
