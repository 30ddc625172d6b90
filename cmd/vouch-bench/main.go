// Command vouch-bench measures vouch on loopback: the runtime's throughput
// and latency, failover against hashicorp/raft, certificate dissemination,
// the cost of an idle cluster, messages per election, and plots of them.
// It is a command of its own so that `vouch`, whose hash an attestation
// measures, links neither raft nor the plotting library.
//
// Terminal rules, as for `vouch` (cmdline.UI prints by them): results go
// to stdout and everything else to stderr; errors print as
// "vouch-bench: error: …" with a "vouch-bench: hint: …" when useful; exit
// code 1 on error, 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
)

const prog = "vouch-bench"

func main() {
	if scale.IsRaftChild() {
		scale.RaftChildMain() // raft servers for a parent's failover trials; exits
	}
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
		{"formation", "time and runtime calls for a cluster to form, by size", benchFormation},
		{"messages", "gossip messages and runtime calls per election, vouch and raft", benchMessages},
		{"replicas", "SIGKILL the raft leader of 3 `vouch enclave` replica processes under signed-views clusters; time until the nodes act again", benchReplicas},
		{"replication-cost", "throughput of a single runtime, a 1-replica and a 3-replica service, interleaved: stateless runs and election submissions", benchReplicationCost},
		{"tradeoff", "sweep the maximum silence of vouch's leader watch and raft's heartbeat timeout: failover times and false failovers at rest with a CPU hog", benchTradeoff},
		{"plot", "render failover and dissemination results (JSON) as SVG, PNG or PDF plots", benchPlot},
	}
}

func doMain(args []string, stdout, stderr io.Writer) int {
	u := &ui{Prog: prog, Out: stdout, Err: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			u.Errorf("no benchmark given")
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
		return u.Exit(b.name, b.run(ctx, args[1:], u))
	}
	u.Errorf("unknown benchmark %q", args[0])
	u.Hintf("run `%s -h` for the list of benchmarks", prog)
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

// ui is the terminal, printed on by the rules at the top of this file,
// which are cmdline.UI's.
type ui = cmdline.UI

// newFlags returns a flag set that reports errors as usage errors.
func newFlags(name, synopsis string, u *ui) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(u.Err)
	fs.Usage = func() {
		fmt.Fprintf(u.Err, "Usage: %s %s %s\n\nFlags:\n", prog, name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// noArgs refuses positional arguments to a benchmark, so that one meant as
// a flag's value is not silently ignored.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return cmdline.Usagef("%s takes no arguments, got %q", name, strings.Join(pos, " "))
	}
	return nil
}
