// Command vouch is the vouch CLI: the runtime (enclave), the node, the demo
// and the tools around them. It only parses flags and calls packages.
//
// Terminal rules (after FiloSottile/age's cmd/age/tui.go):
//
//   - Results go to stdout; everything else to stderr.
//   - Errors print as "vouch: error: …", followed when useful by
//     "vouch: hint: …" with what to do next. Exit code 1 on error, 2 on a
//     usage error.
//   - Nothing secret is ever printed, except the owner credential once, when
//     the runtime creates it.
//   - Wherever a SIMULATED attestation appears, the output says SIMULATED.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"vouch/api"
	"vouch/internal/version"
)

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, ui *ui) error
}

func commands() []command {
	return []command{
		{"enclave", "run the trusted function runtime", cmdEnclave},
		{"deploy", "deploy a function bundle (.wasm or folder) or a built-in", cmdDeploy},
		{"run", "run a function, checking its checksum first and its receipt after", cmdRun},
		{"list", "list deployed functions", cmdList},
		{"delete", "delete a deployed function", cmdDelete},
		{"checksum", "print a bundle's checksum, with no runtime involved", cmdChecksum},
		{"verify", "verify a run receipt offline", cmdVerify},
		{"token", "mint a function token and reference (or: token revoke)", cmdToken},
		{"attest", "verify a runtime's attestation and print its identity", cmdAttest},
		{"node", "run a gossip node that elects a verified leader (node id: print its key)", cmdNode},
		{"cluster", "create and sign a cluster configuration (init, add-member, show, ...)", cmdCluster},
		{"demo", "run a runtime and a cluster of nodes, kill the leader, watch the failover", cmdDemo},
		{"version", "print the version", cmdVersion},
	}
}

func doMain(args []string, stdout, stderr io.Writer) int {
	u := &ui{out: stdout, err: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], u)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(*usageError)):
			u.errorf("%v", err)
			u.hintf("see `vouch %s -h`", c.name)
			return 2
		default:
			u.fail(err)
			return 1
		}
	}
	u.errorf("unknown command %q", args[0])
	u.hintf("run `vouch help` for the list of commands")
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "vouch %s: leader election that peers can verify instead of trust.\n\nUsage: vouch <command> [flags]\n\nCommands:\n", version.Version)
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `vouch <command> -h` for a command's flags. Docs: README.md and docs/.")
}

// ui prints to the terminal following the rules at the top of this file.
type ui struct {
	out, err io.Writer
}

func (u *ui) errorf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: error: "+format+"\n", args...)
}

func (u *ui) hintf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: hint: "+format+"\n", args...)
}

func (u *ui) warnf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: warning: "+format+"\n", args...)
}

func (u *ui) infof(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: "+format+"\n", args...)
}

// fail prints an error, with the runtime's hint and the function's log
// when there are any.
func (u *ui) fail(err error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.Kind != "" {
			msg += " [" + ae.Kind + "]"
		}
		u.errorf("%s", msg)
		if ae.Log != "" {
			fmt.Fprintf(u.err, "vouch: function log:\n%s\n", strings.TrimRight(indent(ae.Log), "\n"))
		}
		if ae.Hint != "" {
			u.hintf("%s", ae.Hint)
		}
		return
	}
	var he *hintError
	if errors.As(err, &he) {
		u.errorf("%v", he.err)
		u.hintf("%s", he.hint)
		return
	}
	u.errorf("%v", err)
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  | " + l
		}
	}
	return strings.Join(lines, "\n")
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// hintError is an error with advice.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + " (" + e.hint + ")" }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// newFlags returns a flag set that reports errors as usage errors.
func newFlags(name, synopsis string, u *ui) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(u.err)
	fs.Usage = func() {
		fmt.Fprintf(u.err, "Usage: vouch %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// checkOutput checks the value of an -o flag.
func checkOutput(format string) error {
	if format != "text" && format != "json" {
		return usagef("-o %q: want text or json", format)
	}
	return nil
}

// noArgs refuses positional arguments to a command that takes none, so that
// one meant as a flag's value (say, a runtime URL) is not silently ignored.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s takes no arguments, but got %q (flags start with -)", name, pos[0])
	}
	return nil
}

func cmdVersion(ctx context.Context, args []string, u *ui) error {
	fmt.Fprintf(u.out, "vouch %s\n", version.Version)
	return nil
}
