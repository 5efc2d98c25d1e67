package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbeCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "lhy.kr" {
			w.WriteHeader(400)
			fmt.Fprint(w, "<h1>Bad Request (400)</h1>")
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	code, stdout, _ := runCLI(t, "", "probe", srv.URL+"/health/", "--host", "lhy.kr")
	if code != exitFail || !strings.Contains(stdout, "unhealthy: 400") || !strings.Contains(stdout, "cause: allow-list problem") ||
		!strings.Contains(stdout, "compared: the same with Host: lhy.kr: 200") {
		t.Errorf("%d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "probe", "--as", "k8s", "--expect", "400", srv.URL+"/health/")
	if code != exitOK || !strings.Contains(stdout, "healthy: 400") || !strings.Contains(stdout, "kube-probe") {
		t.Errorf("%d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"probe"}, {"probe", "--as", "alb", srv.URL}, {"probe", srv.URL, "--expect", "2xx"}, {"probe", "a", "b"}, {"probe", "ftp://x"}} {
		if code, _, _ := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%q: %d, want %d", args, code, exitUsage)
		}
	}
}
