package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/internal/hostcorpus"
)

func TestCanonicalName(t *testing.T) {
	for _, tt := range []struct {
		list  []string
		name  string
		admit bool
	}{
		{[]string{"@self", ".a.example", "*.b.example", "10.0.0.1", "[::1]:80", "c.example:8443", "D.Example.", "e.example"}, "d.example", true},
		{[]string{".a.example", "b.example"}, "b.example", false},
		{[]string{"b.example", "10.0.0.0/8"}, "b.example", true},
		{[]string{"2001:db8::1", "b.example"}, "b.example", true},
		{[]string{"fd00::/8"}, "", true},
		{[]string{"10.0.0.1:8080", "[2001:db8::1]"}, "", true},
		{[]string{"*"}, "", true},
		{[]string{"bücher.example"}, "xn--bcher-kva.example", false},
		{[]string{"BÜCHER.example.", "x.example"}, "xn--bcher-kva.example", false},
		{[]string{"c.example:8443", ".d.example"}, "", false},
		{nil, "", false},
	} {
		g, err := hostguard.New(hostguard.Options{AllowedHosts: tt.list})
		if err != nil {
			t.Fatal(err)
		}
		name, admit := canonicalName(g)
		if name != tt.name || admit != tt.admit {
			t.Errorf("%q: canonicalName = %q, %v; want %q, %v", tt.list, name, admit, tt.name, tt.admit)
		}
		if name != "" && !g.Allow(name) {
			t.Errorf("%q: the list does not admit its canonical name %q", tt.list, name)
		}
	}
}

func TestIsIPLiteral(t *testing.T) {
	for h, want := range map[string]bool{
		"10.0.1.23": true, "10.0.1.23:80": true, "10.0.1.23.": true, "10.0.1.23:00080": true,
		"[2001:db8::1]:8080": true, "[::ffff:10.0.0.1]": true, "[2001:DB8::1]": true,
		"lhy.kr": false, "lhy.kr:80": false, "010.1": false, "127.1": false, "[::1": false, "": false,
		"1.2.3.4@evil": false, "[1.2.3.4]": false, "[fe80::1%eth0]": false, "1.2.3.4:0": false,
		"1.2.3.4:65536": false, "1.2.3.4:": false, "1.2.3.4:80:80": false, "[::1]x": false, "1.2.3.4..": false,
	} {
		if got := isIPLiteral(h); got != want {
			t.Errorf("isIPLiteral(%q) = %v, want %v", h, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isIPLiteral("[2001:db8::1]:8080") }); n != 0 {
		t.Errorf("isIPLiteral allocates %v times", n)
	}
}

// TestIsIPLiteralAgreesWithGuard: for every well-formed host of the
// corpus, isIPLiteral says what the Guard's own parse says (a normalised
// IP literal starts with '[' or is a dotted quad).
func TestIsIPLiteralAgreesWithGuard(t *testing.T) {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	hosts := append(hostcorpus.Seeds(), hostcorpus.Hostile()...)
	for _, c := range hostcorpus.Grammar() {
		hosts = append(hosts, c.Host)
	}
	for _, h := range hosts {
		d := g.Check(h)
		if !d.Allowed() {
			continue
		}
		name := d.Host
		if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.HasSuffix(name, "]") {
			name = name[:i]
		}
		_, err := netip.ParseAddr(strings.Trim(name, "[]"))
		want := err == nil
		if got := isIPLiteral(h); got != want {
			t.Errorf("isIPLiteral(%q) = %v; the Guard normalises it to %q", h, got, d.Host)
		}
	}
}
