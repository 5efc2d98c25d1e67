package hostguard

import (
	"errors"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hostguard/hostguard/internal/hostcorpus"
)

func mustNew(t testing.TB, o Options) *Guard {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatalf("New(%q): %v", o.AllowedHosts, err)
	}
	return g
}

// reasonNames maps the corpus's reason names to reasons.
var reasonNames = map[string]Reason{
	"None": ReasonNone, "Empty": ReasonEmpty, "BadChar": ReasonBadChar, "EmptyLabel": ReasonEmptyLabel,
	"LabelTooLong": ReasonLabelTooLong, "NameTooLong": ReasonNameTooLong, "NumericName": ReasonNumericName,
	"BadPort": ReasonBadPort, "SecondPort": ReasonSecondPort, "BadIPv6": ReasonBadIPv6, "Zone": ReasonZone,
	"UnclosedBracket": ReasonUnclosedBracket,
}

func TestGrammar(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"*"}})
	for _, tt := range hostcorpus.Grammar() {
		reason, ok := reasonNames[tt.Reason]
		if !ok {
			t.Fatalf("corpus names an unknown reason %q", tt.Reason)
		}
		d := g.Check(tt.Host)
		if d.Reason != reason || d.Host != tt.Norm {
			t.Errorf("Check(%q) = (%q, %v), want (%q, %v)", tt.Host, d.Host, d.Reason, tt.Norm, reason)
		}
		if got, want := g.Allow(tt.Host), reason == ReasonNone; got != want {
			t.Errorf("Allow(%q) = %v, want %v", tt.Host, got, want)
		}
		if !reason.Malformed() && reason != ReasonNone && reason != ReasonEmpty {
			t.Errorf("reason %v for %q should count as malformed", reason, tt.Host)
		}
	}
}

func TestEntries(t *testing.T) {
	type check struct {
		host string
		ok   bool
	}
	tests := []struct {
		entry  string
		checks []check
	}{
		{"example.com", []check{
			{"example.com", true}, {"EXAMPLE.COM:8080", true}, {"example.com.", true},
			{"www.example.com", false}, {"example.co", false}, {"xexample.com", false},
			{"example.com.evil.net", false},
		}},
		{"example.com.", []check{{"example.com", true}, {"example.com.:1", true}}},
		{"Example.COM", []check{{"example.com", true}}},
		{".example.org", []check{
			{"example.org", true}, {"www.example.org:8443", true}, {"a.b.c.example.org", true},
			{"evilexample.org", false}, {"example.org.evil", false}, {"org", false},
		}},
		{"*.example.org", []check{
			{"example.org", false}, {"www.example.org", true}, {"a.b.example.org", true},
			{"evilexample.org", false},
		}},
		{"*", []check{{"anything.example", true}, {"10.1.1.1", true}, {"a..b", false}, {"", false}}},
		{"10.0.1.23", []check{
			{"10.0.1.23", true}, {"10.0.1.23:80", true}, {"10.0.1.24", false},
			{"[::ffff:10.0.1.23]", false}, {"010.0.1.23", false},
		}},
		{"[2001:db8::1]", []check{
			{"[2001:DB8:0::1]", true}, {"[2001:db8::1]:8443", true}, {"[2001:db8::2]", false},
		}},
		{"2001:db8::1", []check{{"[2001:db8:0:0::1]", true}}},
		{"::ffff:10.0.1.23", []check{{"[::ffff:10.0.1.23]", true}, {"10.0.1.23", false}}},
		{"10.0.0.0/8", []check{
			{"10.255.0.1", true}, {"10.0.0.0:80", true}, {"11.0.0.1", false},
			{"[::ffff:10.0.0.1]", false}, {"10.example", false},
		}},
		{"fd00::/8", []check{{"[fd12::1]", true}, {"[fe00::1]", false}, {"10.0.0.1", false}}},
		{"0.0.0.0/0", []check{{"1.2.3.4", true}, {"[::1]", false}, {"example.com", false}}},
		{"example.com:8443", []check{
			{"example.com:8443", true}, {"example.com", false}, {"example.com:443", false},
			{"example.com.:8443", true},
		}},
		{"[::1]:8080", []check{{"[::1]:8080", true}, {"[::1]", false}, {"[::1]:8081", false}}},
		{"10.0.0.1:80", []check{{"10.0.0.1:80", true}, {"10.0.0.1", false}}},
		{".example.com:8443", []check{{"a.example.com:8443", true}, {"a.example.com", false}}},
		{"bücher.example", []check{
			{"xn--bcher-kva.example", true}, {"bücher.example", false}, {"bucher.example", false},
		}},
		{"BÜCHER.example", []check{{"xn--bcher-kva.example", true}}},
		{"@self", []check{{"10.0.1.23", false}}},
	}
	for _, tt := range tests {
		g := mustNew(t, Options{AllowedHosts: []string{tt.entry}})
		for _, c := range tt.checks {
			if got := g.Allow(c.host); got != c.ok {
				t.Errorf("entry %q: Allow(%q) = %v, want %v", tt.entry, c.host, got, c.ok)
			}
		}
	}
}

