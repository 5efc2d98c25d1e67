package hostguard

import (
	"net/netip"
	"strings"
)

// SelfEntry is the allow-list entry that stands for the addresses under which
// this instance is reached by its load balancer. See [Guard.SetSelf].
const SelfEntry = "@self"

// portRule holds the entries that allow one key (a name, a domain or an IP
// prefix): on any port, or on listed ports only.
type portRule struct {
	anyPort string      // the entry that allows every port, "" if none
	ports   []portEntry // entries that allow one port each
}

type portEntry struct {
	port  uint16
	entry string
}

// match returns the entry that allows port (0: the Host had no port).
func (r *portRule) match(port uint16) (string, bool) {
	if r.anyPort != "" {
		return r.anyPort, true
	}
	if port == 0 {
		return "", false
	}
	for i := range r.ports {
		if r.ports[i].port == port {
			return r.ports[i].entry, true
		}
	}
	return "", false
}

func (r *portRule) add(port uint16, entry string) {
	if port == 0 {
		if r.anyPort == "" {
			r.anyPort = entry
		}
		return
	}
	for _, p := range r.ports {
		if p.port == port {
			return
		}
	}
	r.ports = append(r.ports, portEntry{port, entry})
}

// list is a compiled allow list. It is immutable after compile, so any
// number of goroutines may match against it.
type list struct {
	any     string    // the "*" entry, "" if absent
	self    bool      // "@self" present
	names   nameTable // exact names; also the apex of ".x" entries
	domains nameTable // "x" for ".x" and "*.x": proper subdomains of x
	// domainLabels has bit n set when some key of domains has n labels, so
	// a host only looks up the parent domains that could be in the table.
	domainLabels [2]uint64
	v4           map[uint64]portRule       // IPv4 addresses (/32) and ranges, by v4Key
	v6           map[netip.Prefix]portRule // IPv6 addresses (/128) and ranges
	bits4, bits6 []int                     // distinct prefix lengths in v4 and v6, longest first
	entries      []string                  // entries as given, in order
	admitsIPs    bool                      // some entry can admit an IP-literal host
}

// match returns the entry that allows the well-formed host h, or "" and
// false. It consults every entry but "@self", whose addresses the Guard
// holds.
func (l *list) match(h *host) (string, bool) {
	switch {
	case l.any != "":
		return l.any, true
	case h.addr.Is4():
		return l.matchV4(h.addr.As4(), h.port)
	case h.isIP():
		return l.matchV6(h.addr, h.port)
	}
	if r, ok := l.names.lookup(h.name); ok {
		if e, ok := r.match(h.port); ok {
			return e, true
		}
	}
	e, _, ok := l.matchDomain(h.name, h.port)
	return e, ok
}

// fastName is the fast path for names. It decides the common cases before
// the full parse:
//
//   - accepted, on a name: the name part of s (up to the first ':', without
//     one trailing dot) equals a name in the list, ignoring case, and the
//     port is valid and allowed. The list's names are well formed, so a
//     name equal to one of them is too, and needs no further check.
//   - accepted, on a domain: a proper parent domain of the name part is a
//     ".x"/"*.x" entry that allows the port, and the labels in front of it
//     are well formed.
//   - refused, when names and domains are all the list can admit, or when
//     s cannot be an IP literal: s is then either malformed or not allowed,
//     and Allow need not know which. An invalid port is refused too.
//
// It is unsure of everything else: a list with "*", an empty value, a
// bracketed IPv6 literal, a name on a port its entry does not allow, and
// what may be an IPv4 address.
func (l *list) fastName(s string) outcome {
	if l.any != "" || s == "" || s[0] == '[' {
		return unsure
	}
	p, port, state := splitPort(s)
	switch state {
	case portBad:
		return refused
	case portUnknown:
		var ok bool
		if p, port, ok = firstPort(s); !ok {
			return refused
		}
	}
	n := p // the name part ends here, without one trailing dot
	if n > 0 && s[n-1] == '.' {
		n--
	}
	name := s[:n]
	if r, ok := l.names.lookup(name); ok {
		if _, ok := r.match(port); ok {
			return accepted
		}
		// Not on this port; a domain entry may still allow it.
		return unsure
	}
	if n <= maxNameLen {
		if _, dot, ok := l.matchDomain(name, port); ok {
			if validLabels(name[:dot]) {
				return accepted
			}
			return refused
		}
	}
	if l.mayAdmitIP(name) {
		return unsure
	}
	return refused
}

