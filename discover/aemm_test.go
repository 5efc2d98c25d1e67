package discover

import (
	"context"
	"slices"
	"testing"

	"github.com/hostguard/hostguard/internal/aemm"
)

// TestAgainstMetadataMock runs EC2 discovery against the real
// amazon-ec2-metadata-mock on loopback, as IMDSv1+v2 and as IMDSv2 only,
// pointed at by AWS_EC2_METADATA_SERVICE_ENDPOINT as users would.
func TestAgainstMetadataMock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v2Only bool
		v1Off  bool
	}{
		{"v1 and v2", false, false},
		{"v2 only (-I)", true, false},
		{"v2 only, fallback off", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := aemm.Start(t, aemm.Config{LocalIPv4: "127.0.0.11", IPv6: "fd00:1::11", V2Only: tc.v2Only})
			res, err := Discover(context.Background(), Options{
				Platform:      EC2,
				Getenv:        env("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.URL),
				Interfaces:    containerInterfaces,
				DisableIMDSv1: tc.v1Off,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := addrStrings(res); !slices.Equal(got, []string{"127.0.0.1", "127.0.0.11", "::1", "fd00:1::11"}) {
				t.Errorf("addresses %v", got)
			}
		})
	}
}