func TestBadEntries(t *testing.T) {
	tests := map[string]string{
		"http://example.com":  `"example.com"`,
		"https://u@x.com/a?b": `"x.com"`,
		"example.com/x":       "path",
		"*example.com":        "'*'",
		"**":                  "'*'",
		"*.*.example.com":     "'*'",
		"ex*ample.com":        "'*'",
		"10.0.0.0/33":         "CIDR",
		"10.0.0.1/8":          `did you mean "10.0.0.0/8"`,
		"fd00::1/8":           `did you mean "fd00::/8"`,
		"example .com":        "white space",
		" example.com":        "white space",
		"":                    "empty",
		"@other":              "@self",
		"a..b":                "empty label",
		"a_b.com":             "invalid character",
		"example.com:0":       "port",
		"example.com:80:80":   "more than one",
		"[::1":                "unclosed",
		"fe80::1%eth0":        "zone",
		"2001:db8:::1":        "not an IPv6",
		".10.0.0.1":           "wildcard",
		"*.[::1]":             "wildcard",
		"10.0.0.0/8:80":       "CIDR",
		"\xff.example":        "UTF-8",
		"*.":                  "empty",
		".":                   "empty",
		"a.b.c.1":             "numeric",
	}
	for entry, want := range tests {
		_, err := New(Options{AllowedHosts: []string{"ok.example", entry}})
		var ee *EntryError
		if !errors.As(err, &ee) {
			t.Errorf("New(%q) error = %v, want an *EntryError", entry, err)
			continue
		}
		if ee.Entry != entry || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q) error = %q, want it to name the entry and mention %q", entry, err, want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{TrustedProxies: []string{"10.0.0.0/99"}},
		{TrustedProxies: []string{"proxy.internal"}},
		{ExemptPaths: []string{"health"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

func TestZeroValueRejectsEverything(t *testing.T) {
	g := mustNew(t, Options{})
	for _, h := range []string{"", "localhost", "127.0.0.1", "example.com"} {
		if g.Allow(h) {
			t.Errorf("zero Options allowed %q", h)
		}
	}
}

func TestEmptyHostOption(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"a.example"}, AllowEmptyHost: true})
	if !g.Allow("") {
		t.Error("AllowEmptyHost: empty host rejected")
	}
	if g.Allow(":80") || g.Allow(".") {
		t.Error("AllowEmptyHost must not admit malformed hosts")
	}
}

// TestHostile runs the bypasses that hit peer libraries against a list that
// names allowed.com only.
func TestHostile(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: hostcorpus.HostileList})
	for _, h := range hostcorpus.Hostile() {
		if d := g.Check(h); d.Allowed() && h != "sub.allowed.com." {
			t.Errorf("hostile %q accepted (as %q by %q)", h, d.Host, d.Entry)
		}
	}
	if !g.Allow("sub.allowed.com.") {
		t.Error("a single trailing dot must be accepted")
	}
}

