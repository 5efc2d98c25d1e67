package main

import (
	"errors"
	"flag"
	"fmt"
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
// and remembers the variables that did not parse, so the command can name
// them.
type envFlags struct {
	fs   *flag.FlagSet
	e    *env
	errs []error
}

func (f *envFlags) duration(name, envName string, def time.Duration, usage string) *time.Duration {
	d := def
	if v := f.e.getenv(envName); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil || p < 0 {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not a duration; write it as 30s or 2m", envName, v))
		} else {
			d = p
		}
	}
	f.fs.DurationVar(&d, name, d, usage+" (env "+envName+")")
	return &d
}

func (f *envFlags) boolean(name, envName, usage string) *bool {
	b := false
	if v := f.e.getenv(envName); v != "" {
		p, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not a boolean; write true or false", envName, v))
		}
		b = p
	}
	f.fs.BoolVar(&b, name, b, usage+" (env "+envName+")")
	return &b
}

func (f *envFlags) integer(name, envName string, def int, usage string) *int {
	n := def
	if v := f.e.getenv(envName); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not a whole number", envName, v))
		} else {
			n = p
		}
	}
	f.fs.IntVar(&n, name, n, usage+" (env "+envName+")")
	return &n
}

func (f *envFlags) str(name, envName, def, usage string) *string {
	s := f.fs.String(name, envOr(f.e, envName, def), usage+" (env "+envName+")")
	return s
}

func (f *envFlags) list(name, envName, usage string) *listFlag {
	var l listFlag
	_ = l.Set(f.e.getenv(envName))
	f.fs.Var(&l, name, usage+"; comma separated, repeatable (env "+envName+")")
	return &l
}
