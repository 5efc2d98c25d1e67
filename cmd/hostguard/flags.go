package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// listFlag collects comma-separated values from a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: hostguard %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit code to use when parsing
// stopped the command: exitOK for -h, exitUsage for an error.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	default:
		return exitUsage, false
	}
}

// envFlags registers flags whose defaults come from environment variables
// and remembers the variables that did not parse, so that parse can name
// them.
type envFlags struct {
	fs   *flag.FlagSet
	e    *env
	cmd  string
	errs []error
}

func newEnvFlags(e *env, cmd, args string) *envFlags {
	return &envFlags{fs: newFlagSet(e, cmd, args), e: e, cmd: cmd}
}

// parse parses args, then reports the environment variables that did not
// parse. It returns the exit code to use when the command must stop.
func (f *envFlags) parse(args []string) (int, bool) {
	if code, ok := parseFlags(f.fs, args); !ok {
		return code, false
	}
	if err := errors.Join(f.errs...); err != nil {
		fmt.Fprintf(f.e.stderr, "hostguard %s: %v\n", f.cmd, err)
		return exitUsage, false
	}
	return 0, true
}

// fromEnv returns the parsed value of the environment variable envName, or
// def when it is unset or does not parse (then the error is remembered).
func fromEnv[T any](f *envFlags, envName string, def T, parse func(string) (T, error), want string) T {
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

func (f *envFlags) duration(name, envName string, def time.Duration, usage string) *time.Duration {
	d := fromEnv(f, envName, def, nonNegative(time.ParseDuration), "a duration; write it as 30s or 2m")
	f.fs.DurationVar(&d, name, d, usage+" (env "+envName+")")
	return &d
}

func (f *envFlags) boolean(name, envName, usage string) *bool {
	b := fromEnv(f, envName, false, strconv.ParseBool, "a boolean; write true or false")
	f.fs.BoolVar(&b, name, b, usage+" (env "+envName+")")
	return &b
}

func (f *envFlags) integer(name, envName string, def int, usage string) *int {
	n := fromEnv(f, envName, def, nonNegative(strconv.Atoi), "a whole number")
	f.fs.IntVar(&n, name, n, usage+" (env "+envName+")")
	return &n
}

func (f *envFlags) str(name, envName, def, usage string) *string {
	return f.fs.String(name, cmp.Or(f.e.getenv(envName), def), usage+" (env "+envName+")")
}

func (f *envFlags) list(name, envName, usage string) *listFlag {
	var l listFlag
	_ = l.Set(f.e.getenv(envName))
	f.fs.Var(&l, name, usage+"; comma separated, repeatable (env "+envName+")")
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
