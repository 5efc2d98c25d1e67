package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// listFlag collects comma-separated values from a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Type names the value in help: --allow list.
func (l *listFlag) Type() string { return "list" }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// flagSet registers a subcommand's flags, each with its environment
// variable (envName "": none), and remembers the variables that did not
// parse, so that the command names them before it runs.
type flagSet struct {
	*pflag.FlagSet
	e    *env
	cmd  *cobra.Command
	errs []error
}

// choices makes the shells complete a flag's value from a fixed set.
func (f *flagSet) choices(name string, values ...string) {
	_ = f.cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// annotate records a flag's environment variable, and says it in help.
func (f *flagSet) annotate(name, envName string) {
	if envName == "" {
		return
	}
	fl := f.Lookup(name)
	fl.Usage += " (env " + envName + ")"
	_ = f.SetAnnotation(name, envAnnotation, []string{envName})
}

// fromEnv returns the parsed value of the environment variable envName, or
// def when it is unset or does not parse (then the error is remembered).
func fromEnv[T any](f *flagSet, envName string, def T, parse func(string) (T, error), want string) T {
	if envName == "" {
		return def
	}
	v := f.e.getenv(envName)
	if v == "" {
		return def
	}
	p, err := parse(v)
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s=%q is not %s", envName, v, want))
		return def
	}
	return p
}

func nonNegative[T int | time.Duration](parse func(string) (T, error)) func(string) (T, error) {
	return func(s string) (T, error) {
		v, err := parse(s)
		if err == nil && v < 0 {
			err = errors.New("negative")
		}
		return v, err
	}
}

func (f *flagSet) duration(name, envName string, def time.Duration, usage string) *time.Duration {
	d := f.Duration(name, fromEnv(f, envName, def, nonNegative(time.ParseDuration), "a duration; write it as 30s or 2m"), usage)
	f.annotate(name, envName)
	return d
}

func (f *flagSet) boolean(name, envName, usage string) *bool {
	b := f.Bool(name, fromEnv(f, envName, false, strconv.ParseBool, "a boolean; write true or false"), usage)
	f.annotate(name, envName)
	return b
}

func (f *flagSet) integer(name, envName string, def int, usage string) *int {
	n := f.Int(name, fromEnv(f, envName, def, nonNegative(strconv.Atoi), "a whole number"), usage)
	f.annotate(name, envName)
	return n
}

func (f *flagSet) str(name, envName, def, usage string) *string {
	if envName != "" {
		def = cmp.Or(f.e.getenv(envName), def)
	}
	s := f.String(name, def, usage)
	f.annotate(name, envName)
	return s
}

func (f *flagSet) list(name, envName, usage string) *listFlag {
	var l listFlag
	if envName != "" {
		_ = l.Set(f.e.getenv(envName))
	}
	f.Var(&l, name, usage+"; comma separated, repeatable")
	f.annotate(name, envName)
	return &l
}

// failer returns what a subcommand reports a failure with: the message,
// after the command's name, on standard error, and the exit code to return.
func (e *env) failer(cmd string) func(code int, format string, a ...any) int {
	return func(code int, format string, a ...any) int {
		fmt.Fprintf(e.stderr, "hostguard "+cmd+": "+format+"\n", a...)
		return code
	}
}

// errText is an error as the command prints it after its own name: the
// package prefixes of the library's messages ("hostguard: ", "discover: ",
// "proxy: ") dropped at the start of each line, so that no message reads
// "hostguard match: hostguard: ..." or "discover: discover: ...".
func errText(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		for _, p := range []string{"hostguard: ", "discover: ", "proxy: "} {
			l = strings.TrimPrefix(l, p)
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// parseSelfAddr parses an address given for @self (--self, HOSTGUARD_SELF):
// an IP address, IPv6 with or without brackets, without a zone id, which a
// Host can never carry.
func parseSelfAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address without zone, such as 10.0.1.23 or 2001:db8::1", s)
	}
	return a, nil
}
