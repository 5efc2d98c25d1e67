// Command hostguard puts a Host allow list in front of any web application
// and finds the addresses a load balancer's health checks use.
//
// Usage:
//
//	hostguard match --allow LIST [--allow LIST ...] < hosts.txt
//	hostguard discover [--platform P] [--format lines|csv|json] [--verbose]
//	hostguard exec --allow LIST --env NAME -- COMMAND [ARGS...]
//	hostguard proxy --allow LIST [--listen ADDR] [--upstream URL]
//	hostguard probe URL [--as elb|classic-elb|k8s|gce|azure-appgw] [--host H]
//	hostguard version
//
// Run "hostguard help" for every subcommand and flag.
package main

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/hostguard/hostguard/discover"
)

// Exit codes shared by the subcommands.
const (
	exitOK    = 0
	exitFail  = 1 // a check failed: a host rejected, nothing found, unhealthy
	exitUsage = 2 // bad flags, a bad allow-list entry
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(env *env, args []string) int
}

// env is what a subcommand may touch, so tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	execve         func(path string, argv, environ []string) error
	interfaces     func() ([]discover.Interface, error) // nil: the real ones
}

func commands() []command {
	return []command{
		{"match", "test an allow list against Host values read from standard input", runMatch},
		{"discover", "print the addresses @self stands for on this machine", runDiscover},
		{"exec", "run a command with the allow list, @self expanded, in an environment variable", runExec},
		{"probe", "send a load balancer's health check to an app and explain a failure", runProbe},
		{"proxy", "serve a reverse proxy that puts the allow list in front of an application", runProxy},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(&env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, environ: os.Environ, execve: syscall.Exec,
	}, os.Args[1:]))
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "hostguard: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: hostguard COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "hostguard COMMAND -h" for the flags of a command.`)
}
