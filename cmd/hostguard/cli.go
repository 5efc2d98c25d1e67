package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The command line is cobra's: flags before or after the arguments,
// --flag in help and errors, --version, and completion scripts for bash,
// zsh and fish generated from the same definitions.

// envAnnotation is the flag annotation that names a flag's environment
// variable, for help, the documentation test and the flag/variable table.
const envAnnotation = "hostguard/env"

// stopAtArgsAnnotation marks a command whose flags end at its first
// argument.
const stopAtArgsAnnotation = "hostguard/stop-at-args"

// subcommand describes one subcommand: define registers its flags and
// returns the function that runs it with its positional arguments.
type subcommand struct {
	use, short, long string
	// stopAtArgs stops flag parsing at the first argument (exec: the
	// command to run keeps its own flags).
	stopAtArgs bool
	define     func(f *flagSet) func(args []string) int
}

func subcommands(e *env) []subcommand {
	return []subcommand{
		matchCommand(e),
		discoverCommand(e),
		execCommand(e),
		probeCommand(e),
		proxyCommand(e),
		versionCommand(e),
	}
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(e *env, args []string) int {
	code := exitOK
	root := newRoot(e, &code)
	root.SetArgs(longDashes(root, args))
	cmd, err := root.ExecuteC()
	if err != nil {
		// cobra's and pflag's own errors: an unknown command or flag, a
		// flag without its value, a value that does not parse. One line
		// and a hint, not the whole usage.
		path := cmd.CommandPath()
		fmt.Fprintf(e.stderr, "%s: %s\n", path, err)
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", path)
		return exitUsage
	}
	return code
}

// newRoot builds the command tree for one run; code receives the exit code
// of the subcommand that ran.
func newRoot(e *env, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:   "hostguard",
		Short: "Host allow lists that keep working behind a cloud load balancer",
		Long: "hostguard puts a Host allow list in front of any web application and finds\n" +
			"the addresses a load balancer's health checks use (@self).",
		Version:           versionLine(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Usage()
			*code = exitUsage
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	for _, s := range subcommands(e) {
		root.AddCommand(newSubcommand(e, s, code))
	}
	root.AddCommand(completionCommand(e, code))
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	for _, c := range root.Commands() {
		c.InitDefaultHelpFlag()
	}
	return root
}

func newSubcommand(e *env, s subcommand, code *int) *cobra.Command {
	name, _, _ := strings.Cut(s.use, " ")
	c := &cobra.Command{Use: s.use, Short: s.short, Long: s.long, DisableFlagsInUseLine: true}
	if s.stopAtArgs {
		c.Annotations = map[string]string{stopAtArgsAnnotation: "true"}
	}
	f := &flagSet{FlagSet: c.Flags(), e: e, cmd: c}
	c.Flags().SortFlags = false
	c.Flags().SetInterspersed(!s.stopAtArgs)
	runCmd := s.define(f)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if err := errors.Join(f.errs...); err != nil {
			*code = e.failer(name)(exitUsage, "%v", err)
			return nil
		}
		*code = runCmd(args)
		return nil
	}
	return c
}

// completionCommand prints a completion script. Completion asks the
// binary itself (hostguard __complete ...), so the scripts stay right as
// flags change.
func completionCommand(e *env, code *int) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print the shell completion script for bash, zsh or fish",
		Long: `Print the completion script for a shell. Load it in the current shell with
  bash:  source <(hostguard completion bash)
  zsh:   source <(hostguard completion zsh)    (after compinit)
  fish:  hostguard completion fish | source
or install it once:
  bash:  hostguard completion bash > /etc/bash_completion.d/hostguard
  zsh:   hostguard completion zsh > "${fpath[1]}/_hostguard"
  fish:  hostguard completion fish > ~/.config/fish/completions/hostguard.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				err = root.GenZshCompletion(e.stdout)
			case "fish":
				err = root.GenFishCompletion(e.stdout, true)
			}
			if err != nil {
				*code = e.failer("completion")(exitFail, "%v", err)
			}
			return nil
		},
	}
}

// longDashes rewrites the single-dash long flags the standard flag package
// accepted (-allow x, -allow=x, -check) as --allow x, --allow=x, --check:
// pflag would read -allow as the shorthand flags a, l, l, o and w. It
// stops at "--", and for a command that stops parsing at its arguments
// (exec), at the first argument, so that the command run keeps its own.
func longDashes(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	flags := cmd.Flags()
	out := append([]string(nil), args...)
	inCmd := cmd == root // past the subcommand's name
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "--":
			return out
		case len(a) < 2 || a[0] != '-':
			if !inCmd && a == cmd.Name() {
				inCmd = true
				continue
			}
			if inCmd && cmd.Annotations[stopAtArgsAnnotation] != "" {
				return out
			}
			continue
		case a[1] == '-':
			if name, _, hasValue := strings.Cut(a[2:], "="); !hasValue && takesValue(flags.Lookup(name)) {
				i++ // its value, which may start with '-'
			}
			continue
		}
		name, _, hasValue := strings.Cut(a[1:], "=")
		f := flags.Lookup(name)
		if len(name) < 2 || f == nil {
			continue // a shorthand (-h), or not a flag: pflag says so
		}
		out[i] = "-" + a
		if !hasValue && takesValue(f) {
			i++
		}
	}
	return out
}

func takesValue(f *pflag.Flag) bool { return f != nil && f.NoOptDefVal == "" }

// flagsOf returns every flag of a command, in the order of its help.
func flagsOf(c *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	c.Flags().VisitAll(func(f *pflag.Flag) { out = append(out, f) })
	return out
}

// envOf returns the environment variable of a flag, or "".
func envOf(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) > 0 {
		return v[0]
	}
	return ""
}
