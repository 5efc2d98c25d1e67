// Package aemm starts the real amazon-ec2-metadata-mock on loopback for
// tests. It never lets the mock bind anything but the loopback address.
package aemm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostguard/hostguard/internal/netwait"
)

// Install is the command that installs the mock, for messages.
const Install = "go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0"

// RequireEnv, when set to 1, makes a missing mock a test failure instead
// of a skip. CI sets it.
const RequireEnv = "HOSTGUARD_REQUIRE_MOCK"

// Binary finds the ec2-metadata-mock executable on PATH or in GOPATH/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("ec2-metadata-mock"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "ec2-metadata-mock")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("ec2-metadata-mock not found; install it with: " + Install)
}

// Mock is a running metadata mock.
type Mock struct {
	URL string // http://127.0.0.1:PORT
}

// Config is what the mock answers.
type Config struct {
	LocalIPv4 string // local-ipv4 and the interface's local-ipv4s
	IPv6      string // the interface's ipv6s
	V2Only    bool   // -I: require IMDSv2 tokens
}

// Command returns the mock's executable and the arguments that make it
// answer c on 127.0.0.1:port, with its configuration file written in dir.
// Tests that run it themselves (in a network namespace) use it; Start
// does the rest for the others.
func Command(c Config, dir string, port int) (string, []string, error) {
	bin, err := Binary()
	if err != nil {
		return "", nil, err
	}
	values := map[string]string{"local-ipv4": c.LocalIPv4, "mac-local-ipv4s": c.LocalIPv4}
	if c.IPv6 != "" {
		values["mac-ipv6-associations"] = c.IPv6
	}
	cfg := filepath.Join(dir, "aemm.json")
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"values": values}})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		return "", nil, err
	}
	args := []string{"-n", "127.0.0.1", "-p", fmt.Sprint(port), "-c", cfg}
	if c.V2Only {
		args = append(args, "-I")
	}
	return bin, args, nil
}

// Start runs the mock on a free loopback port until the test ends. It skips
// the test when the mock is not installed, unless RequireEnv is 1.
func Start(t testing.TB, c Config) *Mock {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, args, err := Command(c, dir, port)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // no stray $HOME/aemm-config.json
	log, _ := os.Create(filepath.Join(dir, "aemm.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := netwait.Listening(addr, 15*time.Second); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "aemm.log"))
		t.Fatalf("ec2-metadata-mock: %v: %s", err, out)
	}
	return &Mock{URL: "http://" + addr}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
