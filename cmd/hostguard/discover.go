package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hostguard/hostguard/discover"
)

func runDiscover(e *env, args []string) int {
	ef := newEnvFlags(e, "discover", "[--platform P] [--format lines|csv|json] [--timeout D] [--self ADDR] [--verbose]")
	fs := ef.fs
	df := addDiscoveryFlags(ef)
	format := fs.String("format", "lines", "output: lines (one address each), csv (address,sources) or json")
	verbose := fs.Bool("verbose", false, "explain on standard error what was detected and where each address came from")
	if code, ok := ef.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "hostguard discover: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	switch *format {
	case "lines", "csv", "json":
	default:
		fmt.Fprintf(e.stderr, "hostguard discover: --format %q: use lines, csv or json\n", *format)
		return exitUsage
	}
	o, err := df.options(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard discover: %v\n", err)
		return exitUsage
	}
	res, err := discover.Discover(context.Background(), o)
	if *verbose {
		explain(e, res)
	}
	if werr := writeResult(e, res, err, *format); werr != nil {
		fmt.Fprintf(e.stderr, "hostguard discover: %v\n", werr)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard discover: %s\n", flagWords(err))
		return exitFail
	}
	if len(res.Addresses) == 0 {
		fmt.Fprintln(e.stderr, "hostguard discover: no address found; name the platform with --platform or give addresses with --self")
		return exitFail
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

func writeResult(e *env, res *discover.Result, derr error, format string) error {
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
		out := struct {
			*discover.Result
			Errors []string `json:"errors"`
		}{Result: res, Errors: []string{}}
		if derr != nil {
			out.Errors = strings.Split(flagWords(derr), "\n")
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	default:
		for _, a := range res.Addresses {
			if _, err := fmt.Fprintln(e.stdout, a.Addr); err != nil {
				return err
			}
		}
		return nil
	}
}