func TestCheckNamesEntry(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"a.example", ".b.example", "c.example:8443", "10.0.0.0/8", "@self"}})
	g.SetSelf([]netip.Addr{netip.MustParseAddr("192.168.1.5")})
	for host, entry := range map[string]string{
		"A.example.":       "a.example",
		"x.y.b.example":    ".b.example",
		"b.example":        ".b.example",
		"c.example:8443":   "c.example:8443",
		"10.2.3.4:80":      "10.0.0.0/8",
		"192.168.1.5:8000": "@self",
	} {
		if d := g.Check(host); d.Entry != entry || !d.Allowed() {
			t.Errorf("Check(%q) = %+v, want entry %q", host, d, entry)
		}
		// The full check decides alone, whatever the fast paths did.
		if e, r := g.slow(host); e != entry || r != ReasonNone {
			t.Errorf("slow(%q) = %q, %v; want entry %q", host, e, r, entry)
		}
	}
}

func TestSelf(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr", "@self"}})
	if !g.HasSelf() {
		t.Fatal("HasSelf() = false")
	}
	if g.Allow("10.0.1.23:80") {
		t.Fatal("@self must be empty before SetSelf")
	}
	g.SetSelf([]netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("2001:db8::7"), {}, netip.MustParseAddr("10.0.1.23")})
	for h, want := range map[string]bool{
		"10.0.1.23:80": true, "10.0.1.23": true, "[2001:db8::7]:8080": true,
		"10.0.1.24": false, "[::ffff:10.0.1.23]": false,
	} {
		if got := g.Allow(h); got != want {
			t.Errorf("Allow(%q) = %v, want %v", h, got, want)
		}
	}
	if got := g.Self(); len(got) != 2 || got[0].String() != "10.0.1.23" {
		t.Errorf("Self() = %v", got)
	}
	g.SetSelf(nil)
	if g.Allow("10.0.1.23") {
		t.Error("SetSelf(nil) must empty @self")
	}
	// Without "@self" in the list, SetSelf has no effect on matching.
	g2 := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}})
	g2.SetSelf([]netip.Addr{netip.MustParseAddr("10.0.1.23")})
	if g2.Allow("10.0.1.23") {
		t.Error("SetSelf admitted an address to a list without @self")
	}
}

