package hostguard

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
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
	// a host only looks up the parent domains that could be in the map.
	domainLabels [2]uint64
	ips          map[netip.Prefix]portRule // IPv6 addresses (/128) and ranges
	v4           map[uint64]portRule       // IPv4 addresses (/32) and ranges, by v4Key
	bits4, bits6 []int                     // distinct prefix lengths in ips, longest first
	entries      []string                  // entries as given, in order
	firstName    string                    // the first exact name entry without port, normalised
	admitsIPs    bool                      // some entry can admit an IP-literal host
}

// EntryError is returned by [New] for an allow-list entry that is not valid.
type EntryError struct {
	Entry  string // the entry as given
	Reason string // what is wrong with it, and how to fix it
}

// Error names the entry and says what is wrong with it.
func (e *EntryError) Error() string {
	return fmt.Sprintf("hostguard: invalid allow-list entry %q: %s", e.Entry, e.Reason)
}

// builder collects the name entries of a list before they are frozen into
// tables.
type builder struct {
	*list
	names   map[string]portRule
	domains map[string]portRule
}

func compile(entries []string) (*list, error) {
	b := builder{
		list:    &list{ips: map[netip.Prefix]portRule{}},
		names:   map[string]portRule{},
		domains: map[string]portRule{},
	}
	for _, e := range entries {
		if err := b.add(e); err != nil {
			return nil, err
		}
	}
	l := b.list
	l.names, l.domains = buildNameTable(b.names), buildNameTable(b.domains)
	// IPv4 entries move to a map keyed by one integer, which hashes
	// faster than a netip.Prefix.
	for p, r := range l.ips {
		if p.Addr().Is4() {
			l.bits4 = appendUnique(l.bits4, p.Bits())
			if l.v4 == nil {
				l.v4 = map[uint64]portRule{}
			}
			l.v4[v4Key(p.Addr().As4(), p.Bits())] = r
			delete(l.ips, p)
		} else {
			l.bits6 = appendUnique(l.bits6, p.Bits())
		}
	}
	slices.SortFunc(l.bits4, func(a, b int) int { return b - a })
	slices.SortFunc(l.bits6, func(a, b int) int { return b - a })
	return l, nil
}

func appendUnique(s []int, v int) []int {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// addRule adds an entry for key to m. The maps hold rules by value so that a
// lookup touches no other memory.
func addRule[K comparable](m map[K]portRule, key K, port uint16, entry string) {
	r := m[key]
	r.add(port, entry)
	m[key] = r
}

func (l *builder) add(entry string) error {
	bad := func(format string, args ...any) error {
		return &EntryError{Entry: entry, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case entry == "":
		return bad("empty entry; remove it")
	case strings.ContainsAny(entry, " \t\r\n\v\f"):
		return bad("contains white space; give one host per entry, without spaces")
	case entry == SelfEntry:
		l.self, l.admitsIPs = true, true
		l.entries = append(l.entries, entry)
		return nil
	case strings.HasPrefix(entry, "@"):
		return bad("unknown special entry; the only one is %q", SelfEntry)
	case entry == "*":
		l.any, l.admitsIPs = entry, true
		l.entries = append(l.entries, entry)
		return nil
	case strings.Contains(entry, "://"):
		return bad("a URL is not a host; give the host name alone, for example %q", hostOfURL(entry))
	case strings.Contains(entry, "/"):
		return l.addPrefix(entry, bad)
	}

	kind := entry // what remains after the wildcard prefix
	star, dot := false, false
	switch {
	case strings.HasPrefix(entry, "*."):
		star, kind = true, entry[2:]
	case strings.HasPrefix(entry, "."):
		dot, kind = true, entry[1:]
	}
	if strings.Contains(kind, "*") {
		return bad("'*' is allowed only alone (every host) or as a leading \"*.\" (every subdomain), as in \"*.example.com\"")
	}
	// An IPv6 address without brackets ("2001:db8::1").
	if strings.Count(kind, ":") >= 2 && strings.Trim(kind, "0123456789abcdefABCDEF:.%") == "" ||
		strings.Contains(kind, "%") && !strings.HasPrefix(kind, "[") {
		a, err := netip.ParseAddr(kind)
		if err != nil {
			return bad("not an IPv6 address (%v); write an IPv6 address with a port as \"[2001:db8::1]:8080\"", err)
		}
		if a.Zone() != "" {
			return bad("an IPv6 zone id can never appear in a Host; remove %q", "%"+a.Zone())
		}
		if star || dot {
			return bad("a wildcard applies to names, not to IP addresses; use a CIDR range such as \"2001:db8::/32\"")
		}
		l.addIP(netip.PrefixFrom(a, a.BitLen()), 0, entry)
		return nil
	}
	ascii, err := toASCII(kind)
	if err != nil {
		return bad("%v", err)
	}
	var h host
	r := h.parse(ascii)
	if r != ReasonNone {
		return bad("%s", r)
	}
	if h.isIP() {
		if star || dot {
			return bad("a wildcard applies to names, not to IP addresses; use a CIDR range such as \"10.0.0.0/8\"")
		}
		l.addIP(netip.PrefixFrom(h.addr, h.addr.BitLen()), h.port, entry)
		return nil
	}
	name := strings.ToLower(h.name)
	switch {
	case star:
		addRule(l.domains, name, h.port, entry)
		l.setLabels(name)
	case dot:
		addRule(l.names, name, h.port, entry)
		addRule(l.domains, name, h.port, entry)
		l.setLabels(name)
	default:
		addRule(l.names, name, h.port, entry)
		if l.firstName == "" && h.port == 0 {
			l.firstName = name
		}
	}
	l.entries = append(l.entries, entry)
	return nil
}

func (l *list) addPrefix(entry string, bad func(string, ...any) error) error {
	addr, _, _ := strings.Cut(entry, "/")
	if _, err := netip.ParseAddr(addr); err != nil {
		return bad("contains '/': a path is not part of a host; give the host name alone")
	}
	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return bad("not a CIDR range (%v); write it as \"10.0.0.0/8\" or \"fd00::/8\"", err)
	}
	if p.Addr().Zone() != "" {
		return bad("a CIDR range cannot carry an IPv6 zone id")
	}
	if m := p.Masked(); m != p {
		return bad("host bits are set; did you mean %q?", m.String())
	}
	l.addIP(p, 0, entry)
	return nil
}

func (l *list) addIP(p netip.Prefix, port uint16, entry string) {
	addRule(l.ips, p, port, entry)
	l.admitsIPs = true
	l.entries = append(l.entries, entry)
}

func (l *list) setLabels(name string) {
	n := labelCount(name)
	if n > 127 {
		n = 127
	}
	l.domainLabels[n/64] |= 1 << (n % 64)
}

func labelCount(name string) int {
	return strings.Count(name, ".") + 1
}

// toASCII converts an internationalised name to its punycode form. The port,
// if any, is kept as it is.
func toASCII(s string) (string, error) {
	if isASCII(s) {
		return s, nil
	}
	name, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		name, port = s[:i], s[i:]
	}
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("not valid UTF-8")
	}
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
	if err != nil {
		return "", fmt.Errorf("not a valid internationalised domain name: %v", err)
	}
	return a + port, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hostOfURL returns the host part of a URL-looking entry, for error hints.
