// Command testreport reads "go test -json" and writes what "go test" would
// (package results, the output of failed tests, build errors), keeping the
// skipped tests and their reasons; with -summary it prints the closing
// summary of scripts/test: every skipped test, grouped by what would make
// it run.
//
//	go test -race -json ./... | testreport -skips FILE   # per module
//	testreport -summary FILE                             # at the end
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	skips := flag.String("skips", "", "append the skipped tests to this file (tab-separated: package, test, reason)")
	summary := flag.String("summary", "", "print the summary of the skipped tests recorded in this file, and exit")
	flag.Parse()
	if *summary != "" {
		f, err := os.Open(*summary)
		if errors.Is(err, os.ErrNotExist) {
			err = nil // nothing recorded: nothing skipped
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		var r io.Reader = strings.NewReader("")
		if f != nil {
			defer f.Close()
			r = f
		}
		if err := summarize(r, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		return
	}
	var w io.Writer = io.Discard
	if *skips != "" {
		f, err := os.OpenFile(*skips, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		defer f.Close()
		w = f
	}
	failed, err := report(os.Stdin, os.Stdout, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// report copies a go test -json stream as go test prints it without -v,
// and writes a line per skipped test to skips. It returns whether any
// test, package or build failed.
func report(in io.Reader, out, skips io.Writer) (failed bool, err error) {
	r := &reporter{out: out, skips: skips, buf: map[testKey][]string{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(out, "%s\n", line) // not an event: a message of the go command
			continue
		}
		r.handle(ev)
	}
	return r.failed, sc.Err()
}

// testKey names a test of a package.
type testKey struct{ pkg, test string }

// reporter is the state of report between the events of its stream.
type reporter struct {
	out, skips io.Writer
	buf        map[testKey][]string // output of tests still running
	failed     bool
}

// handle takes one event: a build's, a package's or a test's.
func (r *reporter) handle(ev event) {
	switch {
	case ev.Action == "build-output":
		fmt.Fprint(r.out, ev.Output)
	case ev.Action == "build-fail":
		r.failed = true
	case ev.Test == "":
		r.packageEvent(ev)
	default:
		r.testEvent(ev)
	}
}

// packageEvent takes an event of a package as a whole: its output is
// copied (but for "PASS" and the "=== " lines), and its failure shows what
// its unfinished tests wrote.
func (r *reporter) packageEvent(ev event) {
	switch ev.Action {
	case "output":
		if ev.Output != "PASS\n" && !strings.HasPrefix(ev.Output, "=== ") {
			fmt.Fprint(r.out, ev.Output)
		}
	case "fail":
		r.failed = true
		// A panic or a time-out ends the package with tests that
		// never reported: show what they wrote.
		for k, lines := range r.buf {
			if k.pkg == ev.Package {
				fmt.Fprint(r.out, strings.Join(lines, ""))
				delete(r.buf, k)
			}
		}
	}
}

// testEvent takes an event of a single test: its output is held until it
// ends, then shown if it failed, recorded as the reason if it was skipped,
// and dropped if it passed.
func (r *reporter) testEvent(ev event) {
	k := testKey{ev.Package, ev.Test}
	switch ev.Action {
	case "output":
		r.buf[k] = append(r.buf[k], ev.Output)
	case "fail":
		r.failed = true
		for _, l := range r.buf[k] {
			if !strings.HasPrefix(l, "=== ") {
				fmt.Fprint(r.out, l)
			}
		}
		delete(r.buf, k)
	case "skip":
		fmt.Fprintf(r.skips, "%s\t%s\t%s\n", ev.Package, ev.Test, skipReason(r.buf[k]))
		delete(r.buf, k)
	case "pass":
		delete(r.buf, k)
	}
}

// fileLine is the "    name_test.go:12: " that t.Skip puts before its
// message.
var fileLine = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: ?`)

// skipReason is the message of a skipped test, on one line.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		msg = append(msg, strings.TrimSpace(fileLine.ReplaceAllString(l, "")))
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

// summarize prints the skipped tests of a run, grouped by reason (which
// says what is missing and how to install it).
func summarize(in io.Reader, out io.Writer) error {
	type group struct {
		reason string
		tests  []string
	}
	var groups []*group
	pkgs := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		pkg, rest, ok1 := strings.Cut(sc.Text(), "\t")
		test, reason, ok2 := strings.Cut(rest, "\t")
		if !ok1 || !ok2 {
			return fmt.Errorf("not a skip record: %q", sc.Text())
		}
		n++
		pkgs[pkg] = true
		i := slices.IndexFunc(groups, func(g *group) bool { return g.reason == reason })
		if i < 0 {
			groups = append(groups, &group{reason: reason})
			i = len(groups) - 1
		}
		groups[i].tests = append(groups[i].tests, pkg+" "+test)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(out, "== skipped: none; every suite ran")
		return nil
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return cmp.Compare(a.tests[0], b.tests[0]) })
	fmt.Fprintf(out, "== skipped: %d %s in %d %s; what would make them run:\n", n, plural(n, "test"), len(pkgs), plural(len(pkgs), "package"))
	for _, g := range groups {
		fmt.Fprintf(out, "- %s\n", g.reason)
		for _, t := range g.tests {
			fmt.Fprintf(out, "    %s\n", t)
		}
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
