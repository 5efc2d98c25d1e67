package discover

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

const azureSource = "azure imds"

type azureInstance struct {
	Network struct {
		Interface []struct {
			IPv4 struct {
				IPAddress []struct {
					PrivateIPAddress string `json:"privateIpAddress"`
				} `json:"ipAddress"`
			} `json:"ipv4"`
			IPv6 struct {
				IPAddress []struct {
					PrivateIPAddress string `json:"privateIpAddress"`
				} `json:"ipAddress"`
			} `json:"ipv6"`
		} `json:"interface"`
	} `json:"network"`
}

// azure adds every interface's private addresses from Azure IMDS.
// Application Gateway's default probe uses 127.0.0.1, which the local
// interfaces add.
func (d *discoverer) azure(ctx context.Context, res *Result) error {
	endpoint := cmp.Or(d.o.AzureEndpoint, d.getenv("HOSTGUARD_AZURE_ENDPOINT"), "http://169.254.169.254")
	url := strings.TrimRight(endpoint, "/") + "/metadata/instance?api-version=2021-02-01"
	res.note("asking Azure IMDS at %s", endpoint)
	var inst azureInstance
	// Azure IMDS answers 429 past about 5 requests a second per VM, and
	// 410 or 5xx during maintenance: retried within the deadline.
	r := fetchRequest{source: azureSource, url: url, header: http.Header{"Metadata": {"true"}}, retry410: true}
	if err := d.getJSON(ctx, r, &inst, res); err != nil {
		return err
	}
	for _, ifc := range inst.Network.Interface {
		var all []string
		for _, a := range ifc.IPv4.IPAddress {
			all = append(all, a.PrivateIPAddress)
		}
		for _, a := range ifc.IPv6.IPAddress {
			all = append(all, a.PrivateIPAddress)
		}
		for _, s := range all {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return &SourceError{Source: azureSource, URL: url, Err: errors.New("garbage answer: " + quote(truncate(s)) + " is not an IP address")}
			}
			res.add(a, azureSource+" network.interface")
		}
	}
	if len(res.Addresses) == 0 {
		return &SourceError{Source: azureSource, URL: url, Err: errors.New("IMDS listed no private address")}
	}
	return nil
}
