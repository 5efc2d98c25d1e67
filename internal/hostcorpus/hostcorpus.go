// Package hostcorpus is hostguard's conformance corpus of Host values: the
// grammar cases with their expected outcome, the bypasses that hit peer
// libraries, and the fuzz seeds with the allow lists they run against. The
// library's tests check the Guard on it; the proxy's tests send every value
// through the proxy and compare its verdict with the Guard's.
package hostcorpus

import "strings"

// GrammarCase is a Host value checked against the list "*", with the name
// of the Reason it must get (without the "Reason" prefix) and its
// normalised form when accepted.
type GrammarCase struct {
	Host, Reason, Norm string
}

// Grammar returns the grammar cases.
func Grammar() []GrammarCase {
	long63 := strings.Repeat("a", 63)
	cases := []GrammarCase{
		{"example.com", "None", "example.com"},
		{"EXAMPLE.Com", "None", "example.com"},
		{"example.com.", "None", "example.com"},
		{"example.com.:8080", "None", "example.com:8080"},
		{"example.com:080", "None", "example.com:80"},
		{"localhost", "None", "localhost"},
		{"-a.example", "None", "-a.example"}, // Django allows hyphens anywhere
		{"10.0.1.23", "None", "10.0.1.23"},
		{"10.0.1.23:80", "None", "10.0.1.23:80"},
		{"[::1]", "None", "[::1]"},
		{"[2001:DB8:0::1]:443", "None", "[2001:db8::1]:443"},
		{"[::ffff:10.0.0.1]", "None", "[::ffff:10.0.0.1]"},
		{long63 + ".com", "None", long63 + ".com"},
		{"a:65535", "None", "a:65535"},

		{"", "Empty", ""},
		{"a..b", "EmptyLabel", ""},
		{".a", "EmptyLabel", ""},
		{".", "EmptyLabel", ""},
		{"a..", "EmptyLabel", ""},
		{":80", "EmptyLabel", ""},
		{long63 + "a.com", "LabelTooLong", ""},
		{strings.Repeat("a.", 127) + "ab", "NameTooLong", ""},
		{"a:0", "BadPort", ""},
		{"a:65536", "BadPort", ""},
		{"a:99999999999999999999", "BadPort", ""},
		{"a:", "BadPort", ""},
		{"a:8x", "BadPort", ""},
		{"a:-1", "BadPort", ""},
		{"a:80:80", "SecondPort", ""},
		{"[::1]:80:80", "SecondPort", ""},
		{"[::1", "UnclosedBracket", ""},
		{"[", "UnclosedBracket", ""},
		{"[]", "BadIPv6", ""},
		{"[1.2.3.4]", "BadIPv6", ""},
		{"[::g]", "BadIPv6", ""},
		{"[1::2::3]", "BadIPv6", ""},
		{"[fe80::1%eth0]", "Zone", ""},
		{"[fe80::1%25eth0]", "Zone", ""},
		{"[::1]x", "BadChar", ""},
		{"::1", "EmptyLabel", ""},
		{"2001:db8::1", "NumericName", ""}, // an unbracketed IPv6 address
		{"010.0.0.1", "NumericName", ""},
		{"1.2.3", "NumericName", ""},
		{"0x7f.1", "NumericName", ""},
		{"example.0x1F", "NumericName", ""},
		{"256.0.0.1", "NumericName", ""},
		{"127.1", "NumericName", ""},
	}
	for _, bad := range []string{
		"a@b", "a/b", "a#b", "a?b", "a%b", `a\b`, "a b", "a\tb", "a\r\nb", "a\nb",
		"a\x00b", "exämple.com", "a_b.com", "a;b", "a,b", "a\"b", "a'b", "a<b",
	} {
		cases = append(cases, GrammarCase{bad, "BadChar", ""})
	}
	return cases
}

// HostileList is the allow list that Hostile is checked against; every
// value of Hostile but "sub.allowed.com." must be rejected by it.
var HostileList = []string{"allowed.com", ".sub.allowed.com", "10.0.0.0/8"}

