package examples

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every command an example's README tells the user to type is run here,
// with the placeholders filled in, in a copy of the example: aws commands
// against the AWS stand-in, hostguard commands for real (--check where they
// would serve), docker commands checked against the Dockerfile they build
// (no Docker engine runs in CI), and each example's own commands by the
// handlers it gives.

// placeholder matches what a user supplies: <account-id>, <region>, ...
var placeholder = regexp.MustCompile(`<[a-z][a-z0-9-]*>`)

// readmeCommands returns the commands of the sh blocks of a README, one per
// entry, continuation lines joined, comments and blank lines dropped.
func readmeCommands(text string) []string {
	var cmds []string
	in := false
	cont := ""
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in:
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cont += s + " "
			continue
		}
		cmds = append(cmds, cont+line)
		cont = ""
	}
	return cmds
}

// shellWords splits a command line as sh does for the simple lines the
// READMEs hold: words separated by blanks, single and double quotes.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed quote in %q", s)
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// filledCommands returns the commands of a README (a path relative to
// examples/) with their placeholders filled from awsValues. A README
// without commands fails the test.
func filledCommands(t *testing.T, readme string) []string {
	t.Helper()
	cmds := readmeCommands(string(read(t, readme)))
	if len(cmds) == 0 {
		t.Fatalf("no commands in examples/%s", readme)
	}
	for i, c := range cmds {
		filled, err := fill(c, awsValues)
		if err != nil {
			t.Fatalf("examples/%s: %v", readme, err)
		}
		cmds[i] = filled
	}
	return cmds
}

// fill replaces the placeholders of s with values; an unknown placeholder
// is an error, so that every one a README uses is declared here.
func fill(s string, values map[string]string) (string, error) {
	var unknown []string
	out := placeholder.ReplaceAllStringFunc(s, func(p string) string {
		v, ok := values[p]
		if !ok {
			unknown = append(unknown, p)
			return p
		}
		return v
	})
	if len(unknown) > 0 {
		return out, fmt.Errorf("placeholders without a value: %v", unknown)
	}
	return out, nil
}

// sandbox copies the example directory dir (relative to examples/) and the
// repository's files its commands refer to into a temporary tree with the
// placeholders of every text file filled in, and returns the example's copy.
func sandbox(t *testing.T, dir string, values map[string]string) string {
	t.Helper()
	root := t.TempDir()
	copyTree := func(from, to string, filled bool) {
		err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(from, p)
			dst := filepath.Join(to, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if filled {
				s, ferr := fill(string(b), values)
				if ferr != nil {
					return fmt.Errorf("%s: %w", p, ferr)
				}
				b = []byte(s)
			}
			info, _ := d.Info()
			return os.WriteFile(dst, b, info.Mode().Perm())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	copyTree(dir, filepath.Join(root, "examples", dir), true)
	copyTree("django", filepath.Join(root, "examples", "django"), false)
	for _, f := range []string{"../Dockerfile", "../go.mod", "../go.sum"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "examples", dir)
}

// readmeRun is what running a README's commands needs.
type readmeRun struct {
	t     *testing.T
	dir   string // the sandbox copy of the example
	aws   *awsStub
	cli   string // Debian's aws
	built []string
	// handlers run the example's own commands, by their first word.
	handlers map[string]func(argv []string) error
}

// run runs every command and returns what failed.
func (r *readmeRun) run(cmds []string) []error {
	var errs []error
	for _, line := range cmds {
		for i, part := range strings.Split(line, "|") {
			argv, err := shellWords(strings.TrimSpace(part))
			if err == nil && len(argv) > 0 && argv[0] == "sudo" {
				argv = argv[1:]
			}
			if err == nil {
				err = r.runOne(argv, i > 0)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("README command %q: %w", line, err))
			}
		}
	}
	return errs
}

func (r *readmeRun) runOne(argv []string, piped bool) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	if h, ok := r.handlers[argv[0]]; ok {
		return h(argv)
	}
	switch argv[0] {
	case "aws":
		if r.aws == nil {
			return errors.New("this example has no AWS stand-in")
		}
		return r.aws.runAWS(r.cli, r.dir, argv[1:])
	case "docker":
		return r.docker(argv[1:], piped)
	case "hostguard", "/hostguard", "/usr/local/bin/hostguard":
		return runHostguard(r.t, argv[1:])
	}
	return fmt.Errorf("%s is a command the tests do not know how to run", argv[0])
}

// docker checks a docker command: a build's context and Dockerfile (parsed
// like the tests parse every Dockerfile), a push of an image built before,
// a login at the end of a pipe.
func (r *readmeRun) docker(args []string, piped bool) error {
	if len(args) == 0 {
		return errors.New("docker without a command")
	}
	switch args[0] {
	case "login":
		if !piped || !slices.Contains(args, "--password-stdin") {
			return errors.New("docker login must read the password from aws ecr get-login-password")
		}
		return nil
	case "push":
		if len(args) != 2 || !slices.Contains(r.built, args[1]) {
			return fmt.Errorf("docker push %v: not an image built before (%v)", args[1:], r.built)
		}
		return nil
	case "build":
		var tag, file string
		var context string
		for i := 1; i < len(args); i++ {
			switch args[i] {
			case "-t", "--platform", "--build-arg", "-f":
				if i+1 >= len(args) {
					return fmt.Errorf("%s without a value", args[i])
				}
				switch args[i] {
				case "-t":
					tag = args[i+1]
				case "-f":
					file = args[i+1]
				case "--platform":
					if p := args[i+1]; p != "linux/amd64" && p != "linux/arm64" {
						return fmt.Errorf("--platform %s", p)
					}
				}
				i++
			default:
				context = args[i]
			}
		}
		if tag == "" || context == "" {
			return errors.New("docker build needs -t and a context")
		}
		if file == "" {
			file = filepath.Join(context, "Dockerfile")
		}
		df, err := parseDockerfileFile(filepath.Join(r.dir, file))
		if err != nil {
			return err
		}
		for _, src := range df.copies {
			if _, err := os.Stat(filepath.Join(r.dir, context, src)); err != nil {
				return fmt.Errorf("the Dockerfile copies %s, which the context %s lacks", src, context)
			}
		}
		r.built = append(r.built, tag)
		return nil
	case "exec":
		// docker exec CONTAINER hostguard ...: the hostguard part.
		if len(args) < 3 {
			return errors.New("docker exec needs a container and a command")
		}
		return r.runOne(args[2:], false)
	}
	return fmt.Errorf("docker %s: the tests do not run it", args[0])
}
