package examples

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// dockerfile is what the tests read of a Dockerfile: the last stage's
// ENTRYPOINT, CMD (exec form), ENV and USER, and the local files every stage
// copies.
type dockerfile struct {
	entrypoint, cmd []string
	env             map[string]string
	user            string
	from            []string // every stage's base image
	copies          []string // COPY and ADD sources from the build context
	text            string
}

// knownInstructions are the Dockerfile reference's instructions.
var knownInstructions = []string{"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
	"VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}

func parseDockerfileFile(file string) (dockerfile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return dockerfile{}, err
	}
	return parseDockerfile(file, string(b))
}

// parseDockerfile parses the subset of the Dockerfile syntax the examples
// use, strictly: an unknown instruction or a shell-form ENTRYPOINT or CMD is
// an error.
func parseDockerfile(file, text string) (dockerfile, error) {
	df := dockerfile{env: map[string]string{}, text: text}
	joined := strings.ReplaceAll(text, "\\\n", " ")
	for n, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if !slices.Contains(knownInstructions, kw) {
			return df, fmt.Errorf("%s:%d: unknown instruction %q", file, n+1, kw)
		}
		switch kw {
		case "FROM":
			df.entrypoint, df.cmd, df.user = nil, nil, ""
			df.env = map[string]string{}
			df.from = append(df.from, strings.Fields(rest)[0])
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				return df, fmt.Errorf("%s:%d: %s must use the exec form: %v", file, n+1, kw, err)
			}
			if kw == "CMD" {
				df.cmd = argv
			} else {
				df.entrypoint = argv
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return df, fmt.Errorf("%s:%d: ENV %q: write ENV KEY=value", file, n+1, kv)
				}
				df.env[k] = v
			}
		case "USER":
			df.user = rest
		case "COPY", "ADD":
			f := strings.Fields(rest)
			if len(f) < 2 {
				return df, fmt.Errorf("%s:%d: %s needs a source and a destination", file, n+1, kw)
			}
			if strings.HasPrefix(f[0], "--from=") {
				continue
			}
			df.copies = append(df.copies, f[:len(f)-1]...)
		}
	}
	if len(df.from) == 0 {
		return df, fmt.Errorf("%s: no FROM", file)
	}
	return df, nil
}

func TestRootDockerfile(t *testing.T) {
	df, err := parseDockerfileFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if df.user == "" || strings.HasPrefix(df.user, "0") || df.user == "root" || !isNumericUser(df.user) {
		t.Errorf("the image must run as a numeric non-root user (runAsNonRoot), not %q", df.user)
	}
	if !strings.Contains(df.text, "CGO_ENABLED=0") {
		t.Error("the binary must be static (CGO_ENABLED=0) for a scratch image")
	}
	if !slices.Equal(df.entrypoint, []string{"/hostguard"}) {
		t.Errorf("entrypoint %q", df.entrypoint)
	}
	report(t, []error{checkCommand("root Dockerfile CMD", df.cmd, df.env)})
}

func TestAppDockerfile(t *testing.T) {
	df, err := parseDockerfileFile("django/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !isNumericUser(df.user) || strings.HasPrefix(df.user, "0") {
		t.Errorf("the app image must run as a numeric non-root user, not %q", df.user)
	}
	for _, src := range df.copies {
		if _, err := os.Stat("django/" + src); err != nil {
			t.Errorf("the app Dockerfile copies %s, which examples/django lacks", src)
		}
	}
	if !slices.Contains(df.cmd, "127.0.0.1:8000") {
		t.Errorf("the app must listen on 127.0.0.1:8000, behind hostguard: %q", df.cmd)
	}
}

// isNumericUser reports whether a USER value is uid[:gid] in numbers.
func isNumericUser(u string) bool {
	uid, gid, _ := strings.Cut(u, ":")
	digits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	return digits(uid) && (gid == "" || digits(gid))
}
