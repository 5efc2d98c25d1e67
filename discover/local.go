package discover

import (
	"fmt"
	"net"
	"net/netip"
)

// SystemInterfaces lists the machine's network interfaces that are up.
func SystemInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Interface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		i := Interface{Name: ifc.Name}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					i.Addrs = append(i.Addrs, ip.Unmap())
				}
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// local adds the private (RFC 1918), unique-local (fc00::/7) and loopback
// addresses of the local interfaces. Public and link-local addresses are
// left out: a load balancer's health check does not use them as Host.
func (d *discoverer) local(res *Result) error {
	list := d.o.Interfaces
	if list == nil {
		list = SystemInterfaces
	}
	ifs, err := list()
	if err != nil {
		return &SourceError{Source: "local interfaces", Err: err}
	}
	for _, ifc := range ifs {
		for _, a := range ifc.Addrs {
			if a.Zone() == "" && (a.IsPrivate() || a.IsLoopback()) {
				res.add(a, "interface "+ifc.Name)
			}
		}
	}
	return nil
}
