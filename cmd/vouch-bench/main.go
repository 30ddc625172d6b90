// Command vouch-bench measures vouch on loopback: the runtime's throughput
// and latency, failover against hashicorp/raft, certificate dissemination,
// the cost of an idle cluster, messages per election, and plots of them.
// It is a command of its own so that `vouch`, whose hash an attestation
// measures, links neither raft nor the plotting library.
//
// Terminal rules, as for `vouch`: results go to stdout and everything else
// to stderr; errors print as "vouch-bench: error: …" with a
// "vouch-bench: hint: …" when useful; exit code 1 on error, 2 on a usage
// error.
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

	"github.com/vouch-dev/vouch/api"
)

const prog = "vouch-bench"

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

// benchmark is one subcommand.
type benchmark struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, u *ui) error
}

func benchmarks() []benchmark {
	return []benchmark{
		{"run", "load the runtime with a fixed number of runs of the leader function and print throughput and latency", cmdBenchRun},
		{"failover", "kill the leader of N in-process nodes; time until every survivor holds a verified certificate (hashicorp/raft alongside)", benchFailover},
		{"dissemination", "time until a new certificate reaches 99% and 100% of N nodes, against the gossip model", benchDissemination},
		{"rest", "packets, bytes, CPU and memory per idle node; false positives of failure detection", benchRest},
		{"messages", "gossip messages and runtime calls per election, vouch and raft", benchMessages},
		{"plot", "render failover and dissemination results (JSON) as SVG, PNG or PDF plots", benchPlot},
	}
}

func doMain(args []string, stdout, stderr io.Writer) int {
	u := &ui{out: stdout, err: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			u.errorf("no benchmark given")
			return 2
		}
		return 0
	}
	for _, b := range benchmarks() {
		if b.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := b.run(ctx, args[1:], u)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(*usageError)):
			u.errorf("%v", err)
			u.hintf("see `%s %s -h`", prog, b.name)
			return 2
		default:
			u.fail(err)
			return 1
		}
	}
	u.errorf("unknown benchmark %q", args[0])
	u.hintf("run `%s -h` for the list of benchmarks", prog)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <benchmark> [flags]\n\nBenchmarks:\n", prog)
	bs := benchmarks()
	sort.Slice(bs, func(i, j int) bool { return bs[i].name < bs[j].name })
	for _, b := range bs {
		fmt.Fprintf(w, "  %-14s %s\n", b.name, b.summary)
	}
	fmt.Fprintln(w, "\nFigures and the commands that reproduce them: docs/BENCHMARKS.md.")
}

// ui prints to the terminal following the rules at the top of this file.
type ui struct {
	out, err io.Writer
}

func (u *ui) errorf(format string, args ...any) {
	fmt.Fprintf(u.err, prog+": error: "+format+"\n", args...)
}

func (u *ui) hintf(format string, args ...any) {
	fmt.Fprintf(u.err, prog+": hint: "+format+"\n", args...)
}

func (u *ui) warnf(format string, args ...any) {
	fmt.Fprintf(u.err, prog+": warning: "+format+"\n", args...)
}

func (u *ui) infof(format string, args ...any) {
	fmt.Fprintf(u.err, prog+": "+format+"\n", args...)
}

// fail prints an error, with the runtime's hint when there is one.
func (u *ui) fail(err error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.Kind != "" {
			msg += " [" + ae.Kind + "]"
		}
		u.errorf("%s", msg)
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
		fmt.Fprintf(u.err, "Usage: %s %s %s\n\nFlags:\n", prog, name, synopsis)
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

// noArgs refuses positional arguments to a benchmark, so that one meant as
// a flag's value is not silently ignored.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q", name, strings.Join(pos, " "))
	}
	return nil
}
