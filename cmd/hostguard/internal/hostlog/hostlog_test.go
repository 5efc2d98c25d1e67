package hostlog

import (
	"bytes"
	"compress/gzip"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// testdata/alb.log holds records in the field layout AWS documents for
// Application Load Balancer access logs (type, time, elb, client:port,
// target:port, three processing times, two status codes, two byte counts,
// "request", "user_agent", ssl_cipher, ssl_protocol, target_group_arn,
// "trace_id", "domain_name", "chosen_cert_arn", matched_rule_priority,
// request_creation_time, "actions_executed", "redirect_url",
// "error_reason", "target:port_list", "target_status_code_list",
// "classification", "classification_reason", conn_trace_id): HTTP, HTTPS
// over HTTP/2, WebSocket (ws, wss), a request the load balancer could not
// parse, a scanner with an IP Host, IPv6, and a query with no path.
func albSample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/alb.log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, format Format, text []byte) ([]string, Counts) {
	t.Helper()
	var hosts []string
	c, err := Read(bytes.NewReader(text), format, func(h []byte, _ int) error {
		hosts = append(hosts, string(h))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hosts, c
}

func TestALB(t *testing.T) {
	want := []string{"lhy.kr:80", "WWW.lhy.kr:443", "lhy.kr:80", "lhy.kr:443", "203.0.113.50:80", "[2001:db8::1]:80"}
	hosts, c := read(t, ALB, albSample(t))
	if !slices.Equal(hosts, want) || c != (Counts{Lines: 7, Records: 6, Skipped: 1}) {
		t.Errorf("hosts %q, counts %+v", hosts, c)
	}
	// As exported to S3: gzip.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(albSample(t))
	w.Close()
	if hosts, _ := read(t, ALB, gz.Bytes()); !slices.Equal(hosts, want) {
		t.Errorf("gzip: %q", hosts)
	}
	// Lines that are not ALB records hold no Host.
	if hosts, c := read(t, ALB, []byte("not a log line\n\nhttp 2026 x y z\n")); len(hosts) != 0 || c.Skipped != 3 {
		t.Errorf("garbage: %q %+v", hosts, c)
	}
}

func TestDjango(t *testing.T) {
	log := `Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS.
[2026-11-28 23:50:01,123] ERROR django.security.DisallowedHost: Invalid HTTP_HOST header: '10.0.1.23:8000'. You may need to add '10.0.1.23' to ALLOWED_HOSTS.
Invalid HTTP_HOST header: 'a..b'. The domain name provided is not valid according to RFC 1034/1035.
Invalid HTTP_HOST header: "it's.example". The domain name provided is not valid according to RFC 1034/1035.
Invalid HTTP_HOST header: 'x\x00y\\z'. The domain name provided is not valid according to RFC 1034/1035.
"GET /health/ HTTP/1.1" 200 3
Invalid HTTP_HOST header: 'unterminated
`
	want := []string{"evil.example", "10.0.1.23:8000", "a..b", "it's.example", "x\x00y\\z"}
	hosts, c := read(t, Django, []byte(log))
	if !slices.Equal(hosts, want) || c.Skipped != 2 {
		t.Errorf("hosts %q, counts %+v", hosts, c)
	}
}

func TestHostsAndLongLines(t *testing.T) {
	long := strings.Repeat("a", 600<<10) + ".example"
	hosts, c := read(t, Hosts, []byte(" lhy.kr \r\n"+long+"\n\nlast-without-newline"))
	if len(hosts) != 4 || hosts[0] != "lhy.kr" || hosts[1] != long || hosts[2] != "" || hosts[3] != "last-without-newline" || c.Lines != 4 {
		t.Errorf("%d hosts, %+v", len(hosts), c)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if g, err := ParseFormat(string(f)); err != nil || g != f {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := ParseFormat("nginx"); err == nil || !strings.Contains(err.Error(), `"nginx"`) {
		t.Errorf("nginx: %v", err)
	}
}

// BenchmarkALB reads ALB records as hostguard match does (the Host of
// every line); bench/matchlog.sh compares the command with awk.
func BenchmarkALB(b *testing.B) {
	data := bytes.Repeat(albSample(b), 2000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n := 0
		if _, err := Read(bytes.NewReader(data), ALB, func(h []byte, _ int) error { n += len(h); return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzRead: any input, in any format, read in one piece or a byte at a
// time, gives the same hosts; every line is a record or skipped; an ALB
// host never reaches past the URL's authority.
func FuzzRead(f *testing.F) {
	sample, err := os.ReadFile("testdata/alb.log")
	if err != nil {
		f.Fatal(err)
	}
	for i, l := range bytes.SplitAfter(sample, []byte("\n")) {
		f.Add(l, uint8(i))
	}
	f.Add([]byte("Invalid HTTP_HOST header: 'a\\x00\\'b'. x\n"), uint8(2))
	f.Add([]byte("a\r\n\n \t\nb"), uint8(0))
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(sample)
	w.Close()
	f.Add(gz.Bytes(), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		format := Formats()[int(which)%len(Formats())]
		var whole, bytewise []string
		c, err := Read(bytes.NewReader(data), format, func(h []byte, _ int) error {
			whole = append(whole, string(h))
			return nil
		})
		if err != nil {
			return // a broken gzip stream
		}
		if c.Records+c.Skipped != c.Lines || c.Records != len(whole) {
			t.Fatalf("counts %+v for %d hosts", c, len(whole))
		}
		c2, err := Read(iotest.OneByteReader(bytes.NewReader(data)), format, func(h []byte, _ int) error {
			bytewise = append(bytewise, string(h))
			return nil
		})
		if err != nil || c2 != c || !slices.Equal(whole, bytewise) {
			t.Fatalf("a byte at a time: %+v %v %q, in one piece %+v %q", c2, err, bytewise, c, whole)
		}
		if format == ALB {
			for _, h := range whole {
				if strings.ContainsAny(h, " \"/?\n") {
					t.Fatalf("ALB host %q reaches past the authority", h)
				}
			}
		}
	})
}
