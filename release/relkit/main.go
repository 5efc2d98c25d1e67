// Command relkit holds the parts of hostguard's release that a shell script
// would do badly: the modules at a version (go.mod and go.sum of the
// released modules, module zips for a local module proxy), the notice of
// the licences compiled into the command, deterministic archives and the
// SBOM's derived serial number and timestamp.
//
// It is run by scripts/release and scripts/prepare-release:
//
//	relkit setversion -repo DIR VERSION         require VERSION between the released modules, in the tree
//	relkit proxy -repo DIR -epoch N VERSION OUT  the released modules at VERSION as a file module proxy in OUT
//	relkit changelog -repo DIR VERSION DATE     CHANGELOG.md's Unreleased entries into VERSION's section
//	relkit notice -repo DIR [-check] [-o FILE]   the third-party licence notice of cmd/hostguard
//	relkit archive -epoch N OUT.tar.gz NAME=FILE[:MODE]...
//	relkit sbom -epoch N FILE                    set an SBOM's serial number (from its content) and timestamp
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const usage = `usage:
  relkit setversion -repo DIR VERSION
  relkit proxy -repo DIR -epoch N VERSION OUT
  relkit changelog -repo DIR VERSION DATE
  relkit notice -repo DIR [-check] [-o FILE]
  relkit archive -epoch N OUT.tar.gz NAME=FILE[:MODE]...
  relkit sbom -epoch N FILE
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "relkit %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// options are the flags of relkit's commands, each command using some.
type options struct {
	repo  string // the repository's root, made absolute
	epoch string // the release time in seconds since 1970
	check bool   // notice: check the file instead of writing it
	out   string // notice: the file, relative to repo
}

// run runs relkit's command cmd with the flags and arguments args.
func run(cmd string, args []string) error {
	o, args, err := parseFlags(cmd, args)
	if err != nil {
		return err
	}
	switch cmd {
	case "setversion":
		return runSetVersion(o, args)
	case "proxy":
		return runProxy(o, args)
	case "changelog":
		return runChangelog(o, args)
	case "notice":
		return runNotice(o, args)
	case "archive":
		return runArchive(o, args)
	case "sbom":
		return runSBOM(o, args)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// parseFlags parses the flags of command cmd from args and returns them
// with the arguments that follow them.
func parseFlags(cmd string, args []string) (*options, []string, error) {
	fs := flag.NewFlagSet("relkit "+cmd, flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.repo, "repo", ".", "the repository's root")
	fs.StringVar(&o.epoch, "epoch", os.Getenv("SOURCE_DATE_EPOCH"), "the time of the release in seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	fs.BoolVar(&o.check, "check", false, "notice: fail if the file differs from what would be generated, instead of writing it")
	fs.StringVar(&o.out, "o", "THIRD_PARTY_LICENSES", "notice: the file, relative to -repo")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if abs, err := filepath.Abs(o.repo); err == nil {
		o.repo = abs
	}
	return o, fs.Args(), nil
}

// when returns the release time given by -epoch or $SOURCE_DATE_EPOCH.
func (o *options) when() (time.Time, error) {
	if o.epoch == "" {
		return time.Time{}, fmt.Errorf("no -epoch and no SOURCE_DATE_EPOCH: give the release time in seconds since 1970 (git log -1 --format=%%ct)")
	}
	n, err := strconv.ParseInt(o.epoch, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("epoch %q is not a number of seconds since 1970", o.epoch)
	}
	return time.Unix(n, 0).UTC(), nil
}

// runSetVersion runs relkit setversion VERSION.
func runSetVersion(o *options, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one VERSION, got %q", args)
	}
	return setVersion(o.repo, args[0])
}

// runProxy runs relkit proxy VERSION OUT.
func runProxy(o *options, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want VERSION and OUT, got %q", args)
	}
	t, err := o.when()
	if err != nil {
		return err
	}
	return writeProxy(o.repo, args[0], t, args[1])
}

// runChangelog runs relkit changelog VERSION DATE.
func runChangelog(o *options, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want VERSION and DATE (YYYY-MM-DD), got %q", args)
	}
	if _, err := time.Parse(time.DateOnly, args[1]); err != nil {
		return fmt.Errorf("date %q is not YYYY-MM-DD", args[1])
	}
	return changelog(o.repo, args[0], args[1])
}

// runNotice runs relkit notice, which takes no arguments.
func runNotice(o *options, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return notice(o.repo, o.out, o.check)
}

// runArchive runs relkit archive OUT.tar.gz NAME=FILE[:MODE]....
func runArchive(o *options, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("want OUT.tar.gz and at least one NAME=FILE, got %q", args)
	}
	t, err := o.when()
	if err != nil {
		return err
	}
	return archive(args[0], t, args[1:])
}

// runSBOM runs relkit sbom FILE.
func runSBOM(o *options, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one FILE, got %q", args)
	}
	t, err := o.when()
	if err != nil {
		return err
	}
	return fixSBOM(args[0], t)
}
