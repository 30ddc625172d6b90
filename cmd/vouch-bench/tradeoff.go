package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
)

// benchTradeoff sweeps one knob of both systems, the maximum silence from
// the leader a node tolerates (scale.Silence), and measures failover and
// false failovers at rest at every setting.
func benchTradeoff(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("tradeoff", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, 3*time.Hour, false)
	silences := fs.String("silences", "250ms,500ms,1s", "maximum silences to sweep (see docs/BENCHMARKS.md for how each maps onto vouch and raft)")
	sizes := fs.String("sizes", "5,25,100", "failover: cluster sizes (empty: skip failover)")
	trials := fs.Int("trials", 20, "failover: trials per size, setting and system, vouch and raft interleaved")
	schemes := fs.String("schemes", scale.SchemeMembers+","+scale.SchemeRaft, "failover: systems to run, interleaved")
	perProc := fs.Int("raft-per-process", 10, "failover: raft servers per child process (0: all in this process, which at N = 100 needs more file descriptors than the limit)")
	restSizes := fs.String("rest-sizes", "5,25", "at rest: cluster sizes (empty: skip)")
	restFor := fs.Duration("rest-duration", 10*time.Minute, "at rest: how long every cluster runs idle, all side by side")
	hog := fs.Bool("hog", true, "at rest: run a CPU hog (a child process spinning on one core) for the whole window")
	settle := fs.Duration("settle", time.Second, "failover: how long a stable cluster runs before the kill")
	within := fs.Duration("within", 20*time.Second, "failover: give up on a failover after this long")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("tradeoff", pos); err != nil {
		return err
	}
	var ss []scale.Silence
	for _, f := range strings.Split(*silences, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 50*time.Millisecond {
			return cmdline.Usagef("--silences %q: want durations of at least 50ms", *silences)
		}
		ss = append(ss, scale.Silence(d))
	}
	if len(ss) == 0 {
		return cmdline.Usagef("--silences: none given")
	}
	fsizes, err := scaleParseSizes("sizes", *sizes, 2)
	if err != nil {
		return err
	}
	rsizes, err := scaleParseSizes("rest-sizes", *restSizes, 2)
	if err != nil {
		return err
	}
	if len(fsizes) == 0 && len(rsizes) == 0 {
		return cmdline.Usagef("nothing to run: --sizes and --rest-sizes are both empty")
	}
	sch, err := scaleParseSchemes(*schemes)
	if err != nil {
		return err
	}
	if *trials < 1 {
		return cmdline.Usagef("--trials %d: want at least 1", *trials)
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout)
	defer cancel()
	rep := newScaleReport("tradeoff", args)
	tr := &scale.TradeoffResult{Mapping: scale.TradeoffMapping}
	for _, s := range ss {
		tr.Silences = append(tr.Silences, s.String())
	}
	rep.Tradeoff = tr
	u.Infof("tradeoff: max silences %v; code %s; load average %s", tr.Silences, rep.Source, rep.Machine.LoadBefore)
	u.Infof("mapping: %s", scale.TradeoffMapping)
	if len(rsizes) > 0 {
		u.Infof("at rest: sizes %v, every cluster side by side for %s, hog %v", rsizes, *restFor, *hog)
		o := scale.AtRestOptions{Silences: ss, Sizes: rsizes, Duration: *restFor, Hog: *hog, Progress: u.Err,
			Checkpoint: func(r *scale.AtRestResult) { tr.AtRest = r; sf.checkpoint(u, rep) }}
		r, err := scale.AtRest(ctx, o)
		if r != nil {
			tr.AtRest = r
			if terr := r.WriteTable(u.Out); terr != nil {
				return terr
			}
		}
		if err != nil {
			if r == nil {
				return err
			}
			return sf.finish(u, rep, err)
		}
		sf.checkpoint(u, rep)
	}
	if len(fsizes) > 0 {
		if *perProc == 0 {
			warnRaftDescriptors(u, []string{scale.SchemeRaft}, fsizes)
		}
		u.Infof("failover: sizes %v, %d trials per size, setting and system, all interleaved; raft %d servers per child process; load average %s", fsizes, *trials, *perProc, scale.LoadAvg())
		o := scale.TradeoffFailoverOptions{Silences: ss, Schemes: sch, Sizes: fsizes, Trials: *trials, RaftPerProcess: *perProc, Settle: *settle, Within: *within, Progress: u.Err,
			Checkpoint: func(r []*scale.FailoverResult) { tr.Failover = r; sf.checkpoint(u, rep) }}
		r, err := scale.TradeoffFailover(ctx, o)
		if r != nil {
			tr.Failover = r
			for i, f := range r {
				fmt.Fprintf(u.Out, "max silence %s:\n", ss[i])
				if terr := f.WriteTable(u.Out); terr != nil {
					return terr
				}
			}
		}
		if err != nil {
			if r == nil {
				return err
			}
			return sf.finish(u, rep, err)
		}
	}
	return sf.finish(u, rep, nil)
}
