package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/discover"
)

// execConfig is what the flags of hostguard exec ask for.
type execConfig struct {
	allow                      []string
	name, sep, format          string
	allowMissing, check, print bool
	df                         *discoveryFlags
}

func execCommand(e *env) subcommand {
	return subcommand{
		use:   "exec --allow LIST --env NAME [--format django|plain] [--sep ,] [--allow-missing] [--check] [discovery flags] -- COMMAND [ARGS...]",
		short: "run a command with the allow list, @self expanded, in an environment variable",
		long: "Run COMMAND (it replaces hostguard) with the allow list in the environment\n" +
			"variable NAME, @self replaced by the discovered addresses. Flags end at the\n" +
			"first argument, or at --: what follows is the command and its own flags.\n" +
			"With --format django (implied by --env DJANGO_ALLOWED_HOSTS) entries are\n" +
			"written as Django compares them, and entries Django can never match refuse\n" +
			"the start.",
		stopAtArgs: true,
		define: func(f *flagSet) func([]string) int {
			c := &execConfig{}
			allow := f.list("allow", "HOSTGUARD_ALLOW", "allow list; @self is replaced by the discovered addresses")
			name := f.str("env", "HOSTGUARD_ENV", "", "environment variable that receives the list, such as DJANGO_ALLOWED_HOSTS")
			format := f.str("format", "HOSTGUARD_FORMAT", "", "how the variable's reader compares hosts: django (entries converted, those Django cannot match refused) or plain (as given); default django for DJANGO_ALLOWED_HOSTS, else plain")
			f.choices("format", string(formatDjango), string(formatPlain))
			sep := f.str("sep", "HOSTGUARD_SEP", ",", "separator between the list's entries")
			allowMissing := f.boolean("allow-missing", "HOSTGUARD_ALLOW_MISSING", "start the command even when discovery fails, with @self left out")
			// A check or a print is a one-off: a variable that made every
			// start a check would never start the app.
			check := f.boolean("check", "", "validate the flags and the list, print what would run, and exit without discovery, looking up the command or starting anything")
			print := f.boolean("print", "", "print the variable's value (after discovery) on standard output and exit, without a command")
			c.df = addDiscoveryFlags(f)
			return func(argv []string) int {
				c.allow, c.name, c.format, c.sep = *allow, *name, *format, *sep
				c.allowMissing, c.check, c.print = *allowMissing, *check, *print
				return runExec(e, c, argv)
			}
		},
	}
}

// runExec checks the flags, discovers @self when the list has it, and
// replaces hostguard with the command, the list in its variable (or, with
// --check or --print, says what it would do and exits).
func runExec(e *env, c *execConfig, argv []string) int {
	fail := e.failer("exec")
	if err := c.validate(argv); err != nil {
		return fail(exitUsage, "%v", err)
	}
	p, err := c.plan(e)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if c.check {
		// The command is not looked up: a check often runs on another
		// machine than the one the command is for (a container image).
		c.printCheck(e, p, argv)
		return exitOK
	}
	path := ""
	if !c.print {
		if path, err = exec.LookPath(argv[0]); err != nil {
			return fail(exitUsage, "command %q: %v", argv[0], err)
		}
	}
	self, err := c.discoverSelf(e, p, argv)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	value := strings.Join(expandSelf(p.entries, self), c.sep)
	if c.print {
		fmt.Fprintln(e.stdout, value)
		return exitOK
	}
	logSetting(e, c.name, value, self)
	environ := setEnv(e.environ(), c.name, value)
	err = e.execve(path, argv, environ)
	return fail(exitFail, "running %s: %v", path, err)
}

