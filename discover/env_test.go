package discover

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOptionsFromEnv(t *testing.T) {
	vars := map[string]string{
		"HOSTGUARD_PLATFORM": "EC2", "HOSTGUARD_TIMEOUT": "750ms",
		"HOSTGUARD_SELF": "10.0.1.23, [2001:db8::7] 10.0.1.24", "HOSTGUARD_SYSFS": "/tmp/sys",
	}
	o, err := OptionsFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("10.0.1.24")}
	if o.Platform != EC2 || o.Timeout != 750*time.Millisecond || !slices.Equal(o.Static, want) || o.SysRoot != "/tmp/sys" || o.Getenv("HOSTGUARD_SYSFS") != "/tmp/sys" {
		t.Errorf("%+v", o)
	}

	// Nothing set: the zero Options, which detect the platform.
	o, err = OptionsFromEnv(func(string) string { return "" })
	if err != nil || o.Platform != Auto || o.Timeout != 0 || o.Static != nil || o.SysRoot != "" {
		t.Errorf("empty environment: %+v %v", o, err)
	}

	// Every bad variable is named, with its value.
	bad := map[string]string{"HOSTGUARD_PLATFORM": "aws", "HOSTGUARD_TIMEOUT": "0s", "HOSTGUARD_SELF": "10.0.1.23,fe80::1%eth0,nope"}
	_, err = OptionsFromEnv(func(k string) string { return bad[k] })
	for _, w := range []string{`HOSTGUARD_PLATFORM: unknown platform "aws"`, `HOSTGUARD_TIMEOUT="0s"`, `"fe80::1%eth0"`, `"nope"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %s: %v", w, err)
		}
	}
}

// A program configures discovery from the same variables as the hostguard
// command, here HOSTGUARD_PLATFORM=none and HOSTGUARD_SELF=10.0.1.23.
func ExampleOptionsFromEnv() {
	vars := map[string]string{"HOSTGUARD_PLATFORM": "none", "HOSTGUARD_SELF": "10.0.1.23"}
	o, err := OptionsFromEnv(func(k string) string { return vars[k] }) // nil: os.Getenv
	if err != nil {
		fmt.Println(err) // names the variable, its value and the form expected
		return
	}
	res, err := Discover(context.Background(), o)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Platform, res.Addrs())
	// Output: none [10.0.1.23]
}