func hostOfURL(s string) string {
	s = s[strings.Index(s, "://")+3:]
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// quick decides the common cases before the full parse, which it leaves to
// match when it reports decided false:
//
//   - a hit on a name: the name part of s (up to the first ':', without one
//     trailing dot) equals a name in the list, ignoring case, and the port
//     is valid and allowed. The list's names are well formed, so a name
//     equal to one of them is too, and needs no further check.
//   - a hit on a domain: a proper parent domain of the name part is a
//     ".x"/"*.x" entry that allows the port, and the labels in front of it
//     are well formed.
//   - a miss, when names and domains are all the list can admit, or when s
//     cannot be an IP literal: s is then either malformed or not allowed,
//     and Allow need not know which. An invalid port is a miss too.
//
// When it leaves the decision to match, no exact name allows s: match is
// told so and skips that lookup. (It returns early only for "*", which
// match answers first, and for values no name can match: empty ones and
// bracketed IPv6 literals.)
func (l *list) quick(s string) (allowed, decided bool) {
	if l.any != "" || s == "" || s[0] == '[' {
		return false, false
	}
	p, port, state := splitPort(s)
	switch state {
	case portBad:
		return false, true
	case portUnknown:
		// A long run of digits at the end: find the port the slow way.
		p, port = strings.IndexByte(s, ':'), 0
		if p < 0 {
			p = len(s)
		} else {
			var r Reason
			if port, r = parsePort(s[p+1:]); r != ReasonNone {
				return false, true
			}
		}
	}
	n := p
	if n > 0 && s[n-1] == '.' {
		n--
	}
	name := s[:n]
	if r, ok := l.names.lookup(name); ok {
		_, ok := r.match(port)
		return ok, ok
	}
	if n <= maxNameLen {
		if _, dot, ok := l.matchDomain(name, port); ok {
			return validLabels(name[:dot]), true
		}
	}
	// Only an IP literal can still pass (there is no "*" here), if the list
	// admits any, and an IP literal ends in a digit.
	return false, !l.admitsIPs || n > 0 && (name[n-1] < '0' || name[n-1] > '9')
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

// match matches a parsed host against the list. It returns the entry that
// allowed it, or "" and false. It does not consult @self. afterQuick says
// that quick found no exact name that allows h.
func (l *list) match(h *host, afterQuick bool) (string, bool) {
	if l.any != "" {
		return l.any, true
	}
	if h.addr.Is4() {
		return l.matchV4(h.addr.As4(), h.port)
	}
	if h.isIP() {
		for _, b := range l.bits6 {
			p, _ := h.addr.Prefix(b)
			if r, ok := l.ips[p]; ok {
				if e, ok := r.match(h.port); ok {
					return e, true
				}
			}
		}
		return "", false
	}
	if !afterQuick {
		if r, ok := l.names.lookup(h.name); ok {
			if e, ok := r.match(h.port); ok {
				return e, true
			}
		}
	}
	e, _, ok := l.matchDomain(h.name, h.port)
	return e, ok
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
		n := labels
		if n > 127 {
			n = 127
		}
		if l.domainLabels[n/64]&(1<<(n%64)) != 0 {
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