// Hostile returns the bypasses that hit peer libraries (unrolled/secure,
// Rails CVE-2021-44528, Fiber #4293 and #4408), CRLF, look-alikes and
// numeric hosts.
func Hostile() []string {
	return []string{
		"allowed.com@evil.net", "allowed.com:443@evil.net", "evil.net@allowed.com",
		"evil/.allowed.com", "evil.net/allowed.com", "evil.net#allowed.com", "evil.net?allowed.com",
		"allowed.com.evil.net", "evilallowed.com", "allowed.co", "allowed.com\r\nX-Injected: 1",
		"allowed.com\n", "allowed.com\x00", "allowed.com ", " allowed.com", "allowed.com\t",
		"//evil.net", "\\\\evil.net", "allowed.com\\@evil.net", "a:80:80", "[::1", "allowed.com:80:80",
		"аllowed.com" /* Cyrillic а */, "allowed.cοm" /* Greek ο */, "ALLOWED.COM\u212A",
		"allowed.com%2f@evil", "allowed.com..", "..allowed.com", "allowed.com:99999",
		"10.0.0.1.evil.net", "010.0.0.1", "10.1", "0x0a000001", "0x0a.0.0.1", "[::ffff:10.0.0.1]",
		"[::ffff:a00:1]", "10.0.0.1%25eth0", "[fe80::1%25eth0]", "*", "*.allowed.com",
		"evil.sub.allowed.com.evil.net", "sub.allowed.com.", "sub.allowed.com..",
	}
}

// Seeds returns the fuzz targets' seed hosts.
func Seeds() []string {
	return []string{
		"example.com", "EXAMPLE.com.", "www.example.org:8443", "a.b.example.org", "example.org",
		"10.0.1.23", "10.0.1.23:80", "10.255.1.1", "[2001:db8::1]", "[2001:DB8:0::1]:8080",
		"[::ffff:10.0.0.1]", "[::1]:8080", "[::1]", "192.168.7.7", "fd00::1", "[fd00::1]",
		"allowed.com@evil", "evil/.allowed.com", "a:80:80", "[::1", "a\r\nb", "010.1", "0x7f.1",
		"", ".", "a..b", "xn--bcher-kva.example", "[fe80::1%eth0]", "b.example:8443",
		"HOST0.Example.COM.:443", "x.example.com:8443", "x.example.com.:8080", "b.example:08443",
		"b.example:8443:1", "b.example.:", "exAmple.com\x00", "example.co\xcd", "example.com:0",
		"WWW.Example.ORG.:443", "a..example.org", ".example.org", "x_y.example.org", "1.example.org",
		"a.b.example.net.", "-.example.net", "10.0.1.23.", "10.0.1.23:080", "10.9.9.9:1", "1.2.3.4:65536",
		"example.com:000443", "b.example:0008443", "example.com:443:", "example.com::443", "b.example:8443x",
	}
}

// Lists returns allow lists of every entry kind, the ones the fuzz targets
// compare against the reference matcher.
func Lists() [][]string {
	return [][]string{
		{"*"},
		{"example.com", ".example.org", "*.example.net", "10.0.0.0/8", "fd00::/8", "[2001:db8::1]",
			"b.example:8443", "[::1]:8080", "10.0.1.23:80", "192.168.7.0/24", "::ffff:10.0.0.1", "@self"},
		{".com", "1.2.3.4", "0.0.0.0/0"},
		// Exact names only: misses are decided without the full parse.
		{"example.com", "host0.example.com", "b.example:8443", "b.example:8080", "xn--bcher-kva.example",
			"a.b.c.d.e.f.g.h.example.org"},
		// An exact name on one port under a domain that allows every port.
		{"x.example.com:8443", ".example.com", "Host0.Example.COM"},
	}
}

// Self is what "@self" stands for in the lists above.
var Self = []string{"10.9.9.9", "2001:db8::9"}

// Hosts returns every Host value of the corpus, each once.
func Hosts() []string {
	seen := map[string]bool{}
	var all []string
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			all = append(all, h)
		}
	}
	for _, c := range Grammar() {
		add(c.Host)
	}
	for _, h := range Hostile() {
		add(h)
	}
	for _, h := range Seeds() {
		add(h)
	}
	return all
}
