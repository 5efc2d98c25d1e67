package hostguard

import (
	"slices"
	"testing"
)

func TestForwardedHosts(t *testing.T) {
	for _, tt := range []struct {
		value string
		hosts []string
		ok    bool
	}{
		{"", nil, true},
		{"for=1.2.3.4", nil, true},
		{"host=lhy.kr", []string{"lhy.kr"}, true},
		{`for=1.2.3.4;host="lhy.kr:443";proto=https`, []string{"lhy.kr:443"}, true},
		{"for=1.2.3.4, for=10.0.0.1;Host=evil.example", []string{"evil.example"}, true},
		{"host=a, host=b", []string{"a", "b"}, true},
		{"host=a ; proto=http , host=b", []string{"a", "b"}, true},
		{`for="[2001:db8::1]:80";host="[2001:db8::2]"`, []string{"[2001:db8::2]"}, true},
		{`for="a,b";host=c`, []string{"c"}, true}, // a comma inside quotes does not split
		{"host=a,,host=b", []string{"a", "b"}, true},
		{";;host=a;", []string{"a"}, true},

		// malformed
		{"for=1.2.3.4;host=lhy.kr;host=evil.example", []string{"lhy.kr"}, false},
		{"host=a;HOST=b", []string{"a"}, false},
		{"host = a", nil, false},
		{"host=", nil, false},
		{"=a", nil, false},
		{"host", nil, false},
		{`host="a`, nil, false},
		{`host="a\"b"`, nil, false},     // a quoted-pair in a host
		{`host="lhy\.kr"`, nil, false},  // unescaping would make it lhy.kr
		{"host=a b", nil, false},        // two tokens
		{"host=a@b", nil, false},        // '@' is not a tchar
		{"host=\"a\x00\"", nil, false},  // NUL
		{"host=\"a\r\nb\"", nil, false}, // CRLF
		{"a=1;b=2;c=3;d=4;e=5", nil, false},
	} {
		var got []string
		ok := forwardedHosts(tt.value, func(h string) bool { got = append(got, h); return true })
		if ok != tt.ok || !slices.Equal(got, tt.hosts) {
			t.Errorf("forwardedHosts(%q) = %q, %v; want %q, %v", tt.value, got, ok, tt.hosts, tt.ok)
		}
	}
}

// FuzzForwardedHosts: the parser never panics, a well-formed value yields
// only hosts made of token or qdtext bytes, and a value built from the
// hosts it yielded parses back to them.
func FuzzForwardedHosts(f *testing.F) {
	for _, s := range []string{"for=1.2.3.4;host=lhy.kr", `host="a:1", host=b`, "host=a;host=b", `host="\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var hosts []string
		if !forwardedHosts(v, func(h string) bool { hosts = append(hosts, h); return true }) {
			return
		}
		var rebuilt string
		for i, h := range hosts {
			for j := 0; j < len(h); j++ {
				if !isQDText(h[j]) {
					t.Fatalf("%q yielded host %q with byte %#x", v, h, h[j])
				}
			}
			if i > 0 {
				rebuilt += ","
			}
			rebuilt += `host="` + h + `"`
		}
		var again []string
		if !forwardedHosts(rebuilt, func(h string) bool { again = append(again, h); return true }) || !slices.Equal(again, hosts) {
			t.Fatalf("%q -> %q -> %q (%q)", v, hosts, rebuilt, again)
		}
	})
}
