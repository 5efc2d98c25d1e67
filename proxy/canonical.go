package proxy

import (
	"net/netip"
	"strings"

	"github.com/hostguard/hostguard"
	"golang.org/x/net/idna"
)

// canonicalName returns the name the proxy sends the upstream in place of
// an IP-literal Host when Options.CanonicalHost is empty: the first entry
// of g's list that names exactly one host on any port (not a wildcard, an
// address, a range or host:port), as the list normalises it (lower case,
// punycode, no trailing dot), or "" if there is none. admitsIPs says
// whether some entry can admit an IP-literal Host ("@self", "*", an
// address or a range), so that a name is needed.
func canonicalName(g *hostguard.Guard) (name string, admitsIPs bool) {
	for _, e := range g.Entries() {
		switch {
		case e == hostguard.SelfEntry || e == "*" || strings.Contains(e, "/"):
			admitsIPs = true // "@self", every host, or a CIDR range
			continue
		case strings.HasPrefix(e, ".") || strings.HasPrefix(e, "*."):
			continue // a domain
		case strings.Count(e, ":") >= 2 && !strings.HasPrefix(e, "["):
			admitsIPs = true // an IPv6 address without brackets
			continue
		}
		// A name or an address, with or without a port. The list admits
		// its own entry, and Check says how it normalises it.
		d := g.Check(e)
		if !d.Allowed() {
			// A name in Unicode, which the list holds in punycode.
			a, err := idna.Lookup.ToASCII(strings.TrimSuffix(e, "."))
			if err != nil {
				continue
			}
			if d = g.Check(a); !d.Allowed() {
				continue
			}
		}
		switch {
		case isIPLiteral(d.Host):
			admitsIPs = true
		case name == "" && !strings.Contains(d.Host, ":"):
			name = d.Host
		}
	}
	return name, admitsIPs
}

// isIPLiteral reports whether h, a Host value, names an IP address rather
// than a host name: a bracketed IPv6 address or a dotted-quad IPv4 address
// (one trailing dot allowed), each with a valid port or none. It reads
// these forms as the Guard's grammar does ("010.1" and "[1.2.3.4]" are
// neither) and does not allocate.
func isIPLiteral(h string) bool {
	var port string
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		port = h[end+1:]
	} else {
		addr := h
		if i := strings.IndexByte(h, ':'); i >= 0 {
			addr, port = h[:i], h[i:]
		}
		a, err := netip.ParseAddr(strings.TrimSuffix(addr, "."))
		if err != nil || !a.Is4() {
			return false
		}
	}
	return port == "" || port[0] == ':' && validPort(port[1:])
}

// validPort reports whether s is a port as the Guard reads one: decimal
// digits (leading zeros allowed) for a number from 1 to 65535.
func validPort(s string) bool {
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		v = min(v*10+int(s[i]-'0'), 1<<20) // saturates on a long run of digits
	}
	return v >= 1 && v <= 65535
}