func TestManyEntries(t *testing.T) {
	var entries []string
	for i := range 1000 {
		entries = append(entries, "host"+strconv.Itoa(i)+".example.com", ".d"+strconv.Itoa(i)+".example.net", "10."+strconv.Itoa(i%250)+".0.0/16")
	}
	g := mustNew(t, Options{AllowedHosts: entries})
	for h, want := range map[string]bool{
		"host999.example.com": true, "host1000.example.com": false, "x.d500.example.net": true,
		"d500.example.net": true, "10.249.3.3": true, "10.250.0.1": false,
	} {
		if got := g.Allow(h); got != want {
			t.Errorf("Allow(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"example.com", ".example.org", "10.0.0.0/8", "[::1]:8080", "@self"}})
	g.SetSelf([]netip.Addr{netip.MustParseAddr("192.168.0.1")})
	for _, h := range []string{"WWW.Example.Org:8443", "evil.example", "10.1.2.3", "[::1]:8080", "192.168.0.1", "a..b"} {
		if n := testing.AllocsPerRun(100, func() { g.Allow(h) }); n != 0 {
			t.Errorf("Allow(%q) allocates %v times", h, n)
		}
	}
}

func TestReasonString(t *testing.T) {
	for r := ReasonNone; r < numReasons; r++ {
		if r.String() == "" || r.String() == "unknown reason" {
			t.Errorf("Reason(%d) has no text", r)
		}
	}
	if Reason(200).String() != "unknown reason" {
		t.Error("out-of-range Reason")
	}
}

// TestReasonLabel holds the labels to what dashboards and docs/proxy.md
// use: a label never changes once released, and a new reason needs one.
func TestReasonLabel(t *testing.T) {
	want := map[Reason]string{
		ReasonNone: "none", ReasonEmpty: "empty", ReasonBadChar: "bad_char", ReasonEmptyLabel: "empty_label",
		ReasonLabelTooLong: "label_too_long", ReasonNameTooLong: "name_too_long", ReasonNumericName: "numeric_name",
		ReasonBadPort: "bad_port", ReasonSecondPort: "second_port", ReasonBadIPv6: "bad_ipv6", ReasonZone: "zone",
		ReasonUnclosedBracket: "unclosed_bracket", ReasonNotAllowed: "not_allowed",
		ReasonForwardedMalformed: "forwarded_malformed", ReasonForwardedNotAllowed: "forwarded_not_allowed",
	}
	if len(want) != int(numReasons) {
		t.Fatalf("the test knows %d reasons, the package %d: give the new one a label here", len(want), numReasons)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for r := ReasonNone; r < numReasons; r++ {
		if got := r.Label(); got != want[r] || !snake.MatchString(got) {
			t.Errorf("Reason(%d).Label() = %q, want %q", r, got, want[r])
		}
	}
	if got := Reason(200).Label(); got != "unknown" {
		t.Errorf("out-of-range Label() = %q", got)
	}
}

// TestReasonLabelsDocumented: docs/proxy.md lists every label, which the
// proxy's metric uses, with its text.
func TestReasonLabelsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/proxy.md")
	if err != nil {
		t.Fatal(err)
	}
	for r := ReasonNone + 1; r < numReasons; r++ {
		text, _, _ := strings.Cut(r.String(), " (")
		if row := "| `" + r.Label() + "` | " + text; !strings.Contains(string(doc), row) {
			t.Errorf("docs/proxy.md lacks the row %q", row)
		}
	}
}

// TestNewReportsEveryBadValue: one error names every bad entry, trusted
// proxy and exempt path, and errors.As still finds the entries' errors.
func TestNewReportsEveryBadValue(t *testing.T) {
	_, err := New(Options{
		AllowedHosts:   []string{"ok.example", "http://a.example", "10.0.0.1/8", "fine.example", "a..b"},
		TrustedProxies: []string{"10.0.0.5", "proxy.internal"},
		ExemptPaths:    []string{"/health", "livez"},
	})
	if err == nil {
		t.Fatal("New succeeded")
	}
	msg := err.Error()
	for _, want := range []string{`"http://a.example"`, `did you mean "10.0.0.0/8"`, `"a..b"`, `"proxy.internal"`, `"livez"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %s:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 5 {
		t.Errorf("error has %d lines, want one per bad value (5):\n%s", n, msg)
	}
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Entry != "http://a.example" {
		t.Errorf("errors.As: %v, %+v; want the first bad entry", errors.As(err, &ee), ee)
	}
	var entries []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &ee) {
			entries = append(entries, ee.Entry)
		}
	}
	if want := []string{"http://a.example", "10.0.0.1/8", "a..b"}; !slices.Equal(entries, want) {
		t.Errorf("entry errors for %q, want %q", entries, want)
	}
	// One bad value: the error is that value's alone.
	_, err = New(Options{AllowedHosts: []string{"a..b"}})
	if !errors.As(err, &ee) || strings.Contains(err.Error(), "\n") {
		t.Errorf("one bad entry: %q", err)
	}
}

func TestTrustedPeer(t *testing.T) {
	g := mustNew(t, Options{TrustedProxies: []string{"10.0.0.5", "192.168.0.0/16", "fd00::/8"}})
	for remote, want := range map[string]bool{
		"10.0.0.5:1": true, "10.0.0.6:1": false, "192.168.9.9:80": true, "[::ffff:192.168.1.1]:5": true,
		"[fd00::1]:443": true, "[fe80::1]:443": false, "10.0.0.5": false, "": false,
	} {
		if got := g.TrustedPeer(remote); got != want {
			t.Errorf("TrustedPeer(%q) = %v, want %v", remote, got, want)
		}
	}
	if mustNew(t, Options{}).TrustedPeer("10.0.0.5:1") {
		t.Error("no trusted proxies: nobody is trusted")
	}
}