// validate checks that the flags and the command line go together: an
// allow list, a valid variable unless printing, a separator, and a command
// exactly when not printing.
func (c *execConfig) validate(argv []string) error {
	switch {
	case len(c.allow) == 0:
		return errors.New("no allow list; pass --allow, for example --allow lhy.kr,@self")
	case c.name == "" && !c.print:
		return errors.New("no variable to set; pass --env, for example --env DJANGO_ALLOWED_HOSTS")
	case c.name != "" && !validEnvName(c.name):
		return fmt.Errorf("--env %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", c.name)
	case c.sep == "":
		return errors.New("--sep must not be empty")
	case c.print && len(argv) > 0:
		return fmt.Errorf("--print runs no command; drop %q, or drop --print", strings.Join(argv, " "))
	case len(argv) == 0 && !c.print:
		return errors.New("no command to run; put it after --, as in: hostguard exec --allow lhy.kr,@self --env DJANGO_ALLOWED_HOSTS -- gunicorn app.wsgi")
	}
	return nil
}

// execPlan is what exec works out from its flags before looking up the
// command or discovering anything.
type execPlan struct {
	guard   *hostguard.Guard
	format  listFormat
	entries []string // the allow list in format, @self not yet expanded
	opts    discover.Options
}

// plan parses the format, the allow list and the discovery flags. Its
// errors are worded for the user, after "hostguard exec: ".
func (c *execConfig) plan(e *env) (execPlan, error) {
	var p execPlan
	var err error
	if p.format, err = parseListFormat(c.format, c.name); err != nil {
		return p, err
	}
	if p.guard, err = hostguard.New(hostguard.Options{AllowedHosts: c.allow, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return p, errors.New(errText(err))
	}
	if p.entries, err = p.format.convert(c.allow); err != nil {
		return p, err
	}
	if p.opts, err = c.df.options(e); err != nil {
		return p, err
	}
	return p, nil
}

// printCheck says on standard output what exec would do, for --check.
func (c *execConfig) printCheck(e *env, p execPlan, argv []string) {
	setup := fmt.Sprintf("%q (%s format; @self discovered with platform %s)", strings.Join(p.entries, c.sep), p.format, p.opts.Platform)
	if c.print {
		fmt.Fprintf(e.stdout, "ok: would print %s\n", setup)
	} else {
		fmt.Fprintf(e.stdout, "ok: would set %s from %s and run %s\n", c.name, setup, strings.Join(argv, " "))
	}
}

// discoverSelf discovers the addresses @self stands for, if the list has
// it. With --allow-missing a failed discovery is a warning on standard
// error and the result nil; without, it and an empty result are errors.
func (c *execConfig) discoverSelf(e *env, p execPlan, argv []string) (*discover.Result, error) {
	if !p.guard.HasSelf() {
		return nil, nil
	}
	what := "printing the list"
	if !c.print {
		what = "starting " + argv[0]
	}
	res, err := discover.Discover(context.Background(), p.opts)
	switch {
	case err != nil && !c.allowMissing:
		return nil, fmt.Errorf("not %s: %s\n(go ahead without @self with --allow-missing)", what, flagWords(err))
	case err != nil:
		fmt.Fprintf(e.stderr, "hostguard exec: warning: @self left out: %s\n", flagWords(err))
		return nil, nil
	case len(res.Addresses) == 0 && !c.allowMissing:
		return nil, fmt.Errorf("not %s: discovery found no address for @self; give them with --self or name the platform with --platform", what)
	}
	return res, nil
}

// logSetting tells on standard error the value exec gives the variable
// name, and where each address of @self came from.
func logSetting(e *env, name, value string, self *discover.Result) {
	fmt.Fprintf(e.stderr, "hostguard exec: %s=%s\n", name, value)
	if self == nil {
		return
	}
	for _, a := range self.Addresses {
		fmt.Fprintf(e.stderr, "hostguard exec:   @self %s from %s\n", a.Addr, strings.Join(a.Sources, ", "))
	}
}

// expandSelf replaces "@self" with the discovered addresses, IPv6 in
// brackets as a Host header carries them (Django compares "[::1]"), and
// drops repeated entries.
func expandSelf(entries []string, self *discover.Result) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, en := range entries {
		if en != hostguard.SelfEntry {
			add(en)
			continue
		}
		if self == nil {
			continue
		}
		for _, a := range self.Addresses {
			if a.Addr.Is6() {
				add("[" + a.Addr.String() + "]")
			} else {
				add(a.Addr.String())
			}
		}
	}
	return out
}

func setEnv(environ []string, name, value string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

func validEnvName(s string) bool {
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
