package hostguard

import (
	"net/netip"
	"slices"
)

// builder collects the entries of a list before they are frozen into the
// list's lookup tables.
type builder struct {
	l          *list
	exactRules map[string]portRule // exact names, and the apex of ".x"
	subdomains map[string]portRule // x of ".x" and "*.x"
}

// compile parses the entries and builds the list.
func compile(entries []string) (*list, error) {
	b := builder{
		l:          &list{ips: map[netip.Prefix]portRule{}},
		exactRules: map[string]portRule{},
		subdomains: map[string]portRule{},
	}
	for _, text := range entries {
		e, err := parseEntry(text)
		if err != nil {
			return nil, err
		}
		b.add(e)
	}
	return b.build(), nil
}

// add adds a parsed entry.
func (b *builder) add(e entry) {
	l := b.l
	l.entries = append(l.entries, e.text)
	switch e.kind {
	case entrySelf:
		l.self, l.admitsIPs = true, true
	case entryAny:
		l.any, l.admitsIPs = e.text, true
	case entryIP:
		addRule(l.ips, e.prefix, e.port, e.text)
		l.admitsIPs = true
	case entryName:
		addRule(b.exactRules, e.name, e.port, e.text)
		if l.firstName == "" && e.port == 0 {
			l.firstName = e.name
		}
	case entryDomain:
		addRule(b.exactRules, e.name, e.port, e.text)
		fallthrough
	case entrySubdomains:
		addRule(b.subdomains, e.name, e.port, e.text)
		word, bit := labelBit(labelCount(e.name))
		l.domainLabels[word] |= bit
	}
}

// build freezes the collected rules into the list's tables.
func (b *builder) build() *list {
	l := b.l
	l.names, l.domains = buildNameTable(b.exactRules), buildNameTable(b.subdomains)
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
	return l
}

// addRule adds an entry for key to m. The maps hold rules by value so that a
// lookup touches no other memory.
func addRule[K comparable](m map[K]portRule, key K, port uint16, entry string) {
	r := m[key]
	r.add(port, entry)
	m[key] = r
}

func appendUnique(s []int, v int) []int {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
