package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hostguard/hostguard/probe"
)

func runProbe(e *env, args []string) int {
	fs := newFlagSet(e, "probe", "URL [--as elb|classic-elb|k8s|gce|azure-appgw] [--host H] [--expect CODES] [--timeout D]")
	as := fs.String("as", "elb", "checker to imitate: elb (ALB/NLB), classic-elb, k8s, gce or azure-appgw")
	host := fs.String("host", "", "the app's real name, sent in a second request to tell an allow-list rejection apart")
	expect := fs.String("expect", "", "success codes, such as 200 or 200-399 (default: the checker's)")
	timeout := fs.Duration("timeout", 5*time.Second, "limit for each request")
	// The URL may come before or after the flags.
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if url == "" && fs.NArg() > 0 {
		url = fs.Arg(0)
		if code, ok := parseFlags(fs, fs.Args()[1:]); !ok {
			return code
		}
	}
	if url == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "hostguard probe: give one URL, such as http://10.0.1.23:8000/health/")
		return exitUsage
	}
	checker, err := probe.ParseChecker(*as)
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard probe: --as: %v\n", err)
		return exitUsage
	}
	if *expect != "" {
		if _, err := probe.ParseCodes(*expect); err != nil {
			fmt.Fprintf(e.stderr, "hostguard probe: --expect: %v\n", err)
			return exitUsage
		}
	}
	res, err := probe.Run(context.Background(), probe.Options{URL: url, As: checker, Host: *host, Expect: *expect, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard probe: %v\n", err)
		return exitUsage
	}
	verdict := "unhealthy"
	if res.Healthy {
		verdict = "healthy"
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", verdict, describe(res.Check))
	fmt.Fprintf(e.stdout, "  sent: GET %s with Host: %s, User-Agent: %s\n", res.Check.URL, res.Check.Host, orDash(res.Check.UserAgent))
	if c := res.Comparison; c != nil {
		fmt.Fprintf(e.stdout, "  compared: the same with Host: %s: %s\n", c.Host, describe(*c))
	}
	if res.Healthy {
		return exitOK
	}
	fmt.Fprintf(e.stdout, "cause: %s\nfix: %s\n", res.Cause, res.Fix)
	return exitFail
}

func describe(x probe.Exchange) string {
	if x.Err != nil {
		return "no answer (" + x.Err.Error() + ")"
	}
	s := fmt.Sprintf("%d %s in %s", x.Status, http.StatusText(x.Status), x.Duration.Round(time.Millisecond))
	if x.Location != "" {
		s += ", Location: " + x.Location
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
