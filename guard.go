package hostguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hostguard/hostguard/internal/ratelog"
)

// Options configures a [Guard]. The zero value is safe: it allows no host,
// so every request is rejected.
type Options struct {
	// AllowedHosts is the allow list. Entries:
	//
	//	example.com        that name, any case, any port
	//	.example.com       the name and its subdomains at any depth
	//	*.example.com      its subdomains at any depth, not the name itself
	//	*                  every well-formed host
	//	10.0.1.23          that address ("[2001:db8::1]" and "2001:db8::1" for IPv6)
	//	10.0.0.0/8         any IP-literal host inside the range
	//	example.com:8443   that host on that port only ("[::1]:8080" for IPv6)
	//	bücher.example     converted to punycode ("xn--bcher-kva.example")
	//	@self              the addresses set with [Guard.SetSelf]
	//
	// A trailing dot on a name is ignored. An entry that is none of these
	// makes [New] fail with an [*EntryError].
	AllowedHosts []string

	// AllowEmptyHost accepts requests without a Host header or with an
	// empty one (HTTP/1.0 clients, some Classic ELB health checks).
	AllowEmptyHost bool

	// TrustedProxies lists the addresses and CIDR ranges of proxies whose
	// X-Forwarded-Host and Forwarded "host=" values are read. When the
	// immediate peer is one of them, every host in those headers must pass
	// the allow list too. From any other peer the two headers are removed
	// from the request before it reaches the next handler, so it cannot be
	// fooled by them.
	TrustedProxies []string

	// ExemptPaths lists URL paths (exact matches, such as "/health") that
	// are served without a Host check. Prefer "@self": an exempt path
	// answers every Host, which leaks that the path exists to anyone.
	ExemptPaths []string

	// RejectHandler serves rejected requests. [VerdictFromContext] tells
	// it why the request was rejected. Nil: a 400 with a short plain-text
	// body that never repeats the rejected value.
	RejectHandler http.Handler

	// Logger receives one Warn record per logged rejection. Nil:
	// [slog.Default]. Use slog.New(slog.DiscardHandler) to log nothing.
	Logger *slog.Logger

	// LogLimit is the most rejections logged per minute, so a scanner
	// cannot flood the log; the records after a pause count the ones that
	// were left out. Zero means 60; a negative value logs no rejection.
	LogLimit int

	// ReportOnly makes every decision and logs it as usual, but serves a
	// request that would be rejected instead of rejecting it: the way to
	// roll out a list without a user seeing a 400 for a forgotten name.
	// Forwarded headers from untrusted peers are still removed. A
	// RejectHandler is not called; the next handler finds what would have
	// happened with [VerdictFromContext].
	ReportOnly bool
}

// Guard checks the Host of requests against an allow list. Create one with
// [New]; it is safe for concurrent use.
type Guard struct {
	list       *list
	self       atomic.Pointer[selfSet]
	allowEmpty bool
	trusted    []netip.Prefix
	exempt     map[string]bool
	reject     http.Handler    // nil: Reject
	log        *ratelog.Logger // nil: log nothing
	reportOnly bool
}

type selfSet struct {
	addrs []netip.Addr // sorted
	set   map[netip.Addr]struct{}
}

