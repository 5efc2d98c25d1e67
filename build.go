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

// compile parses the entries and builds the list, or returns an
// *EntryError for every bad entry, in order.
func compile(entries []string) (*list, []error) {
	b := builder{
		l:          &list{v4: map[uint64]portRule{}, v6: map[netip.Prefix]portRule{}},
		exactRules: map[string]portRule{},
		subdomains: map[string]portRule{},
	}
	var errs []error
	for _, text := range entries {
		e, err := parseEntry(text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.add(e)
	}
	if errs != nil {
		return nil, errs
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
		l.admitsIPs = true
		if a := e.prefix.Addr(); a.Is4() {
			// By one integer, which hashes faster than a netip.Prefix.
			addRule(l.v4, v4Key(a.As4(), e.prefix.Bits()), e.port, e.text)
			l.bits4 = appendUnique(l.bits4, e.prefix.Bits())
		} else {
			addRule(l.v6, e.prefix, e.port, e.text)
			l.bits6 = appendUnique(l.bits6, e.prefix.Bits())
		}
	case entryName:
		addRule(b.exactRules, e.name, e.port, e.text)
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
