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

func run(cmd string, args []string) error {
	fs := flag.NewFlagSet("relkit "+cmd, flag.ContinueOnError)
	repo := fs.String("repo", ".", "the repository's root")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "the time of the release in seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	check := fs.Bool("check", false, "notice: fail if the file differs from what would be generated, instead of writing it")
	out := fs.String("o", "THIRD_PARTY_LICENSES", "notice: the file, relative to -repo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if abs, err := filepath.Abs(*repo); err == nil {
		*repo = abs
	}
	when := func() (time.Time, error) {
		if *epoch == "" {
			return time.Time{}, fmt.Errorf("no -epoch and no SOURCE_DATE_EPOCH: give the release time in seconds since 1970 (git log -1 --format=%%ct)")
		}
		n, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("epoch %q is not a number of seconds since 1970", *epoch)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	switch cmd {
	case "setversion":
		if len(args) != 1 {
			return fmt.Errorf("want one VERSION, got %q", args)
		}
		return setVersion(*repo, args[0])
	case "proxy":
		if len(args) != 2 {
			return fmt.Errorf("want VERSION and OUT, got %q", args)
		}
		t, err := when()
		if err != nil {
			return err
		}
		return writeProxy(*repo, args[0], t, args[1])
	case "changelog":
		if len(args) != 2 {
			return fmt.Errorf("want VERSION and DATE (YYYY-MM-DD), got %q", args)
		}
		if _, err := time.Parse(time.DateOnly, args[1]); err != nil {
			return fmt.Errorf("date %q is not YYYY-MM-DD", args[1])
		}
		return changelog(*repo, args[0], args[1])
	case "notice":
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q", args)
		}
		return notice(*repo, *out, *check)
	case "archive":
		if len(args) < 2 {
			return fmt.Errorf("want OUT.tar.gz and at least one NAME=FILE, got %q", args)
		}
		t, err := when()
		if err != nil {
			return err
		}
		return archive(args[0], t, args[1:])
	case "sbom":
		if len(args) != 1 {
			return fmt.Errorf("want one FILE, got %q", args)
		}
		t, err := when()
		if err != nil {
			return err
		}
		return fixSBOM(args[0], t)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
