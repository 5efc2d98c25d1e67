package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module information Go embeds, which is the
// module's version for "go install .../cmd/hostguard@v1.2.3".
var version = ""

// buildVersion returns the version and the VCS revision, if known.
func buildVersion() (v, rev string) {
	v = version
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v, rev
}

// versionLine is what hostguard version and hostguard --version print.
func versionLine() string {
	v, rev := buildVersion()
	if rev != "" {
		v += " " + rev
	}
	return fmt.Sprintf("hostguard %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCommand(e *env) subcommand {
	return subcommand{
		use:   "version",
		short: "print the version (also: hostguard --version)",
		define: func(*flagSet) func([]string) int {
			return func(args []string) int {
				if len(args) > 0 {
					return e.failer("version")(exitUsage, "unexpected argument %q", args[0])
				}
				fmt.Fprintln(e.stdout, versionLine())
				return exitOK
			}
		},
	}
}
