package main

import (
	"bytes"
	"compress/gzip"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/internal/hostcorpus"
)

// TestMatchAgreesWithGuard holds match to the library: every host of the
// shared corpus, under every list, gets the library's decision, with and
// without --explain (the command caches normalised hosts without it).
func TestMatchAgreesWithGuard(t *testing.T) {
	var hosts []string
	for _, h := range hostcorpus.Hosts() {
		// One Host per line: a line break ends the value, and blanks around
		// it are not part of it.
		if !strings.ContainsAny(h, "\r\n") {
			hosts = append(hosts, h)
		}
	}
	in := strings.Join(hosts, "\n") + "\n" + strings.Join(hosts, "\n") + "\n" // twice: cached the second time
	selfArgs := []string{"--self", strings.Join(hostcorpus.Self, ",")}
	for _, list := range append(hostcorpus.Lists(), hostcorpus.HostileList) {
		g, err := hostguard.New(hostguard.Options{AllowedHosts: list})
		if err != nil {
			t.Fatal(err)
		}
		g.SetSelf(parseAddrs(t, hostcorpus.Self))
		for _, explain := range []bool{false, true} {
			args := append([]string{"match", "--allow", strings.Join(list, ",")}, selfArgs...)
			if explain {
				args = append(args, "--explain")
			}
			_, stdout, stderr := runCLI(t, in, args...)
			if stderr != "" {
				t.Fatalf("list %q: %s", list, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(lines) != 2*len(hosts) {
				t.Fatalf("list %q: %d output lines for %d hosts", list, len(lines), 2*len(hosts))
			}
			for i, line := range lines {
				h := hosts[i%len(hosts)]
				d := g.Check(strings.Trim(h, " \t"))
				want := "reject\t" + d.Reason.String()
				if d.Allowed() {
					want = "accept\t" + d.Host
					if explain {
						want += "\t" + d.Entry
					}
				}
				if line != want {
					t.Errorf("list %q, host %q (explain %v): match says %q, the library %q", list, h, explain, line, want)
				}
			}
		}
	}
}

// albLog is the ALB access log sample of internal/hostlog, gzipped as the
// load balancer writes it to S3.
func albLog(t *testing.T) string {
	t.Helper()
	plain, err := os.ReadFile("internal/hostlog/testdata/alb.log")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	name := filepath.Join(t.TempDir(), "123456789012_elasticloadbalancing_eu-west-1_app.lhy-web.50dc6c495c0c9188_20261128T2345Z_10.0.1.5_2x3y4z.log.gz")
	if err := os.WriteFile(name, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestMatchALB(t *testing.T) {
	log := albLog(t)
	code, stdout, stderr := runCLI(t, "", "match", "--format", "alb", "--allow", "lhy.kr,.lhy.kr", log)
	want := "accept\tlhy.kr:80\n" +
		"accept\twww.lhy.kr:443\n" +
		"accept\tlhy.kr:80\n" +
		"accept\tlhy.kr:443\n" +
		"reject\thost not in allow list\t203.0.113.50:80\n" +
		"reject\thost not in allow list\t[2001:db8::1]:80\n"
	if code != exitFail || stdout != want || stderr != "" {
		t.Errorf("code %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, stdout, want, stderr)
	}

	// The summary: distinct rejected hosts, what would admit them, totals.
	// The same log twice (a file and standard input) doubles the counts.
	plain, _ := os.ReadFile("internal/hostlog/testdata/alb.log")
	code, stdout, _ = runCLI(t, string(plain), "match", "--format", "alb", "--allow", "lhy.kr,.lhy.kr", "--summary", log, "-")
	for _, want := range []string{
		"count  host              reason                  would be admitted by\n",
		"2      203.0.113.50:80   host not in allow list  203.0.113.50 (a public address",
		"2      [2001:db8::1]:80  host not in allow list  2001:db8::1 (a public address",
		"\n14 lines, 12 hosts: 8 accepted, 4 rejected (33.3%) in 2 distinct hosts; 2 lines without a Host\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if code != exitFail {
		t.Errorf("summary: code %d", code)
	}

	// A list that admits every record: exit 0, no table.
	code, stdout, _ = runCLI(t, "", "match", "--format", "alb", "--allow", "lhy.kr,.lhy.kr,203.0.113.50,2001:db8::/64", "--summary", log)
	if code != exitOK || stdout != "7 lines, 6 hosts: 6 accepted, 0 rejected (0.0%) in 0 distinct hosts; 1 line without a Host\n" {
		t.Errorf("all admitted: code %d, %q", code, stdout)
	}
}

// TestMatchDjangoHostileHosts: the hosts of a log are attacker text; no
// byte of one can forge an output line or a table row.
func TestMatchDjangoHostileHosts(t *testing.T) {
	log := `[2026-11-28 23:50:01,123] ERROR django.security.DisallowedHost: Invalid HTTP_HOST header: '10.0.1.23:8000'. You may need to add '10.0.1.23' to ALLOWED_HOSTS.
Invalid HTTP_HOST header: 'evil.example\naccept\tlhy.kr'. The domain name provided is not valid according to RFC 1034/1035.
Invalid HTTP_HOST header: 'x\x1b[31my'. The domain name provided is not valid according to RFC 1034/1035.
Invalid HTTP_HOST header: ''. You may need to add '' to ALLOWED_HOSTS.
Invalid HTTP_HOST header: '10.0.1.23:8000'. You may need to add '10.0.1.23' to ALLOWED_HOSTS.
`
	code, stdout, _ := runCLI(t, log, "match", "--format", "django", "--allow", "lhy.kr")
	want := "reject\thost not in allow list\t10.0.1.23:8000\n" +
		`reject	invalid character (a name may hold only a-z, 0-9, '.' and '-')	evil.example\naccept\tlhy.kr` + "\n" +
		`reject	invalid character (a name may hold only a-z, 0-9, '.' and '-')	x\x1b[31my` + "\n" +
		"reject\tempty host\t\n" +
		"reject\thost not in allow list\t10.0.1.23:8000\n"
	if code != exitFail || stdout != want {
		t.Errorf("code %d\nstdout:\n%s\nwant:\n%s", code, stdout, want)
	}
	_, stdout, _ = runCLI(t, log, "match", "--format", "django", "--allow", "lhy.kr", "--summary")
	cells := regexp.MustCompile(`  +`).ReplaceAllString(stdout, "|")
	for _, want := range []string{
		"2|10.0.1.23:8000|host not in allow list|@self, if it is this instance's address (a health check); else 10.0.1.23\n",
		"1|\"\"|empty host|--allow-empty (AllowEmptyHost)\n",
		`1|evil.example\naccept\tlhy.kr|invalid character (a name may hold only a-z, 0-9, '.' and '-')|- (malformed: no entry admits it)` + "\n",
		"5 lines, 5 hosts: 0 accepted, 5 rejected (100.0%) in 4 distinct hosts\n",
	} {
		if !strings.Contains(cells, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n != 7 { // header, 4 rows, blank, totals
		t.Errorf("summary has %d lines:\n%s", n, stdout)
	}
}

// TestMatchPrivateAddressWording: what a rejected private address is
// depends on the log. ALB access logs hold no health checks, so there it is
// a client inside the VPC and @self is not offered; in Django's log and in
// a list of Hosts it may be a health check, which @self admits.
func TestMatchPrivateAddressWording(t *testing.T) {
	alb := `http 2026-11-28T23:39:43.945958Z app/lhy-web/50dc6c495c0c9188 10.0.7.9:2817 10.0.1.23:80 0.000 0.001 0.000 400 400 34 366 "GET http://10.0.1.24:80/ HTTP/1.1" "curl/8.5.0" - - arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/lhy-web/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2026-11-28T23:39:43.944000Z "forward" "-" "-" "10.0.1.23:80" "400" "-" "-" TID_1234abcd5678ef90` + "\n"
	_, stdout, _ := runCLI(t, alb, "match", "--format", "alb", "--allow", "lhy.kr,@self", "--self", "10.0.1.23", "--summary")
	if !strings.Contains(stdout, "10.0.1.24 (a private address: a client inside the VPC; ALB access logs hold no health checks)") || strings.Contains(stdout, "@self, if") {
		t.Errorf("alb:\n%s", stdout)
	}
	for _, tt := range []struct{ format, in string }{
		{"hosts", "10.0.1.24:80\n"},
		{"django", "Invalid HTTP_HOST header: '10.0.1.24:80'. You may need to add '10.0.1.24' to ALLOWED_HOSTS.\n"},
	} {
		_, stdout, _ := runCLI(t, tt.in, "match", "--format", tt.format, "--allow", "lhy.kr,@self", "--self", "10.0.1.23", "--summary")
		if !strings.Contains(stdout, "@self, if it is this instance's address (a health check); else 10.0.1.24") {
			t.Errorf("%s:\n%s", tt.format, stdout)
		}
	}
}

func TestMatchInputErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"match", "--allow", "a.example", "--format", "nginx"}, `"nginx"`},
		{[]string{"match", "--allow", "a.example", "/nonexistent/alb.log"}, `"/nonexistent/alb.log"`},
	} {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: code %d, stderr %q", tt.args, code, stderr)
		}
	}
	// A gzip stream that is cut short is an error that names the input,
	// not a silent partial count.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(bytes.Repeat([]byte("lhy.kr\n"), 1000))
	w.Close()
	code, _, stderr := runCLI(t, gz.String()[:gz.Len()/2], "match", "--allow", "lhy.kr", "--summary")
	if code != exitUsage || !strings.Contains(stderr, "reading standard input") {
		t.Errorf("truncated gzip: code %d, stderr %q", code, stderr)
	}
}

func parseAddrs(t *testing.T, ss []string) []netip.Addr {
	t.Helper()
	var addrs []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	return addrs
}
