package main

import (
	"context"
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

func runExec(e *env, c *execConfig, argv []string) int {
	fail := e.failer("exec")
	switch {
	case len(c.allow) == 0:
		return fail(exitUsage, "no allow list; pass --allow, for example --allow lhy.kr,@self")
	case c.name == "" && !c.print:
		return fail(exitUsage, "no variable to set; pass --env, for example --env DJANGO_ALLOWED_HOSTS")
	case c.name != "" && !validEnvName(c.name):
		return fail(exitUsage, "--env %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", c.name)
	case c.sep == "":
		return fail(exitUsage, "--sep must not be empty")
	case c.print && len(argv) > 0:
		return fail(exitUsage, "--print runs no command; drop %q, or drop --print", strings.Join(argv, " "))
	case len(argv) == 0 && !c.print:
		return fail(exitUsage, "no command to run; put it after --, as in: hostguard exec --allow lhy.kr,@self --env DJANGO_ALLOWED_HOSTS -- gunicorn app.wsgi")
	}
	format, err := parseListFormat(c.format, c.name)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	g, err := hostguard.New(hostguard.Options{AllowedHosts: c.allow, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail(exitUsage, "%s", errText(err))
	}
	entries, err := format.convert(c.allow)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	o, err := c.df.options(e)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if c.check {
		// The command is not looked up: a check often runs on another
		// machine than the one the command is for (a container image).
		setup := fmt.Sprintf("%q (%s format; @self discovered with platform %s)", strings.Join(entries, c.sep), format, o.Platform)
		if c.print {
			fmt.Fprintf(e.stdout, "ok: would print %s\n", setup)
		} else {
			fmt.Fprintf(e.stdout, "ok: would set %s from %s and run %s\n", c.name, setup, strings.Join(argv, " "))
		}
		return exitOK
	}
	path := ""
	if !c.print {
		if path, err = exec.LookPath(argv[0]); err != nil {
			return fail(exitUsage, "command %q: %v", argv[0], err)
		}
	}

	var self *discover.Result
	what := "printing the list"
	if !c.print {
		what = "starting " + argv[0]
	}
	if g.HasSelf() {
		res, err := discover.Discover(context.Background(), o)
		switch {
		case err != nil && !c.allowMissing:
			return fail(exitFail, "not %s: %s\n(go ahead without @self with --allow-missing)", what, flagWords(err))
		case err != nil:
			fmt.Fprintf(e.stderr, "hostguard exec: warning: @self left out: %s\n", flagWords(err))
		case len(res.Addresses) == 0 && !c.allowMissing:
			return fail(exitFail, "not %s: discovery found no address for @self; give them with --self or name the platform with --platform", what)
		default:
			self = res
		}
	}
	value := strings.Join(expandSelf(entries, self), c.sep)
	if c.print {
		fmt.Fprintln(e.stdout, value)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "hostguard exec: %s=%s\n", c.name, value)
	if self != nil {
		for _, a := range self.Addresses {
			fmt.Fprintf(e.stderr, "hostguard exec:   @self %s from %s\n", a.Addr, strings.Join(a.Sources, ", "))
		}
	}
	environ := setEnv(e.environ(), c.name, value)
	err = e.execve(path, argv, environ)
	return fail(exitFail, "running %s: %v", path, err)
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
