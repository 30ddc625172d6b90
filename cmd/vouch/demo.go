package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/cmd/vouch/internal/demo"
)

func demoFlags(fs *flag.FlagSet) runFunc {
	nodes := fs.Int("nodes", 5, "how many nodes to start: `N`, at least 2")
	watch := fs.Bool("watch", false, "keep the cluster running after the failover (Ctrl-C to stop)")
	verbose := fs.Bool("v", false, "also print the runtime's and the nodes' logs")
	within := fs.Duration("converge-within", 8*time.Second, "the `DURATION` to wait for each agreement before failing")
	views := fs.Bool("views", false, "run the signed-views scheme: the stateful election function, terms and leases")
	policy := fs.String("policy", "highest", "with --views: the election `POLICY` (highest, lowest, fair, stake)")
	replicas := fs.Int("replicas", 1, "run the runtime as `N` raft replicas (1, 3, 5 or 7) and also kill the leader replica; --views is the scheme to watch with them")
	raftTimeout := fs.Duration("raft-timeout", demo.RaftTimeout, "with --replicas: raft's heartbeat and election `TIMEOUT` (the leader lease is half); the library's 300ms is tight on a loaded machine")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *replicas < 1 || *replicas > demo.MaxReplicas || *replicas%2 == 0 {
			return cmdline.Usagef("--replicas %d: want an odd number from 1 to %d: raft needs a majority, so 3 replicas survive the loss of one, 5 of two, and an even count survives no more losses than one replica fewer", *replicas, demo.MaxReplicas)
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if *verbose {
			logger = slog.New(slog.NewTextHandler(u.Err, nil))
		}
		res, err := demo.Run(ctx, demo.Options{Nodes: *nodes, Watch: *watch, ConvergeWithin: *within, Out: u.Out, Logger: logger, Views: *views, Policy: *policy, Replicas: *replicas, RaftTimeout: *raftTimeout})
		if err != nil {
			return err
		}
		if !*watch && res.ReplicaLeader != "" {
			u.Infof("demo passed: replica failover from %s to %s in %s (raft timeouts %s), nodes re-certified %s after it; node failover from %s to %s in %s",
				res.ReplicaLeader, res.NewReplicaLeader, res.ReplicaFailover.Round(time.Millisecond), *raftTimeout,
				res.Recertified.Round(time.Millisecond), res.Leader, res.NewLeader, res.Failover.Round(time.Millisecond))
		} else if !*watch {
			u.Infof("demo passed: failover from %s to %s in %s", res.Leader, res.NewLeader, res.Failover.Round(time.Millisecond))
		}
		return nil
	}
}
