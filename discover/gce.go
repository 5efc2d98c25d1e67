package discover

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	neturl "net/url"

	"cloud.google.com/go/compute/metadata"
)

const gceSource = "gce metadata"

// gceTransport sends every request to one host, and refuses answers that did
// not come from the metadata server. The GCE metadata package takes its host
// only from the process environment; this makes the host an option without
// touching the environment.
type gceTransport struct {
	host string
	base http.RoundTripper
}

// errNotMetadataServer is an answer without "Metadata-Flavor: Google".
var errNotMetadataServer = errors.New(`the answer lacks "Metadata-Flavor: Google", so it did not come from the GCE metadata server`)

// gceDefaultHost is the GCE metadata server's address, which is also the
// VM's DNS server.
const gceDefaultHost = "169.254.169.254"

func (t gceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = t.host, t.host
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.Header.Get("Metadata-Flavor") != "Google" {
		resp.Body.Close()
		return nil, errNotMetadataServer
	}
	return resp, err
}

// gceInterface is one network interface in the metadata server's recursive
// answer for instance/network-interfaces/.
type gceInterface struct {
	IP             string   `json:"ip"`
	IPv6s          []string `json:"ipv6s"`
	ForwardedIPs   []string `json:"forwardedIps"`
	ForwardedIPv6s []string `json:"forwardedIpv6s"`
}

// gce adds every network interface's internal addresses from the GCE
// metadata server, and the addresses of the forwarding rules of passthrough
// Network Load Balancers that send it traffic (forwarded-ips,
// forwarded-ipv6s): their health checks use those as Host, and the guest
// agent configures them as local routes, so no interface shows them. It
// never calls metadata.OnGCE, which probes 169.254.169.254 wherever it
// runs.
func (d *discoverer) gce(ctx context.Context, res *Result) error {
	host := cmp.Or(d.o.GCEMetadataHost, d.getenv("GCE_METADATA_HOST"), gceDefaultHost)
	hc := d.newClient()
	hc.Transport = gceTransport{host: host, base: hc.Transport}
	client := metadata.NewWithOptions(&metadata.Options{Client: hc})
	const path = "instance/network-interfaces/?recursive=true&alt=json"
	url := "http://" + host + "/computeMetadata/v1/" + path
	res.note("asking the GCE metadata server at %s", host)

	body, err := client.GetWithContext(ctx, path)
	if err != nil {
		// The client's URL names the host it would have used; the
		// SourceError names the one asked.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var me *metadata.Error
		if errors.As(err, &me) {
			err = &statusError{Code: me.Code}
		}
		hint := genericHint(err, gceSource, nil)
		if errors.Is(err, errNotMetadataServer) {
			hint = "something else answered at " + host + " (a captive portal, a proxy in between): check Options.GCEMetadataHost or GCE_METADATA_HOST, and whether this is GCE"
		}
		return &SourceError{Source: gceSource, URL: url, Err: err, Hint: hint}
	}
	var ifaces []gceInterface
	if err := json.Unmarshal([]byte(body), &ifaces); err != nil {
		return &SourceError{Source: gceSource, URL: url, Err: fmt.Errorf("garbage answer (%v): %q", err, truncate(body))}
	}
	forwarded := 0
	for i, ifc := range ifaces {
		add := func(field string, values []string) error {
			for _, s := range values {
				// An IPv6 forwarding rule may be listed as its range
				// (".../96"); its health checks use the range's address.
				a, err := netip.ParseAddr(s)
				if p, perr := netip.ParsePrefix(s); err != nil && perr == nil {
					a, err = p.Addr(), nil
				}
				if err != nil || a.Zone() != "" {
					return &SourceError{Source: gceSource, URL: url,
						Err: fmt.Errorf("garbage answer: interface %d %s: %q is not an IP address", i, field, truncate(s))}
				}
				res.add(a, fmt.Sprintf("%s network-interfaces/%d/%s", gceSource, i, field))
			}
			return nil
		}
		var own []string
		if ifc.IP != "" {
			own = append(own, ifc.IP)
		}
		for _, f := range []struct {
			name   string
			values []string
		}{{"ip", own}, {"ipv6s", ifc.IPv6s}, {"forwarded-ips", ifc.ForwardedIPs}, {"forwarded-ipv6s", ifc.ForwardedIPv6s}} {
			if err := add(f.name, f.values); err != nil {
				return err
			}
		}
		for _, ip := range append(append([]string{}, ifc.ForwardedIPs...), ifc.ForwardedIPv6s...) {
			forwarded++
			res.note("%s is a forwarded IP of interface %d: the address of a passthrough Network Load Balancer's forwarding rule that sends this VM traffic; its health checks use it as Host unless they set host", ip, i)
		}
	}
	if forwarded == 0 {
		res.note("no forwarded IPs: no passthrough Network Load Balancer sends this VM traffic (proxy load balancers check the VM's own address)")
	}
	if len(res.Addresses) == 0 {
		return &SourceError{Source: gceSource, URL: url, Err: errors.New("the metadata server listed no address")}
	}
	return nil
}