// New compiles the options into a Guard. When allow-list entries, trusted
// proxies or exempt paths are not valid, its error names every one of them
// and says how to fix it: it joins (see [errors.Join]) one error per bad
// value, an [*EntryError] for each allow-list entry, which [errors.As]
// finds.
func New(o Options) (*Guard, error) {
	l, errs := compile(o.AllowedHosts)
	g := &Guard{
		list:       l,
		allowEmpty: o.AllowEmptyHost,
		reject:     o.RejectHandler,
		reportOnly: o.ReportOnly,
	}
	for _, t := range o.TrustedProxies {
		p, err := parseTrusted(t)
		errs = append(errs, err)
		g.trusted = append(g.trusted, p)
	}
	for _, p := range o.ExemptPaths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("hostguard: invalid exempt path %q: a path starts with '/', as in \"/health\"", p))
			continue
		}
		if g.exempt == nil {
			g.exempt = map[string]bool{}
		}
		g.exempt[p] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	switch n := o.LogLimit; {
	case n == 0:
		g.log = ratelog.New(log, time.Second, 60)
	case n > 0:
		g.log = ratelog.New(log, time.Minute/time.Duration(n), n)
	}
	g.self.Store(&selfSet{})
	return g, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("hostguard: invalid trusted proxy %q: %v; write a CIDR range such as \"10.0.0.0/8\" or an address", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("hostguard: invalid trusted proxy %q: %v; write an address such as \"10.0.0.5\" or a CIDR range", s, err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Entries returns the allow list as it was given, in order.
func (g *Guard) Entries() []string { return slices.Clone(g.list.entries) }

// HasSelf reports whether the allow list holds the [SelfEntry] "@self".
func (g *Guard) HasSelf() bool { return g.list.self }

// SetSelf replaces the addresses that "@self" stands for. It is atomic:
// requests being checked see either the old set or the new one, and none
// waits. Invalid addresses are ignored.
func (g *Guard) SetSelf(addrs []netip.Addr) {
	s := &selfSet{set: make(map[netip.Addr]struct{}, len(addrs))}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		if _, dup := s.set[a]; !dup {
			s.set[a] = struct{}{}
			s.addrs = append(s.addrs, a)
		}
	}
	slices.SortFunc(s.addrs, netip.Addr.Compare)
	g.self.Store(s)
}

// Self returns the addresses that "@self" stands for now, sorted.
func (g *Guard) Self() []netip.Addr { return slices.Clone(g.self.Load().addrs) }

// Allow reports whether host, a Host header value such as
// "www.example.org:8443", is well formed and allowed by the list. It does
// not allocate. An empty host is allowed only with [Options.AllowEmptyHost].
func (g *Guard) Allow(host string) bool {
	switch g.fast(host) {
	case accepted:
		return true
	case refused:
		return false
	}
	_, r := g.slow(host)
	return r == ReasonNone
}

// Decision is the outcome of [Guard.Check]: what the list says of one Host
// value. [Verdict] is what it says of a request.
type Decision struct {
	// Host is the normalised host: lower case, without a trailing dot,
	// IP addresses in canonical form, with the port if one was given.
	// Empty when the value was malformed.
	Host string
	// Entry is the allow-list entry that accepted the host, "" if none.
	Entry string
	// Reason is ReasonNone when the host was accepted.
	Reason Reason
}

// Allowed reports whether the list admits the host.
func (d Decision) Allowed() bool { return d.Reason == ReasonNone }

// Check is [Guard.Allow] with an explanation: the normalised host, the entry
// that matched and, for a rejection, the reason.
func (g *Guard) Check(value string) Decision {
	var d Decision
	var h host
	parsed := h.parse(value)
	if parsed == ReasonNone {
		d.Host = normalize(&h)
	}
	d.Entry, d.Reason = g.decide(value, &h, parsed)
	return d
}

func normalize(h *host) string {
	var s string
	switch {
	case h.addr.Is6():
		s = "[" + h.addr.String() + "]"
	case h.addr.IsValid():
		s = h.addr.String()
	default:
		s = strings.ToLower(h.name)
	}
	if h.port != 0 {
		s = fmt.Sprintf("%s:%d", s, h.port)
	}
	return s
}

// The check runs in two stages:
//
//   - fast: the fast paths, which decide the common cases without the full
//     parse: fastIPv4 for a dotted-quad Host (health checks) and
//     list.fastName for a Host whose name is an entry or under a domain
//     entry. They answer accepted, refused or unsure.
//   - slow: the full parse (host.parse), then decide, which matches the
//     parsed host against the whole list (list.match) and @self.
//
// slow depends on nothing the fast paths did: it alone decides every value,
// so Check, which needs the parse for the normalised host and the entry,
// runs it alone. Allow and the middleware run fast first and slow only
// when fast is unsure. FuzzAllow holds the two to the same answers.

// outcome is what the fast paths found.
type outcome uint8

const (
	unsure   outcome = iota // the full check decides
	accepted                // allowed
	refused                 // malformed or not allowed; Allow need not know which
)

// fast runs the fast paths.
func (g *Guard) fast(s string) outcome {
	if g.fastIPv4(s) {
		return accepted
	}
	return g.list.fastName(s)
}

// reason is the allocation-free core of the middleware: Allow with the
// reason for a rejection.
func (g *Guard) reason(s string) Reason {
	if g.fast(s) == accepted {
		return ReasonNone
	}
	_, r := g.slow(s)
	return r
}

// fastIPv4 is the fast path for an IPv4 Host such as a health check's
// "10.0.1.23:80": it accepts s when s is a dotted quad, with a valid port
// or none, that an address, a range or @self allows. Anything else, misses
// included, is left to the other stages.
func (g *Guard) fastIPv4(s string) bool {
	if !g.list.admitsIPs || s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	a, n, ok := parseIPv4(s)
	if !ok {
		return false
	}
	var port uint16
	if rest := s[n:]; rest != "" {
		var r Reason
		if rest[0] != ':' {
			return false // a trailing dot, more labels, a bad byte
		}
		if port, r = parsePort(rest[1:]); r != ReasonNone {
			return false
		}
	}
	if _, ok := g.list.matchV4(a, port); ok {
		return true
	}
	if g.list.self {
		_, ok := g.self.Load().set[netip.AddrFrom4(a)]
		return ok
	}
	return false
}

// slow is the full check of a value: parse, then decide.
func (g *Guard) slow(s string) (string, Reason) {
	var h host
	return g.decide(s, &h, h.parse(s))
}

// decide matches the host h parsed from value, whose parse gave parsed,
// against the list and @self, and returns the entry that allows it or the
// reason it is rejected.
func (g *Guard) decide(value string, h *host, parsed Reason) (string, Reason) {
	if parsed != ReasonNone {
		if parsed == ReasonEmpty && g.allowEmpty && value == "" {
			return "", ReasonNone
		}
		return "", parsed
	}
	if e, ok := g.list.match(h); ok {
		return e, ReasonNone
	}
	if g.list.self && h.isIP() {
		if _, ok := g.self.Load().set[h.addr]; ok {
			return SelfEntry, ReasonNone
		}
	}
	return "", ReasonNotAllowed
}
