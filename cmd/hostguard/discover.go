package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hostguard/hostguard/discover"
)

func discoverCommand(e *env) subcommand {
	return subcommand{
		use:   "discover [--platform P] [--format lines|csv|json] [--timeout D] [--self ADDR] [--verbose]",
		short: "print the addresses @self stands for on this machine",
		define: func(f *flagSet) func([]string) int {
			df := addDiscoveryFlags(f)
			// How to show the result, not what to discover: no variable.
			format := f.str("format", "", "lines", "output: lines (one address each), csv (address,sources) or json")
			f.choices("format", "lines", "csv", "json")
			verbose := f.boolean("verbose", "", "explain on standard error what was detected and where each address came from")
			return func(args []string) int { return runDiscover(e, df, *format, *verbose, args) }
		},
	}
}

// runDiscover discovers @self and prints it. A failed discovery prints
// nothing on standard output, so that a script never takes a partial
// result for the answer; standard error says why.
func runDiscover(e *env, df *discoveryFlags, format string, verbose bool, args []string) int {
	fail := e.failer("discover")
	if len(args) > 0 {
		return fail(exitUsage, "unexpected argument %q", args[0])
	}
	switch format {
	case "lines", "csv", "json":
	default:
		return fail(exitUsage, "--format %q: use lines, csv or json", format)
	}
	o, err := df.options(e)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	res, err := discover.Discover(context.Background(), o)
	if verbose {
		explain(e, res)
	}
	if err != nil {
		return fail(exitFail, "%s", flagWords(err))
	}
	if len(res.Addresses) == 0 {
		return fail(exitFail, "no address found; name the platform with --platform or give addresses with --self")
	}
	if err := writeResult(e, res, format); err != nil {
		return fail(exitFail, "%v", err)
	}
	return exitOK
}

// explain writes what was detected and where each address came from.
func explain(e *env, res *discover.Result) {
	fmt.Fprintf(e.stderr, "platform: %s\n", res.Platform)
	for _, ev := range res.Evidence {
		fmt.Fprintf(e.stderr, "  %s\n", optionsAsFlags.Replace(ev))
	}
	for _, a := range res.Addresses {
		fmt.Fprintf(e.stderr, "address %s from %s\n", a.Addr, strings.Join(a.Sources, ", "))
	}
}

func writeResult(e *env, res *discover.Result, format string) error {
	switch format {
	case "csv":
		w := csv.NewWriter(e.stdout)
		_ = w.Write([]string{"address", "sources"})
		for _, a := range res.Addresses {
			_ = w.Write([]string{a.Addr.String(), strings.Join(a.Sources, ";")})
		}
		w.Flush()
		return w.Error()
	case "json":
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	default:
		for _, a := range res.Addresses {
			if _, err := fmt.Fprintln(e.stdout, a.Addr); err != nil {
				return err
			}
		}
		return nil
	}
}
