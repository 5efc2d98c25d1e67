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
//	hostguard completion bash|zsh|fish
//	hostguard version (or hostguard --version)
//
// Flags may come before or after the arguments (but for exec, whose flags
// end at its command); "hostguard help" lists the subcommands and
// "hostguard COMMAND --help" their flags.
package main

import (
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

// env is what a subcommand may touch, so tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	execve         func(path string, argv, environ []string) error
	interfaces     func() ([]discover.Interface, error) // nil: the real ones
}

func main() {
	os.Exit(run(&env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, environ: os.Environ, execve: syscall.Exec,
	}, os.Args[1:]))
}
