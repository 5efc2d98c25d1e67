package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hostguard/hostguard/probe"
)

func probeCommand(e *env) subcommand {
	return subcommand{
		use:   "probe URL [--as elb|classic-elb|k8s|gce|azure-appgw] [--host H] [--expect CODES] [--timeout D]",
		short: "send a load balancer's health check to an app and explain a failure",
		define: func(f *flagSet) func([]string) int {
			// probe is run by hand against one URL: no environment
			// variable changes it (HOSTGUARD_TIMEOUT is discovery's
			// deadline, not a request's).
			as := f.str("as", "", "elb", "checker to imitate: elb (ALB/NLB), classic-elb, k8s, gce or azure-appgw")
			var checkers []string
			for _, c := range probe.Checkers() {
				checkers = append(checkers, string(c))
			}
			f.choices("as", checkers...)
			host := f.str("host", "", "", "the app's real name, sent in a second request to tell an allow-list rejection apart")
			expect := f.str("expect", "", "", "success codes, such as 200 or 200-399 (default: the checker's)")
			timeout := f.duration("timeout", "", 5*time.Second, "limit for each request")
			return func(args []string) int { return runProbe(e, *as, *host, *expect, *timeout, args) }
		},
	}
}

func runProbe(e *env, as, host, expect string, timeout time.Duration, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(e.stderr, "hostguard probe: give one URL, such as http://10.0.1.23:8000/health/")
		return exitUsage
	}
	url := args[0]
	checker, err := probe.ParseChecker(as)
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard probe: --as: %v\n", err)
		return exitUsage
	}
	if expect != "" {
		if _, err := probe.ParseCodes(expect); err != nil {
			fmt.Fprintf(e.stderr, "hostguard probe: --expect: %v\n", err)
			return exitUsage
		}
	}
	res, err := probe.Run(context.Background(), probe.Options{URL: url, As: checker, Host: host, Expect: expect, Timeout: timeout})
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
