package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostguard/hostguard/internal/aemm"
)

func TestDiscoverCommand(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "discover", "--platform", "none", "--self", "10.0.1.23,2001:db8::1", "--verbose")
	if code != exitOK || stdout != "10.0.1.23\n2001:db8::1\n" || !strings.Contains(stderr, "address 10.0.1.23 from static") {
		t.Errorf("lines: %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "", "discover", "--platform", "none", "--self", "10.0.1.23", "--format", "csv")
	if code != exitOK || stdout != "address,sources\n10.0.1.23,static\n" {
		t.Errorf("csv: %d %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "discover", "--platform", "none", "--self", "10.0.1.23", "--format", "json")
	var out struct {
		Platform  string
		Addresses []struct {
			Address string
			Sources []string
		}
		Errors []string
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != exitOK || out.Platform != "none" || out.Addresses[0].Address != "10.0.1.23" || len(out.Errors) != 0 {
		t.Errorf("json: %d %q %v", code, stdout, err)
	}
	if code, _, stderr := runCLI(t, "", "discover", "--platform", "none"); code != exitFail || !strings.Contains(stderr, "no address found") {
		t.Errorf("nothing found: %d %q", code, stderr)
	}
}

func TestDiscoverUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "--platform", "aws"}, `"aws"`},
		{[]string{"discover", "--timeout", "soon"}, `"soon"`},
		{[]string{"discover", "--timeout", "-1s"}, `"-1s"`},
		{[]string{"discover", "--self", "10.0.0.300"}, `"10.0.0.300"`},
		{[]string{"discover", "--format", "xml"}, `"xml"`},
		{[]string{"discover", "extra"}, `"extra"`},
	} {
		if code, _, stderr := runCLI(t, "", tt.args...); code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: %d %q", tt.args, code, stderr)
		}
	}
	var out, errb bytes.Buffer
	e := testEnv("", &out, &errb, map[string]string{"HOSTGUARD_PLATFORM": "azur"})
	if code := run(e, []string{"discover"}); code != exitUsage || !strings.Contains(errb.String(), "HOSTGUARD_PLATFORM") {
		t.Errorf("bad env: %d %q", code, errb.String())
	}
}

func TestDiscoverAgainstMock(t *testing.T) {
	m := aemm.Start(t, aemm.Config{LocalIPv4: "127.0.0.11", V2Only: true})
	var out, errb bytes.Buffer
	e := testEnv("", &out, &errb, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": m.URL, "HOSTGUARD_PLATFORM": "ec2"})
	if code := run(e, []string{"discover"}); code != exitOK || !strings.Contains(out.String(), "127.0.0.11\n") {
		t.Errorf("%d %q %q", code, out.String(), errb.String())
	}
}

// TestDiscoverWordsFlags: the library's messages name Options fields; the
// command says the flags that set them.
func TestDiscoverWordsFlags(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	var out, errb bytes.Buffer
	e := testEnv("", &out, &errb, map[string]string{"HOSTGUARD_PLATFORM": "ec2"})
	if code := run(e, []string{"discover", "--imds-endpoint", hang.URL, "--timeout", "300ms", "--verbose"}); code != exitFail {
		t.Fatalf("exit %d", code)
	}
	msg := errb.String()
	if strings.Contains(msg, "Options.") || !strings.Contains(msg, "--platform") || !strings.Contains(msg, "hop-limit 2") {
		t.Errorf("the command's message:\n%s", msg)
	}
}

// TestDiscoverFailurePrintsNothing: a failed discovery writes nothing on
// standard output, in any format, even when some addresses were found
// (loopback, --self) before a source failed; standard error says why,
// without a doubled prefix.
func TestDiscoverFailurePrintsNothing(t *testing.T) {
	vars := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closedURL(t)}
	for _, format := range []string{"lines", "csv", "json"} {
		var out, errb bytes.Buffer
		code := run(testEnv("", &out, &errb, vars), []string{"discover", "--platform", "ec2", "--self", "10.0.1.23", "--format", format})
		if code != exitFail || out.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q", format, code, out.String())
		}
		if !strings.HasPrefix(errb.String(), "hostguard discover: ec2 metadata") || strings.Contains(errb.String(), "discover: discover:") {
			t.Errorf("%s: stderr %q", format, errb.String())
		}
	}
	if code, stdout, _ := runCLI(t, "", "discover", "--platform", "none", "--format", "csv"); code != exitFail || stdout != "" {
		t.Errorf("nothing found: %d %q", code, stdout)
	}
}

// TestNoDoubledPrefix: the library's own prefixes are not repeated after
// the command's name.
func TestNoDoubledPrefix(t *testing.T) {
	for _, args := range [][]string{
		{"match", "--allow", "http://lhy.kr"},
		{"exec", "--allow", "lhy.kr/x", "--env", "A", "--", "true"},
		{"proxy", "--allow", "lhy.kr/x"},
		{"proxy", "--allow", "lhy.kr", "--upstream", "ftp://x"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		cmd := "hostguard " + args[0] + ": "
		if code != exitUsage || !strings.HasPrefix(stderr, cmd) || strings.Contains(stderr, cmd+"hostguard:") || strings.Contains(stderr, cmd+"proxy:") {
			t.Errorf("%q: %d %q", args, code, stderr)
		}
	}
}
