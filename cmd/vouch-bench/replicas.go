package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/replicas"
	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// The replicated-runtime benchmarks (package replicas): they run real
// `vouch enclave` processes, built once from this checkout.

// replicaScratch builds vouch into a new scratch directory, removed by the
// returned function.
func replicaScratch(u *ui, bin string) (dir, vouch string, cleanup func(), err error) {
	if dir, err = os.MkdirTemp("", "vouch-bench-replicas-"); err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if bin != "" {
		return dir, bin, cleanup, nil
	}
	u.Infof("building vouch (go build ./cmd/vouch)")
	if vouch, err = replicas.BuildVouch(dir); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, vouch, cleanup, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// benchReplicas is `vouch-bench replicas`: SIGKILL the raft leader of 3
// replica processes under signed-views clusters.
func benchReplicas(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("replicas", "[flags]", u)
	sizes := fs.String("sizes", "5,25", "cluster sizes, comma-separated")
	trials := fs.Int("trials", 20, "trials per size")
	raftTimeout := fs.Duration("raft-timeout", 0, "the replicas' --raft-timeout (0: their default, 300ms)")
	bound := fs.Duration("bound", 30*time.Second, "a trial not recovered within this is censored")
	bin := fs.String("vouch", "", "the vouch binary (default: build ./cmd/vouch from this checkout)")
	jsonFile := fs.String("json", "", "also write the results as JSON to FILE")
	timeout := fs.Duration("timeout", 60*time.Minute, "give up after this long")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("replicas", pos); err != nil {
		return err
	}
	o := replicas.FailoverOptions{Trials: *trials, RaftTimeout: *raftTimeout, Bound: *bound, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 2); err != nil {
		return err
	}
	if *trials < 1 || *raftTimeout < 0 || *bound <= 0 {
		return cmdline.Usagef("want --trials ≥ 1, --raft-timeout ≥ 0 and --bound > 0")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, vouch, cleanup, err := replicaScratch(u, *bin)
	if err != nil {
		return err
	}
	defer cleanup()
	o.Bin, o.Dir = vouch, dir
	rep, err := replicas.Failover(ctx, o)
	if err != nil {
		return err
	}
	rep.Command = prog + " replicas " + bench.CommandLine(args)
	if err := replicas.WriteFailoverTable(u.Out, rep); err != nil {
		return err
	}
	if *jsonFile != "" {
		return writeJSONFile(*jsonFile, rep)
	}
	return nil
}

// benchReplicationCost is `vouch-bench replication-cost`: throughput of a
// single runtime, a 1-replica and a 3-replica service, interleaved.
func benchReplicationCost(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("replication-cost", "[flags]", u)
	rounds := fs.Int("rounds", 5, "rounds; each measures every configuration once, in turn")
	n := fs.Int("n", 2000, "stateless runs per configuration per round")
	conc := fs.Int("c", 8, "concurrent workers")
	subs := fs.Int("submissions", 1000, "election submissions per configuration per round")
	members := fs.Int("members", 5, "cluster members (one worker each) submitting views")
	raftTimeout := fs.Duration("raft-timeout", 0, "the replicas' --raft-timeout (0: their default, 300ms)")
	bin := fs.String("vouch", "", "the vouch binary (default: build ./cmd/vouch from this checkout)")
	jsonFile := fs.String("json", "", "also write the results as JSON to FILE")
	timeout := fs.Duration("timeout", 60*time.Minute, "give up after this long")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("replication-cost", pos); err != nil {
		return err
	}
	if *rounds < 1 || *n < 1 || *conc < 1 || *subs < 1 || *members < 1 || *members > 100 || *raftTimeout < 0 {
		return cmdline.Usagef("want --rounds, -n, -c, --submissions ≥ 1, --members 1 to 100 and --raft-timeout ≥ 0")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, vouch, cleanup, err := replicaScratch(u, *bin)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := replicas.Cost(ctx, replicas.CostOptions{Bin: vouch, Dir: dir, Rounds: *rounds, Runs: *n, Concurrency: *conc,
		Submissions: *subs, Members: *members, RaftTimeout: *raftTimeout, Progress: u.Err})
	if err != nil {
		return err
	}
	rep.Command = prog + " replication-cost " + bench.CommandLine(args)
	if err := replicas.WriteCostTable(u.Out, rep); err != nil {
		return err
	}
	if *jsonFile != "" {
		return writeJSONFile(*jsonFile, rep)
	}
	return nil
}
