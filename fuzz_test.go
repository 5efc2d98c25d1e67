package hostguard

import (
	"net/netip"

	"strings"
	"testing"

	"github.com/hostguard/hostguard/internal/hostcorpus"
)

// The fuzz targets run the corpus's seeds against its lists.
var (
	fuzzSeeds = hostcorpus.Seeds()
	fuzzLists = hostcorpus.Lists()
	fuzzSelf  = hostcorpus.Self
)

// FuzzAllow checks that parsing never panics and that Allow agrees with the
// reference matcher for every list. Check runs the full check alone,
// without the fast paths, so comparing it with Allow holds the fast paths
// to the full check.
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
		if r := new(host).parse(entry); r == ReasonNone && !g.Allow(entry) {
			t.Fatalf("entry %q does not admit itself", entry)
		}
	})
}

// TestEveryByteEveryPosition puts every byte value at every position of
// names long enough for the word-at-a-time scan, and a dot at every pair of
// positions, and compares Allow with the reference.
func TestEveryByteEveryPosition(t *testing.T) {
	bases := []string{"abcdefghijklmnopqrstuvwxyz.example.org", "ab.cd.ef.gh.ij.kl.mn.op.example.org:8080", strings.Repeat("a", 63) + ".example.org"}
	lists := [][]string{{"*"}, {".example.org", "ab.cd.ef.gh.ij.kl.mn.op.example.org"}, bases,
		{"10.0.0.0/8", "192.168.1.1:8080", "example.org"}}
	bases = append(bases, "10.20.30.40:8080", "192.168.1.1:8080")
	for _, list := range lists {
		g := mustNew(t, Options{AllowedHosts: list})
		check := func(h string) {
			if got, want := g.Allow(h), refAllow(list, nil, h); got != want {
				t.Fatalf("list %q: Allow(%q) = %v, reference %v", list, h, got, want)
			}
		}
		for _, base := range bases {
			for p := range len(base) {
				for b := range 256 {
					check(base[:p] + string([]byte{byte(b)}) + base[p+1:])
				}
				for q := p + 1; q < len(base); q++ {
					d := []byte(base)
					d[p], d[q] = '.', '.'
					check(string(d))
				}
			}
			check(strings.ToUpper(base))
		}
	}
}

// FuzzParseIPv4 checks the IPv4 fast path's parser against netip.ParseAddr.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"10.0.1.23", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4:80", "٣.1.1.1", "1.2.3.04"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, n, ok := parseIPv4(s)
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if got := ok && n == len(s); got != wantOK {
			t.Fatalf("parseIPv4(%q) = %v, %d, %v; netip.ParseAddr: %v, %v", s, a, n, ok, want, err)
		}
		if wantOK && a != want.As4() {
			t.Fatalf("parseIPv4(%q) = %v, want %v", s, a, want)
		}
		if ok && n < len(s) && s[n] >= '0' && s[n] <= '9' {
			t.Fatalf("parseIPv4(%q) stopped at %d before a digit", s, n)
		}
	})
}
