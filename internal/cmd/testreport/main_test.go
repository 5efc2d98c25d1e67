package main

import (
	"bytes"
	"strings"
	"testing"
)

// stream is go test -json as Go 1.26 writes it for a module with a passing
// test, a skipped one, a skipped subtest, a failed one and a package
// without tests.
const stream = `{"Action":"start","Package":"example.com/m/a"}
{"Action":"run","Package":"example.com/m/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"example.com/m/a","Test":"TestOK"}
{"Action":"run","Package":"example.com/m/a","Test":"TestE2E"}
{"Action":"output","Package":"example.com/m/a","Test":"TestE2E","Output":"=== RUN   TestE2E\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestE2E","Output":"    e2e_test.go:86: end-to-end parts missing: haproxy (apt-get install -y haproxy)\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestE2E","Output":"--- SKIP: TestE2E (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestE2E"}
{"Action":"run","Package":"example.com/m/a","Test":"TestShells/zsh"}
{"Action":"output","Package":"example.com/m/a","Test":"TestShells/zsh","Output":"    cli_test.go:20: zsh is not installed (apt-get install zsh)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestShells/zsh"}
{"Action":"run","Package":"example.com/m/a","Test":"TestBroken"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"    x_test.go:9: got 1, want 2\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestBroken"}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\texample.com/m/a\t0.01s\n"}
{"Action":"fail","Package":"example.com/m/a"}
{"Action":"output","Package":"example.com/m/b","Output":"?   \texample.com/m/b\t[no test files]\n"}
{"Action":"skip","Package":"example.com/m/b"}
{"Action":"run","Package":"example.com/m/c","Test":"TestNginx"}
{"Action":"output","Package":"example.com/m/c","Test":"TestNginx","Output":"    nginx_test.go:34: end-to-end parts missing: haproxy (apt-get install -y haproxy)\n"}
{"Action":"skip","Package":"example.com/m/c","Test":"TestNginx"}
{"Action":"output","Package":"example.com/m/c","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m/c","Output":"ok  \texample.com/m/c\t0.02s\n"}
{"Action":"pass","Package":"example.com/m/c"}
`

func TestReport(t *testing.T) {
	var out, skips bytes.Buffer
	failed, err := report(strings.NewReader(stream+"go: a message of the go command\n"), &out, &skips)
	if err != nil || !failed {
		t.Fatalf("failed %v, err %v", failed, err)
	}
	want := "    x_test.go:9: got 1, want 2\n--- FAIL: TestBroken (0.00s)\nFAIL\nFAIL\texample.com/m/a\t0.01s\n" +
		"?   \texample.com/m/b\t[no test files]\nok  \texample.com/m/c\t0.02s\ngo: a message of the go command\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	wantSkips := "example.com/m/a\tTestE2E\tend-to-end parts missing: haproxy (apt-get install -y haproxy)\n" +
		"example.com/m/a\tTestShells/zsh\tzsh is not installed (apt-get install zsh)\n" +
		"example.com/m/c\tTestNginx\tend-to-end parts missing: haproxy (apt-get install -y haproxy)\n"
	if skips.String() != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", skips.String(), wantSkips)
	}

	var sum bytes.Buffer
	if err := summarize(&skips, &sum); err != nil {
		t.Fatal(err)
	}
	wantSum := `== skipped: 3 tests in 2 packages; what would make them run:
- end-to-end parts missing: haproxy (apt-get install -y haproxy)
    example.com/m/a TestE2E
    example.com/m/c TestNginx
- zsh is not installed (apt-get install zsh)
    example.com/m/a TestShells/zsh
`
	if sum.String() != wantSum {
		t.Errorf("summary:\n%s\nwant:\n%s", sum.String(), wantSum)
	}
}

func TestReportPasses(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
`
	var out, skips, sum bytes.Buffer
	if failed, err := report(strings.NewReader(in), &out, &skips); failed || err != nil || out.String() != "ok  \tp\t0.01s\n" {
		t.Errorf("%v %v %q", failed, err, out.String())
	}
	if err := summarize(&skips, &sum); err != nil || sum.String() != "== skipped: none; every suite ran\n" {
		t.Errorf("%v %q", err, sum.String())
	}
	// A build failure fails the run.
	if failed, _ := report(strings.NewReader(`{"ImportPath":"p","Action":"build-output","Output":"x.go:1: syntax error\n"}
{"ImportPath":"p","Action":"build-fail"}
`), &out, &skips); !failed {
		t.Error("build failure not reported")
	}
}
