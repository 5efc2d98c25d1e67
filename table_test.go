package hostguard

import (
	"fmt"
	"strings"
	"testing"
)

func TestNameTable(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 100, 5000} {
		m := map[string]portRule{}
		for i := range n {
			m[fmt.Sprintf("h%d.example.com", i)] = portRule{anyPort: fmt.Sprint(i)}
		}
		tab := buildNameTable(m)
		if tab.maxProbe > maxProbeLimit {
			t.Errorf("n=%d: longest probe %d, limit %d", n, tab.maxProbe, maxProbeLimit)
		}
		for key, want := range m {
			for _, k := range []string{key, strings.ToUpper(key)} {
				r, ok := tab.lookup(k)
				if !ok || r.anyPort != want.anyPort {
					t.Fatalf("n=%d: lookup(%q) = %v, %v; want rule %q", n, k, r, ok, want.anyPort)
				}
			}
			// One byte off, at either end, and one byte longer or shorter.
			for _, k := range []string{"x" + key[1:], key[:len(key)-1] + "n", key + "m", key[:len(key)-1], key[:len(key)-1] + "N"} {
				if _, ok := tab.lookup(k); ok {
					t.Fatalf("n=%d: lookup(%q) found a key", n, k)
				}
			}
		}
	}
}

func TestHashNameIgnoresCase(t *testing.T) {
	for n := range 40 {
		s := strings.Repeat("aB-.9z", 7)[:n]
		if hashName(s) != hashName(strings.ToLower(s)) {
			t.Errorf("hashName(%q) differs from the hash of its lower-case form", s)
		}
		if n > 0 && hashName(s) == hashName(s[:n-1]) {
			t.Errorf("hashName(%q) equals the hash of its prefix", s)
		}
	}
}

func TestEqualFold(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"example.com", "EXAMPLE.COM", true},
		{"example.com", "Example.Com", true},
		{"host-1.example.org", "HOST-1.EXAMPLE.ORG", true},
		{"example.com", "example.con", false},
		{"a-b", "a\rb", false},   // '\r' | 0x20 is '-': no such folding
		{"a.b", "a\x0eb", false}, // '\x0e' | 0x20 is '.'
		{"a@b", "a`b", false},
		{"a_b", "a\x7fb", false},
		{"abcdefghi", "ABCDEFGHJ", false},
		{"abcdefgh{", "ABCDEFGH[", false},
	}
	for _, tt := range tests {
		if got := equalFold(tt.a, tt.b); got != tt.want {
			t.Errorf("equalFold(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestNameTableSampleCollisions: keys that differ only between the bytes
// the sampled hash reads all share one hash; the table must fall back to
// hashing whole keys and still find every key and nothing else.
func TestNameTableSampleCollisions(t *testing.T) {
	m := map[string]portRule{}
	for i := range 300 {
		// 40 bytes: samples at 0-8, 16-24 and 32-40 are all the same.
		m[strings.Repeat("a", 9)+fmt.Sprintf("%03d", i)+strings.Repeat("b", 28)] = portRule{anyPort: fmt.Sprint(i)}
	}
	tab := buildNameTable(m)
	if !tab.whole || tab.maxProbe > maxProbeLimit {
		t.Fatalf("whole %v, longest probe %d", tab.whole, tab.maxProbe)
	}
	for key, want := range m {
		if r, ok := tab.lookup(strings.ToUpper(key)); !ok || r.anyPort != want.anyPort {
			t.Fatalf("lookup(%q) = %v, %v", key, r, ok)
		}
	}
	if _, ok := tab.lookup(strings.Repeat("a", 9) + "300" + strings.Repeat("b", 28)); ok {
		t.Fatal("found a key that is not in the table")
	}
}

func TestSplitPort(t *testing.T) {
	tests := []struct {
		in    string
		colon int
		port  uint16
		state int
	}{
		{"example.com", 11, 0, portOK},
		{"example.com:443", 11, 443, portOK},
		{"example.com:65535", 11, 65535, portOK},
		{"example.com:65536", 11, 0, portBad},
		{"example.com:0", 11, 0, portBad},
		{"example.com:", 11, 0, portBad},
		{"example.com:000080", 0, 0, portUnknown},
		{"host123456", 0, 0, portUnknown},
		{"web01", 5, 0, portOK},
		{"a:80:80", 4, 80, portOK},
		{":80", 0, 80, portOK},
		{"", 0, 0, portOK},
	}
	for _, tt := range tests {
		colon, port, state := splitPort(tt.in)
		if colon != tt.colon || port != tt.port || state != tt.state {
			t.Errorf("splitPort(%q) = %d, %d, %d; want %d, %d, %d", tt.in, colon, port, state, tt.colon, tt.port, tt.state)
		}
	}
}
