package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/hostguard/hostguard"
)

func runMatch(e *env, args []string) int {
	fs := newFlagSet(e, "match", "--allow LIST [--allow LIST ...] < hosts.txt")
	var allow listFlag
	fs.Var(&allow, "allow", "allow-list entries, comma separated; repeatable (required)")
	allowEmpty := fs.Bool("allow-empty", false, "accept an empty Host (an empty input line)")
	explain := fs.Bool("explain", false, "add a third column: the entry that accepted the host")
	var self listFlag
	fs.Var(&self, "self", "addresses @self stands for, comma separated; repeatable (match never runs discovery)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "hostguard match: unexpected argument %q; Host values are read from standard input, one per line\n", fs.Arg(0))
		return exitUsage
	}
	if len(allow) == 0 {
		fmt.Fprintln(e.stderr, "hostguard match: no allow list; pass --allow, for example --allow example.com,.example.org")
		return exitUsage
	}
	g, err := hostguard.New(hostguard.Options{
		AllowedHosts:   allow,
		AllowEmptyHost: *allowEmpty,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "hostguard match: %v\n", err)
		return exitUsage
	}
	var addrs []netip.Addr
	for _, s := range self {
		a, err := netip.ParseAddr(strings.Trim(s, "[]"))
		if err != nil {
			fmt.Fprintf(e.stderr, "hostguard match: --self %q is not an IP address\n", s)
			return exitUsage
		}
		addrs = append(addrs, a)
	}
	g.SetSelf(addrs)
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	in := bufio.NewScanner(e.stdin)
	in.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	code := exitOK
	for in.Scan() {
		// Only the line ending and surrounding blanks are dropped; anything
		// else in the line is part of the value that is checked.
		d := g.Check(strings.Trim(in.Text(), " \t\r"))
		switch {
		case !d.Allowed():
			code = exitFail
			fmt.Fprintf(out, "reject\t%s\n", d.Reason)
		case *explain:
			fmt.Fprintf(out, "accept\t%s\t%s\n", d.Host, d.Entry)
		default:
			fmt.Fprintf(out, "accept\t%s\n", d.Host)
		}
	}
	if err := in.Err(); err != nil {
		out.Flush()
		fmt.Fprintf(e.stderr, "hostguard match: reading standard input: %v\n", err)
		return exitUsage
	}
	return code
}
