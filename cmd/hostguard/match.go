package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/cmd/hostguard/internal/hostlog"
)

// matchCommand checks the Host values of files (or standard input)
// against an allow list: one per line, or out of the logs people already
// have.
func matchCommand(e *env) subcommand {
	return subcommand{
		use:   "match --allow LIST [--format hosts|alb|django] [--summary] [--explain] [--self ADDR] [FILE...]",
		short: "test an allow list against Host values: one per line, ALB access logs or Django's log",
		long: "Test an allow list against the Host values of files, or of standard input with\n" +
			"none or -: one Host per line (--format hosts), AWS ALB access logs (alb, plain or\n" +
			"gzip) or Django's \"Invalid HTTP_HOST header\" lines (django). Flags may come\n" +
			"before or after the files.",
		define: func(f *flagSet) func([]string) int {
			// match is a one-off dry run: no environment variable changes
			// it, so the list of a deployment (HOSTGUARD_ALLOW) is never
			// tested by accident.
			allow := f.list("allow", "", "allow-list entries (required)")
			allowEmpty := f.boolean("allow-empty", "", "accept an empty Host (an empty input line)")
			explain := f.boolean("explain", "", "add a third column: the entry that accepted the host")
			format := f.str("format", "", "hosts", "input: hosts (one Host per line), alb (AWS ALB access logs, plain or .gz), django (Django's Invalid HTTP_HOST header lines)")
			summary := f.boolean("summary", "", "print a table of the distinct rejected hosts (count, reason, the entry that would admit it) and totals, instead of a line per Host")
			self := f.list("self", "", "addresses @self stands for (match never runs discovery)")
			f.choices("format", "hosts", "alb", "django")
			return func(args []string) int {
				return runMatch(e, *allow, *self, *format, *allowEmpty, *explain, *summary, args)
			}
		},
	}
}

// runMatch runs hostguard match over inputs.
func runMatch(e *env, allow, self []string, format string, allowEmpty, explain, summary bool, inputs []string) int {
	fail := e.failer("match")
	f, err := hostlog.ParseFormat(format)
	if err != nil {
		return fail(exitUsage, "--format: %v", err)
	}
	if len(allow) == 0 {
		return fail(exitUsage, "no allow list; pass --allow, for example --allow example.com,.example.org")
	}
	g, err := hostguard.New(hostguard.Options{
		AllowedHosts:   allow,
		AllowEmptyHost: allowEmpty,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fail(exitUsage, "%s", errText(err))
	}
	var addrs []netip.Addr
	for _, s := range self {
		a, err := parseSelfAddr(s)
		if err != nil {
			return fail(exitUsage, "--self: %v", err)
		}
		addrs = append(addrs, a)
	}
	g.SetSelf(addrs)

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	m := &matcher{g: g, out: out, format: f, explain: explain, summary: summary,
		rejected: map[string]*rejectedHost{}, normal: map[string]string{}}
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, name := range inputs {
		if err := m.read(name, e.stdin); err != nil {
			out.Flush()
			return fail(exitUsage, "%v", err)
		}
	}
	if summary {
		m.writeSummary()
	}
	if m.rejectedTotal > 0 {
		return exitFail
	}
	return exitOK
}

// read checks the hosts of one input, a file or "-" for stdin, and closes
// the file before the next one is opened: an S3 bucket's worth of logs is
// thousands of files.
func (m *matcher) read(name string, stdin io.Reader) error {
	r, what := stdin, "standard input"
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("cannot read %q: %w; name a readable log file, or - (or nothing) for standard input",
				name, errors.Unwrap(err))
		}
		defer file.Close()
		r, what = file, name
	}
	c, err := hostlog.Read(r, m.format, m.check)
	m.counts.Lines += c.Lines
	m.counts.Skipped += c.Skipped
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

// matcher checks the hosts of one run and keeps what the summary needs.
type matcher struct {
	g                *hostguard.Guard
	out              *bufio.Writer
	format           hostlog.Format
	explain, summary bool

	counts        hostlog.Counts
	accepted      int
	rejectedTotal int
	rejected      map[string]*rejectedHost // by the host as sent
	normal        map[string]string        // normalised form of accepted hosts, cached
	unlisted      int                      // rejections of hosts beyond maxCache distinct ones
}

