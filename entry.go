package hostguard

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// EntryError is returned by [New] for an allow-list entry that is not valid.
type EntryError struct {
	Entry  string // the entry as given
	Reason string // what is wrong with it, and how to fix it
}

// Error names the entry and says what is wrong with it.
func (e *EntryError) Error() string {
	return fmt.Sprintf("hostguard: invalid allow-list entry %q: %s", e.Entry, e.Reason)
}

// entryKind is what an allow-list entry admits.
type entryKind uint8

const (
	entrySelf       entryKind = iota // "@self"
	entryAny                         // "*"
	entryIP                          // an address or a CIDR range
	entryName                        // "example.com"
	entryDomain                      // ".example.com": the name and its subdomains
	entrySubdomains                  // "*.example.com": its subdomains only
)

// entry is a parsed allow-list entry.
type entry struct {
	text   string // as given
	kind   entryKind
	prefix netip.Prefix // entryIP
	name   string       // the name kinds: lower case, punycode, no trailing dot
	port   uint16       // 0: any port
}

// parseEntry parses one allow-list entry, or says what is wrong with it
// and what to write instead.
func parseEntry(text string) (entry, error) {
	switch {
	case text == "":
		return badEntry(text, "empty entry; remove it")
	case strings.ContainsAny(text, " \t\r\n\v\f"):
		return badEntry(text, "contains white space; give one host per entry, without spaces")
	case text == SelfEntry:
		return entry{text: text, kind: entrySelf}, nil
	case strings.HasPrefix(text, "@"):
		return badEntry(text, "unknown special entry; the only one is %q", SelfEntry)
	case text == "*":
		return entry{text: text, kind: entryAny}, nil
	case strings.Contains(text, "://"):
		return badEntry(text, "a URL is not a host; give the host name alone, for example %q", hostOfURL(text))
	case strings.Contains(text, "/"):
		return parseRange(text)
	}
	return parseHostEntry(text)
}

// parseHostEntry parses an entry that names hosts: a name, a domain
// (".x", "*.x") or an address, each with an optional port.
func parseHostEntry(text string) (entry, error) {
	e := entry{text: text, kind: entryName}
	rest := text // what remains after the wildcard prefix
	switch {
	case strings.HasPrefix(text, "*."):
		e.kind, rest = entrySubdomains, text[2:]
	case strings.HasPrefix(text, "."):
		e.kind, rest = entryDomain, text[1:]
	}
	wildcard := e.kind != entryName
	if strings.Contains(rest, "*") {
		return badEntry(text, "'*' is allowed only alone (every host) or as a leading \"*.\" (every subdomain), as in \"*.example.com\"")
	}
	if isBareIPv6(rest) {
		return parseBareIPv6(text, rest, wildcard)
	}
	ascii, err := toASCII(rest)
	if err != nil {
		return badEntry(text, "%v", err)
	}
	var h host
	if r := h.parse(ascii); r != ReasonNone {
		return badEntry(text, "%s", r)
	}
	e.port = h.port
	if !h.isIP() {
		e.name = strings.ToLower(h.name)
		return e, nil
	}
	if wildcard {
		return badEntry(text, "a wildcard applies to names, not to IP addresses; use a CIDR range such as \"10.0.0.0/8\"")
	}
	e.kind, e.prefix = entryIP, netip.PrefixFrom(h.addr, h.addr.BitLen())
	return e, nil
}

// isBareIPv6 reports whether s looks like an IPv6 address written without
// brackets ("2001:db8::1"), or holds a zone id outside brackets.
func isBareIPv6(s string) bool {
	return strings.Count(s, ":") >= 2 && strings.Trim(s, "0123456789abcdefABCDEF:.%") == "" ||
		strings.Contains(s, "%") && !strings.HasPrefix(s, "[")
}

// badEntry is the error for an entry: what is wrong and what to write
// instead.
func badEntry(text, format string, args ...any) (entry, error) {
	return entry{}, &EntryError{Entry: text, Reason: fmt.Sprintf(format, args...)}
}

// parseBareIPv6 parses an IPv6 address written without brackets, the
// rest of text after a wildcard prefix if it had one.
func parseBareIPv6(text, rest string, wildcard bool) (entry, error) {
	a, err := netip.ParseAddr(rest)
	if err != nil {
		return badEntry(text, "not an IPv6 address (%v); write an IPv6 address with a port as \"[2001:db8::1]:8080\"", err)
	}
	if a.Zone() != "" {
		return badEntry(text, "an IPv6 zone id can never appear in a Host; remove %q", "%"+a.Zone())
	}
	if wildcard {
		return badEntry(text, "a wildcard applies to names, not to IP addresses; use a CIDR range such as \"2001:db8::/32\"")
	}
	return entry{text: text, kind: entryIP, prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

// parseRange parses an entry with a '/': a CIDR range.
func parseRange(text string) (entry, error) {
	addr, _, _ := strings.Cut(text, "/")
	if _, err := netip.ParseAddr(addr); err != nil {
		return badEntry(text, "contains '/': a path is not part of a host; give the host name alone")
	}
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return badEntry(text, "not a CIDR range (%v); write it as \"10.0.0.0/8\" or \"fd00::/8\"", err)
	}
	if p.Addr().Zone() != "" {
		return badEntry(text, "a CIDR range cannot carry an IPv6 zone id")
	}
	if m := p.Masked(); m != p {
		return badEntry(text, "host bits are set; did you mean %q?", m.String())
	}
	return entry{text: text, kind: entryIP, prefix: p}, nil
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
