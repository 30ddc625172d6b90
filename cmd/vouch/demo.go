package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"vouch/cmd/vouch/internal/demo"
)

func cmdDemo(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("demo", "[--nodes 5] [--watch]", u)
	nodes := fs.Int("nodes", 5, "how many nodes to start (at least 2)")
	watch := fs.Bool("watch", false, "keep the cluster running after the failover (Ctrl-C to stop)")
	verbose := fs.Bool("v", false, "also print the runtime's and the nodes' logs")
	within := fs.Duration("converge-within", 8*time.Second, "how long to wait for each agreement before failing")
	views := fs.Bool("views", false, "run the signed-views scheme: the stateful election function, terms and leases")
	policy := fs.String("policy", "highest", "with --views: election policy (highest, lowest, fair, stake)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(u.err, nil))
	}
	res, err := demo.Run(ctx, demo.Options{Nodes: *nodes, Watch: *watch, ConvergeWithin: *within, Out: u.out, Logger: logger, Views: *views, Policy: *policy})
	if err != nil {
		return err
	}
	if !*watch {
		u.infof("demo passed: failover from %s to %s in %s", res.Leader, res.NewLeader, res.Failover.Round(time.Millisecond))
	}
	return nil
}
