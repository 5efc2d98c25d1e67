// Command mkimage writes hostguard's release container image, an OCI image
// layout archive with one index for linux/amd64 and linux/arm64, from
// binaries built beforehand, without a container engine or registry. The
// same inputs and creation time give the same bytes.
//
// Usage:
//
//	mkimage -version v0.1.0 -bindir DIR -ca-certs DIR -created EPOCH \
//	        -revision SHA -out FILE [-name localhost/hostguard] [-source URL]
//
// packaging/image/build runs it with the settings of a release.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s Spec
	var caDir, created, out string
	fs.StringVar(&s.Version, "version", "", "release version, the image's tag, such as v0.1.0 (required)")
	fs.StringVar(&s.BinDir, "bindir", "", "directory holding linux-amd64/hostguard and linux-arm64/hostguard (required)")
	fs.StringVar(&caDir, "ca-certs", "/usr/share/ca-certificates/mozilla", "directory of PEM certificates (*.crt) that make the CA bundle, as Debian's update-ca-certificates concatenates them")
	fs.StringVar(&created, "created", "", "creation time in seconds since 1970, from SOURCE_DATE_EPOCH (required)")
	fs.StringVar(&s.Revision, "revision", "", "commit of the source (required)")
	fs.StringVar(&s.Name, "name", "localhost/hostguard", "image name that podman load gives the image, with the version as its tag")
	fs.StringVar(&s.Source, "source", "https://github.com/hostguard/hostguard", "URL of the source repository")
	fs.StringVar(&s.CAOrigin, "ca-origin", "", "where the CA certificates come from, for the image's history (default: the -ca-certs directory)")
	fs.StringVar(&out, "out", "", "archive to write (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mkimage: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case out == "":
		return fail("no -out given: name the archive to write")
	case created == "":
		return fail("no -created given: pass SOURCE_DATE_EPOCH, such as $(git log -1 --format=%%ct)")
	}
	sec, err := strconv.ParseInt(created, 10, 64)
	if err != nil || sec <= 0 {
		return fail("-created %q is not a positive number of seconds since 1970 (SOURCE_DATE_EPOCH)", created)
	}
	s.Created = time.Unix(sec, 0).UTC()
	if s.CACerts, err = caBundle(caDir); err != nil {
		return fail("%v", err)
	}
	if s.CAOrigin == "" {
		s.CAOrigin = caDir
	}
	if err := WriteArchive(&s, out); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "%s: %s for linux/amd64 and linux/arm64\n", out, s.RefName())
	return 0
}

// caBundle concatenates the *.crt files of dir in name order, each ending
// with a newline: what update-ca-certificates makes of Debian's
// ca-certificates package with every certificate enabled, without the
// certificates a build machine may have added under /usr/local.
func caBundle(dir string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.crt in %s: install Debian's ca-certificates (apt-get install ca-certificates) or pass -ca-certs", dir)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return nil, fmt.Errorf("%s is not a PEM certificate", n)
		}
		buf.Write(b)
		if !bytes.HasSuffix(b, []byte("\n")) {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), nil
}
