package hostguard

import (
	"net/netip"
	"testing"
)

var fuzzSeeds = []string{
	"example.com", "EXAMPLE.com.", "www.example.org:8443", "a.b.example.org", "example.org",
	"10.0.1.23", "10.0.1.23:80", "10.255.1.1", "[2001:db8::1]", "[2001:DB8:0::1]:8080",
	"[::ffff:10.0.0.1]", "[::1]:8080", "[::1]", "192.168.7.7", "fd00::1", "[fd00::1]",
	"allowed.com@evil", "evil/.allowed.com", "a:80:80", "[::1", "a\r\nb", "010.1", "0x7f.1",
	"", ".", "a..b", "xn--bcher-kva.example", "[fe80::1%eth0]", "b.example:8443",
}

// fuzzLists are allow lists of every entry kind the reference understands.
var fuzzLists = [][]string{
	{"*"},
	{"example.com", ".example.org", "*.example.net", "10.0.0.0/8", "fd00::/8", "[2001:db8::1]",
		"b.example:8443", "[::1]:8080", "10.0.1.23:80", "192.168.7.0/24", "::ffff:10.0.0.1", "@self"},
	{".com", "1.2.3.4", "0.0.0.0/0"},
}

var fuzzSelf = []string{"10.9.9.9", "2001:db8::9"}

// FuzzAllow checks that parsing never panics and that Allow agrees with the
// reference matcher for every list.
func FuzzAllow(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	var guards []*Guard
	for _, l := range fuzzLists {
		g := mustNew(f, Options{AllowedHosts: l})
		var self []netip.Addr
		for _, a := range fuzzSelf {
			self = append(self, netip.MustParseAddr(a))
		}
		g.SetSelf(self)
		guards = append(guards, g)
	}
	f.Fuzz(func(t *testing.T, host string) {
		for i, g := range guards {
			got := g.Allow(host)
			want := refAllow(fuzzLists[i], fuzzSelf, host)
			if got != want {
				t.Fatalf("list %q: Allow(%q) = %v, reference says %v", fuzzLists[i], host, got, want)
			}
			d := g.Check(host)
			if d.Allowed() != got {
				t.Fatalf("Check(%q) = %+v disagrees with Allow", host, d)
			}
			if got && !g.Allow(d.Host) {
				t.Fatalf("normalised %q of accepted %q is rejected", d.Host, host)
			}
		}
	})
}

// FuzzNew checks that building a list from any entry never panics, and that
// an accepted entry of a plain host admits itself.
func FuzzNew(f *testing.F) {
	for _, s := range append(fuzzSeeds, "*.example.com", ".example.com", "10.0.0.0/8", "bücher.example", "http://x", "**") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		g, err := New(Options{AllowedHosts: []string{entry}})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if _, r := parseHost(entry); r == ReasonNone && !g.Allow(entry) {
			t.Fatalf("entry %q does not admit itself", entry)
		}
	})
}