// mayAdmitIP reports whether the name part of a Host value that no name
// or domain entry allows may still pass as an IP literal: the list admits
// IP literals (there is no "*" here) and the name ends in a digit, as an
// IPv4 address does.
func (l *list) mayAdmitIP(name string) bool {
	n := len(name)
	return l.admitsIPs && (n == 0 || '0' <= name[n-1] && name[n-1] <= '9')
}

// firstPort finds the port of s the slow way, for a value that ends in
// more digits than splitPort reads: after the first ':', if any. It
// returns the index of that colon (len(s) when there is none) and the
// port, or false when the port is not valid.
func firstPort(s string) (colon int, port uint16, ok bool) {
	colon = strings.IndexByte(s, ':')
	if colon < 0 {
		return len(s), 0, true
	}
	port, r := parsePort(s[colon+1:])
	return colon, port, r == ReasonNone
}

// What splitPort found at the end of a Host value.
const (
	portOK      = iota // a valid port, or none
	portBad            // ":" followed by no digits, or a port of 0 or over 65535
	portUnknown        // more digits than it reads; the full parse decides
)

// splitPort finds the ":port" at the end of s, reading backwards at most
// six bytes, and returns the index of its colon (len(s) when there is none)
// and the port. A value with more than one colon gets the last one; its
// name part then holds a colon and matches nothing, which is right, since
// such a value is malformed.
func splitPort(s string) (colon int, port uint16, state int) {
	v, mul := 0, 1
	for j := len(s) - 1; j >= 0; j-- {
		c := s[j]
		if c == ':' {
			if j == len(s)-1 || v == 0 || v > 65535 {
				return j, 0, portBad
			}
			return j, uint16(v), portOK
		}
		if c < '0' || c > '9' {
			break
		}
		if mul == 100000 {
			return 0, 0, portUnknown // leading zeros, or not a port at all
		}
		v += int(c-'0') * mul
		mul *= 10
	}
	return len(s), 0, portOK
}

// validLabels reports whether s is one or more well-formed labels
// separated by dots: name bytes only, none empty, none over 63 bytes.
func validLabels(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i == start || i-start > maxLabelLen {
				return false
			}
			start = i + 1
			continue
		}
		c := s[i] | 0x20 // lowers letters; a-z then stands for both cases
		if !('a' <= c && c <= 'z' || '0' <= s[i] && s[i] <= '9' || s[i] == '-') {
			return false
		}
	}
	return true
}

// labelBit returns the word and bit of list.domainLabels for a domain of
// n labels; domains of 127 labels or more share the last bit.
func labelBit(n int) (word int, bit uint64) {
	n = min(n, 127)
	return n / 64, 1 << (n % 64)
}

func labelCount(name string) int {
	return strings.Count(name, ".") + 1
}

// v4Key is the key of the IPv4 prefix a/bits in list.v4: the length and
// the masked address in one integer.
func v4Key(a [4]byte, bits int) uint64 {
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	return uint64(bits)<<32 | uint64(v&^(1<<(32-bits)-1))
}

// matchV4 matches an IPv4 address against the list's addresses and ranges,
// one lookup per distinct prefix length.
func (l *list) matchV4(a [4]byte, port uint16) (string, bool) {
	for _, b := range l.bits4 {
		if r, ok := l.v4[v4Key(a, b)]; ok {
			if e, ok := r.match(port); ok {
				return e, true
			}
		}
	}
	return "", false
}

// matchV6 matches an IPv6 address against the list's addresses and
// ranges, one lookup per distinct prefix length.
func (l *list) matchV6(a netip.Addr, port uint16) (string, bool) {
	for _, b := range l.bits6 {
		p, _ := a.Prefix(b)
		if r, ok := l.v6[p]; ok {
			if e, ok := r.match(port); ok {
				return e, true
			}
		}
	}
	return "", false
}

// matchDomain matches a name, in any case, against the domain entries. It
// returns the entry and the index of the dot in front of the domain that
// matched.
func (l *list) matchDomain(name string, port uint16) (string, int, bool) {
	if len(l.domains.slots) == 0 {
		return "", 0, false
	}
	// Walk the proper parent domains, from the top-level one down. labels
	// counts the labels of the suffix after the dot at i.
	labels := 1
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] != '.' {
			continue
		}
		if word, bit := labelBit(labels); l.domainLabels[word]&bit != 0 {
			if r, ok := l.domains.lookup(name[i+1:]); ok {
				if e, ok := r.match(port); ok {
					return e, i, true
				}
			}
		}
		labels++
	}
	return "", 0, false
}
