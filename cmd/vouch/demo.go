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
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if *verbose {
			logger = slog.New(slog.NewTextHandler(u.Err, nil))
		}
		res, err := demo.Run(ctx, demo.Options{Nodes: *nodes, Watch: *watch, ConvergeWithin: *within, Out: u.Out, Logger: logger, Views: *views, Policy: *policy})
		if err != nil {
			return err
		}
		if !*watch {
			u.Infof("demo passed: failover from %s to %s in %s", res.Leader, res.NewLeader, res.Failover.Round(time.Millisecond))
		}
		return nil
	}
}
