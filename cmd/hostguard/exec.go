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

const execArgs = "--allow LIST --env NAME [--sep ,] [--allow-missing] [--check] [discovery flags] -- COMMAND [ARGS...]"

func runExec(e *env, args []string) int {
	ef := newEnvFlags(e, "exec", execArgs)
	fs := ef.fs
	allowFlag := ef.list("allow", "HOSTGUARD_ALLOW", "allow list; @self is replaced by the discovered addresses")
	name := ef.str("env", "HOSTGUARD_ENV", "", "environment variable that receives the list, such as DJANGO_ALLOWED_HOSTS")
	sep := ef.str("sep", "HOSTGUARD_SEP", ",", "separator between the list's entries")
	allowMissing := fs.Bool("allow-missing", false, "start the command even when discovery fails, with @self left out")
	check := fs.Bool("check", false, "validate the flags and the list, print what would run, and exit without discovery, looking up the command or starting anything")
	df := addDiscoveryFlags(ef)
	if code, ok := ef.parse(args); !ok {
		return code
	}
	allow := *allowFlag
	fail := e.failer("exec")
	argv := fs.Args()
	switch {
	case len(allow) == 0:
		return fail(exitUsage, "no allow list; pass --allow, for example --allow lhy.kr,@self")
	case *name == "":
		return fail(exitUsage, "no variable to set; pass --env, for example --env DJANGO_ALLOWED_HOSTS")
	case !validEnvName(*name):
		return fail(exitUsage, "--env %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", *name)
	case *sep == "":
		return fail(exitUsage, "--sep must not be empty")
	case len(argv) == 0:
		return fail(exitUsage, "no command to run; put it after --, as in: hostguard exec --allow lhy.kr,@self --env DJANGO_ALLOWED_HOSTS -- gunicorn app.wsgi")
	}
	g, err := hostguard.New(hostguard.Options{AllowedHosts: allow, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	o, err := df.options(e)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if *check {
		// The command is not looked up: a check often runs on another
		// machine than the one the command is for (a container image).
		fmt.Fprintf(e.stdout, "ok: would set %s from %q (@self discovered with platform %s) and run %s\n",
			*name, strings.Join(allow, *sep), o.Platform, strings.Join(argv, " "))
		return exitOK
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fail(exitUsage, "command %q: %v", argv[0], err)
	}

	var self *discover.Result
	if g.HasSelf() {
		res, err := discover.Discover(context.Background(), o)
		switch {
		case err != nil && !*allowMissing:
			return fail(exitFail, "not starting %s: %s\n(start it anyway, without @self, with --allow-missing)", argv[0], flagWords(err))
		case err != nil:
			fmt.Fprintf(e.stderr, "hostguard exec: warning: @self left out: %s\n", flagWords(err))
		case len(res.Addresses) == 0 && !*allowMissing:
			return fail(exitFail, "not starting %s: discovery found no address for @self; give them with --self or name the platform with --platform", argv[0])
		default:
			self = res
		}
	}
	value := strings.Join(expandSelf(allow, self), *sep)
	fmt.Fprintf(e.stderr, "hostguard exec: %s=%s\n", *name, value)
	if self != nil {
		for _, a := range self.Addresses {
			fmt.Fprintf(e.stderr, "hostguard exec:   @self %s from %s\n", a.Addr, strings.Join(a.Sources, ", "))
		}
	}
	environ := setEnv(e.environ(), *name, value)
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