// rejectedHost is one distinct host the list rejects.
type rejectedHost struct {
	host  string
	count int
	d     hostguard.Decision
}

// maxCache bounds the distinct hosts remembered: a log of scanners holds
// many.
const maxCache = 100_000

func (m *matcher) check(h []byte, _ int) error {
	if m.g.Allow(string(h)) { // no allocation: the compiler does not copy for the call
		m.accepted++
		if m.summary {
			return nil
		}
		host, ok := m.normal[string(h)]
		if !ok || m.explain {
			d := m.g.Check(string(h))
			host = d.Host
			if m.explain {
				m.out.WriteString("accept\t" + host + "\t" + d.Entry + "\n")
				return nil
			}
			if len(m.normal) < maxCache {
				m.normal[string(h)] = host
			}
		}
		m.out.WriteString("accept\t")
		m.out.WriteString(host)
		m.out.WriteByte('\n')
		return nil
	}
	m.rejectedTotal++
	r, ok := m.rejected[string(h)]
	if !ok {
		r = &rejectedHost{host: string(h), d: m.g.Check(string(h))}
		if len(m.rejected) < maxCache {
			m.rejected[r.host] = r
		} else {
			m.unlisted++
		}
	}
	r.count++
	if m.summary {
		return nil
	}
	if m.format == hostlog.Hosts {
		// One Host per line: the line says which host it was.
		fmt.Fprintf(m.out, "reject\t%s\n", r.d.Reason)
	} else {
		fmt.Fprintf(m.out, "reject\t%s\t%s\n", r.d.Reason, quoteHost(r.host))
	}
	return nil
}

// quoteHost writes a host from a log so that no byte of it can forge an
// output line.
func quoteHost(h string) string {
	q := strconv.QuoteToASCII(h)
	return q[1 : len(q)-1]
}

// writeSummary prints the distinct rejected hosts, most frequent first,
// and the totals.
func (m *matcher) writeSummary() {
	rows := make([]*rejectedHost, 0, len(m.rejected))
	for _, r := range m.rejected {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *rejectedHost) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.host, b.host))
	})
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(m.out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "count\thost\treason\twould be admitted by")
		for _, r := range rows {
			host := quoteHost(r.host)
			if host == "" {
				host = `""`
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.count, host, r.d.Reason, admittedBy(r.d, m.format))
		}
		tw.Flush()
		fmt.Fprintln(m.out)
	}
	total := m.accepted + m.rejectedTotal
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(m.rejectedTotal) / float64(total)
	}
	fmt.Fprintf(m.out, "%s, %s: %d accepted, %d rejected (%.1f%%) in %s",
		plural(m.counts.Lines, "line"), plural(total, "host"), m.accepted, m.rejectedTotal, pct,
		plural(len(rows), "distinct host"))
	if m.unlisted > 0 {
		fmt.Fprintf(m.out, "; %d rejections of further distinct hosts not listed (the table keeps %d)", m.unlisted, maxCache)
	}
	if m.counts.Skipped > 0 {
		fmt.Fprintf(m.out, "; %s without a Host", plural(m.counts.Skipped, "line"))
	}
	fmt.Fprintln(m.out)
}

// admittedBy names the entry that would admit a rejected host, or says why
// none would. What a private address is depends on the log: ALB access logs
// hold no health checks (Elastic Load Balancing does not log them), so
// there it is a client inside the VPC; in Django's log or a list of Hosts
// it may be a health check addressed to an instance.
func admittedBy(d hostguard.Decision, f hostlog.Format) string {
	switch {
	case d.Reason == hostguard.ReasonEmpty:
		return "--allow-empty (AllowEmptyHost)"
	case d.Reason.Malformed():
		return "- (malformed: no entry admits it)"
	}
	name := d.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	if a, err := netip.ParseAddr(name); err == nil {
		if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
			if f == hostlog.ALB {
				return name + " (a private address: a client inside the VPC; ALB access logs hold no health checks)"
			}
			return "@self, if it is this instance's address (a health check); else " + name
		}
		return name + " (a public address: a scanner, or a client that skips DNS)"
	}
	return name
}

// plural writes a count and a noun that takes an s.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
