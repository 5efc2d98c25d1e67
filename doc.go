// Package hostguard validates the Host of HTTP requests against an allow
// list, as Django's ALLOWED_HOSTS, Rails' config.hosts and ASP.NET Core's
// AllowedHosts do, and adds what those lack behind a cloud load balancer:
// CIDR ranges and the "@self" entry, the addresses under which the load
// balancer's health checks reach this instance.
//
// A Guard is built once with [New] and then used as net/http middleware
// through [Guard.Handler], or as a pure check through [Guard.Allow]. Checks
// do not allocate and cost the same whatever the size of the list. A
// server other than net/http checks a request with [Guard.CheckRequest]
// and acts on the [Verdict].
//
// The Host grammar is Django's: after lower-casing, a value must match
//
//	^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$
//
// and one trailing dot is dropped before matching. hostguard is stricter
// than Django only for structurally broken hosts, each with its [Reason]:
// an empty label ("a..b", a leading dot), a label over 63 or a name over 253
// characters, a port outside 1-65535, a bracketed literal that is not an IPv6
// address, an IPv6 zone id, and a name whose last label is a number but that
// is not a dotted-quad IPv4 address ("010.1", "0x7f.1", "1.2.3"), which
// browsers would read as an IPv4 address.
//
// The addresses behind "@self" come from the discover subpackage, or from
// anything else, through [Guard.SetSelf].
package hostguard
