package hostguard

import (
	"net"
	"regexp"
	"strconv"
	"strings"
)

// This file holds a slow matcher written for obviousness, not speed, from
// the rules in the package documentation. The fuzz targets check that the
// real matcher agrees with it on every input.

var djangoHost = regexp.MustCompile(`^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$`)

type refHost struct {
	name string // lower case, no trailing dot; empty for IPs
	ip   net.IP // nil for names
	v6   bool   // bracketed literal
	port int    // 0: none
}

func refParse(s string) (refHost, bool) {
	var h refHost
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return h, false
		}
	}
	s = strings.ToLower(s)
	if !djangoHost.MatchString(s) {
		return h, false
	}
	hostPart, portPart := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		hostPart, portPart = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		ip := net.ParseIP(hostPart)
		if ip == nil || strings.Contains(hostPart, ".") && !strings.Contains(hostPart, ":") {
			return h, false
		}
		h.ip, h.v6 = ip, true
	} else {
		if i := strings.LastIndex(s, ":"); i >= 0 {
			hostPart, portPart = s[:i], s[i+1:]
		}
		hostPart = strings.TrimSuffix(hostPart, ".")
		if hostPart == "" || len(hostPart) > 253 {
			return h, false
		}
		labels := strings.Split(hostPart, ".")
		for _, l := range labels {
			if l == "" || len(l) > 63 {
				return h, false
			}
		}
		last := labels[len(labels)-1]
		numeric := strings.Trim(last, "0123456789") == "" ||
			strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == ""
		if numeric {
			ip := net.ParseIP(hostPart)
			if ip == nil || ip.To4() == nil {
				return h, false
			}
			h.ip = ip.To4()
		} else {
			h.name = hostPart
		}
	}
	if portPart != "" {
		p, err := strconv.Atoi(portPart)
		if err != nil || p < 1 || p > 65535 {
			return h, false
		}
		h.port = p
	}
	return h, true
}

// refAllow decides like Guard.Allow for the ASCII entries it understands.
func refAllow(entries []string, self []string, s string) bool {
	h, ok := refParse(s)
	if !ok {
		return false
	}
	for _, e := range entries {
		if refEntry(e, self, h) {
			return true
		}
	}
	return false
}

func refEntry(e string, self []string, h refHost) bool {
	switch {
	case e == "*":
		return true
	case e == "@self":
		for _, a := range self {
			if h.ip != nil && sameIP(h, net.ParseIP(a), strings.Contains(a, ":")) {
				return true
			}
		}
		return false
	case strings.Contains(e, "/"):
		_, n, err := net.ParseCIDR(e)
		if err != nil || h.ip == nil {
			return false
		}
		v6entry := strings.Contains(e, ":")
		return v6entry == h.v6 && n.Contains(h.ip)
	case strings.Count(e, ":") >= 2 && !strings.HasPrefix(e, "["):
		return h.ip != nil && sameIP(h, net.ParseIP(e), true)
	}
	eh, ok := refParse(strings.TrimPrefix(strings.TrimPrefix(e, "*"), "."))
	if !ok {
		return false
	}
	if eh.port != 0 && eh.port != h.port {
		return false
	}
	if eh.ip != nil {
		return h.ip != nil && sameIP(h, eh.ip, eh.v6)
	}
	if h.ip != nil {
		return false
	}
	switch {
	case strings.HasPrefix(e, "*."):
		return strings.HasSuffix(h.name, "."+eh.name)
	case strings.HasPrefix(e, "."):
		return h.name == eh.name || strings.HasSuffix(h.name, "."+eh.name)
	}
	return h.name == eh.name
}

// sameIP compares addresses of the same family only: an IPv4-mapped IPv6
// address is not the IPv4 address.
func sameIP(h refHost, ip net.IP, v6 bool) bool {
	return ip != nil && h.v6 == v6 && h.ip.Equal(ip)
}
