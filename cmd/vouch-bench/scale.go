package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
)

// The scale benchmarks (package scale): failover against hashicorp/raft,
// dissemination, cost at rest with false positives, messages per
// election, and plots. Figures and commands: docs/BENCHMARKS.md.

// scaleFlags are the flags every scale benchmark shares.
type scaleFlags struct {
	json    *string
	timeout *time.Duration
	profile *string
	tuning  scale.MemberlistTuning
}

func (f *scaleFlags) register(fs scaleFlagSet, timeout time.Duration, tuning bool) {
	f.json = fs.String("json", "", "also write the results as JSON to FILE")
	f.timeout = fs.Duration("timeout", timeout, "give up after this long")
	f.profile = fs.String("profile", "local", "vouch timing profile: local, lan or wan")
	if tuning {
		fs.DurationVar(&f.tuning.ProbeInterval, "probe-interval", 0, "override memberlist's ProbeInterval (0: the profile's)")
		fs.DurationVar(&f.tuning.ProbeTimeout, "probe-timeout", 0, "override memberlist's ProbeTimeout (0: the profile's)")
		fs.IntVar(&f.tuning.SuspicionMult, "suspicion-mult", 0, "override memberlist's SuspicionMult (0: the profile's)")
		fs.IntVar(&f.tuning.GossipNodes, "gossip-nodes", 0, "override memberlist's GossipNodes (0: the profile's)")
		fs.DurationVar(&f.tuning.LeaderPingInterval, "leader-ping", 0, "override the leader watch's ping interval (0: the profile's; negative: no leader watch)")
		fs.DurationVar(&f.tuning.LeaderTimeout, "leader-timeout", 0, "override the leader watch's timeout (0: the profile's)")
	}
}

// scaleFlagSet is the part of *flag.FlagSet the helpers use.
type scaleFlagSet interface {
	String(name, value, usage string) *string
	Duration(name string, value time.Duration, usage string) *time.Duration
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	IntVar(p *int, name string, value int, usage string)
}

func scaleParseSizes(flag, s string, minN int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < minN || n > 999 {
			return nil, cmdline.Usagef("--%s %q: want a comma-separated list of sizes from %d to 999", flag, s, minN)
		}
		out = append(out, n)
	}
	return out, nil
}

func scaleParseSchemes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case scale.SchemeMembers, scale.SchemeViews, scale.SchemeRaft:
			out = append(out, f)
		case "":
		default:
			return nil, cmdline.Usagef("--schemes: unknown scheme %q (want %s, %s, %s)", f, scale.SchemeMembers, scale.SchemeViews, scale.SchemeRaft)
		}
	}
	if len(out) == 0 {
		return nil, cmdline.Usagef("--schemes: none given")
	}
	return out, nil
}

// newScaleReport starts the report of `vouch-bench NAME ARGS`.
func newScaleReport(name string, args []string) *scale.Report {
	return scale.NewReport(prog + " " + name + " " + scale.CommandLine(args))
}

// checkpoint rewrites the JSON file (if any) with the results so far,
// marked partial, so that a run that is killed or times out leaves what
// it measured.
func (f *scaleFlags) checkpoint(u *ui, rep *scale.Report) {
	if *f.json == "" {
		return
	}
	cp := *rep
	cp.Partial = "running: this file is rewritten after every trial until the run ends"
	cp.Machine.Finish()
	if err := cp.WriteJSON(*f.json); err != nil {
		u.Warnf("saving the results so far: %v", err)
	}
}

// finish prints the machine and code lines and writes the JSON. err is
// the measurement's error: when the run was cut short (its --timeout, or
// an interrupt) with results, those are written marked partial and the
// error says so.
func (f *scaleFlags) finish(u *ui, rep *scale.Report, err error) error {
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return err
		}
		why := "interrupted"
		if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Sprintf("stopped by --timeout %s", *f.timeout)
		}
		rep.Partial = why + ": the sections hold the trials that finished"
	}
	rep.Machine.Finish()
	rep.Machine.Write(u.Out)
	fmt.Fprintf(u.Out, "code: %s (from %s)\n", rep.Source, rep.Source.From)
	if *f.json != "" {
		if werr := rep.WriteJSON(*f.json); werr != nil {
			return werr
		}
		u.Infof("wrote %s", *f.json)
	}
	if err != nil {
		where := "the table above"
		if *f.json != "" {
			where += " and " + *f.json
		}
		return cmdline.WithHint(fmt.Errorf("the benchmark did not finish (%s)", rep.Partial), "%s hold what was measured, marked partial; raise --timeout to finish", where)
	}
	return nil
}

// warnRaftDescriptors warns when the largest raft cluster may need more
// file descriptors than this process may open: its dials then fail and
// the trials measure the limit, not raft.
func warnRaftDescriptors(u *ui, schemes []string, sizes []int) {
	if !slices.Contains(schemes, scale.SchemeRaft) || len(sizes) == 0 {
		return
	}
	n := slices.Max(sizes)
	_, limit := scale.Descriptors()
	if need := scale.RaftDescriptors(n) + 1000; limit > 0 && need > limit {
		u.Warnf("raft with %d servers in this process may need about %d file descriptors (every server keeps TCP connections to the peers it asked for votes), and the limit is %d: trials may fail for want of sockets, which is this harness's limit, not raft's", n, need, limit)
		u.Hintf("run raft's servers in child processes (--raft-per-process 10), or raise the hard limit (ulimit -Hn, or LimitNOFILE) to at least %d before measuring raft at N = %d", need, n)
	}
}

func benchFailover(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("failover", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, 3*time.Hour, true)
	sizes := fs.String("sizes", "3,5,10,25,50,100", "cluster sizes")
	trials := fs.Int("trials", 20, "trials per size and scheme, each on a fresh cluster")
	schemes := fs.String("schemes", scale.SchemeMembers+","+scale.SchemeViews+","+scale.SchemeRaft, "schemes to run, interleaved trial by trial")
	rt := scale.DefaultRaftTiming()
	fs.DurationVar(&rt.HeartbeatTimeout, "raft-heartbeat", rt.HeartbeatTimeout, "raft HeartbeatTimeout")
	fs.DurationVar(&rt.ElectionTimeout, "raft-election", rt.ElectionTimeout, "raft ElectionTimeout")
	fs.DurationVar(&rt.LeaderLeaseTimeout, "raft-lease", rt.LeaderLeaseTimeout, "raft LeaderLeaseTimeout")
	fs.DurationVar(&rt.CommitTimeout, "raft-commit", rt.CommitTimeout, "raft CommitTimeout")
	fs.BoolVar(&rt.PreVote, "raft-prevote", rt.PreVote, "raft pre-vote (raft 1.7+)")
	settle := fs.Duration("settle", time.Second, "how long a stable cluster runs before the kill")
	within := fs.Duration("within", 20*time.Second, "give up on a failover after this long, for every scheme (the trial counts as timed out, and as \"> within\" in the censored quantiles)")
	startWithin := fs.Duration("start-within", 0, "give up on forming a cluster after this long, for every scheme (0: 30s + 200ms per node)")
	poll := fs.Duration("poll", 2*time.Millisecond, "how often survivors are polled")
	seeds := fs.Int("join-seeds", 1, "vouch nodes join through this many seed nodes in turn (1: all through the first)")
	burn := fs.Int("burn", 0, "goroutines spinning on the CPU from before the first cluster forms to the end, each on its own thread (1: a CPU hog on one core)")
	perProc := fs.Int("raft-per-process", 0, "run raft's servers in child processes of at most this many each (0: all in this process, which at N = 100 needs about as many file descriptors as this machine's limit)")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("failover", pos); err != nil {
		return err
	}
	o := scale.FailoverOptions{Trials: *trials, Profile: *sf.profile, Tuning: sf.tuning, Raft: rt, RaftPerProcess: *perProc, Settle: *settle, Within: *within, StartWithin: *startWithin, PollEvery: *poll, JoinSeeds: *seeds, Burn: *burn, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 2); err != nil {
		return err
	}
	if o.Schemes, err = scaleParseSchemes(*schemes); err != nil {
		return err
	}
	if *trials < 1 {
		return cmdline.Usagef("--trials %d: want at least 1", *trials)
	}
	if *seeds < 1 {
		return cmdline.Usagef("--join-seeds %d: want at least 1", *seeds)
	}
	if *burn < 0 {
		return cmdline.Usagef("--burn %d: want 0 or more", *burn)
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout)
	defer cancel()
	if *perProc < 0 {
		return cmdline.Usagef("--raft-per-process %d: want 0 or more", *perProc)
	}
	if *perProc == 0 {
		warnRaftDescriptors(u, o.Schemes, o.Sizes)
	}
	rep := newScaleReport("failover", args)
	o.Checkpoint = func(r *scale.FailoverResult) { rep.Failover = r; sf.checkpoint(u, rep) }
	u.Infof("failover: sizes %v, %d trials, schemes %v, burn %d; runtime and nodes in this process on loopback (SIMULATED attestation); code %s; load average %s", o.Sizes, o.Trials, o.Schemes, o.Burn, rep.Source, rep.Machine.LoadBefore)
	r, err := scale.Failover(ctx, o)
	if r == nil {
		return err
	}
	rep.Failover = r
	if terr := r.WriteTable(u.Out); terr != nil {
		return terr
	}
	return sf.finish(u, rep, err)
}

func benchDissemination(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("dissemination", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, time.Hour, true)
	sizes := fs.String("sizes", "10,25,50,100", "cluster sizes")
	certs := fs.Int("certs", 20, "certificates timed per size")
	refresh := fs.Duration("refresh", 1500*time.Millisecond, "the leader's refresh interval: one fresh certificate each")
	seeds := fs.Int("join-seeds", 1, "nodes join through this many seed nodes in turn (1: all through the first)")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("dissemination", pos); err != nil {
		return err
	}
	o := scale.DisseminationOptions{Certs: *certs, Refresh: *refresh, Profile: *sf.profile, Tuning: sf.tuning, JoinSeeds: *seeds, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 2); err != nil {
		return err
	}
	if *seeds < 1 {
		return cmdline.Usagef("--join-seeds %d: want at least 1", *seeds)
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout)
	defer cancel()
	rep := newScaleReport("dissemination", args)
	o.Checkpoint = func(r *scale.DisseminationResult) { rep.Dissemination = r; sf.checkpoint(u, rep) }
	u.Infof("dissemination: sizes %v, %d certificates each; code %s; load average %s", o.Sizes, o.Certs, rep.Source, rep.Machine.LoadBefore)
	r, err := scale.Dissemination(ctx, o)
	if r == nil {
		return err
	}
	rep.Dissemination = r
	if terr := r.WriteTable(u.Out); terr != nil {
		return terr
	}
	return sf.finish(u, rep, err)
}

func benchRest(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("rest", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, time.Hour, true)
	sizes := fs.String("sizes", "10,50,100,200", "idle cluster sizes (empty: skip, run only the false-positive count)")
	warmup := fs.Duration("warmup", 10*time.Second, "idle time after agreement before the window")
	window := fs.Duration("window", 10*time.Second, "measured window")
	views := fs.Bool("views", false, "run the signed-views scheme instead of the member list (the same as --schemes "+scale.SchemeViews+")")
	schemes := fs.String("schemes", "", "schemes to measure, each size in each: "+scale.SchemeMembers+" and/or "+scale.SchemeViews+" (default: "+scale.SchemeMembers+")")
	seeds := fs.Int("join-seeds", 1, "nodes join through this many seed nodes in turn (1: all through the first)")
	fpNodes := fs.Int("fp-nodes", 5, "nodes in the false-positive run")
	fpDuration := fs.Duration("fp-duration", 30*time.Second, "false-positive run: idle nodes for this long, counting healthy nodes declared dead (0: skip; docs/BENCHMARKS.md uses 10m)")
	fpBurn := fs.Int("fp-burn", 0, "false-positive run: goroutines spinning on the CPU alongside")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("rest", pos); err != nil {
		return err
	}
	o := scale.RestOptions{Warmup: *warmup, Window: *window, Views: *views, Profile: *sf.profile, Tuning: sf.tuning, JoinSeeds: *seeds, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 1); err != nil {
		return err
	}
	if *schemes != "" {
		if *views {
			return cmdline.Usagef("--views and --schemes: give one of them")
		}
		if o.Schemes, err = scaleParseSchemes(*schemes); err != nil {
			return err
		}
		if slices.Contains(o.Schemes, scale.SchemeRaft) {
			return cmdline.Usagef("--schemes: cost at rest measures %s and %s, not %s", scale.SchemeMembers, scale.SchemeViews, scale.SchemeRaft)
		}
	}
	if *seeds < 1 {
		return cmdline.Usagef("--join-seeds %d: want at least 1", *seeds)
	}
	if len(o.Sizes) == 0 && *fpDuration <= 0 {
		return cmdline.Usagef("nothing to run: --sizes is empty and --fp-duration is 0")
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout+*fpDuration)
	defer cancel()
	rep := newScaleReport("rest", args)
	if len(o.Sizes) > 0 {
		o.Checkpoint = func(r *scale.RestResult) { rep.Rest = []*scale.RestResult{r}; sf.checkpoint(u, rep) }
		u.Infof("cost at rest: sizes %v, warm-up %s, window %s; code %s; load average %s", o.Sizes, o.Warmup, o.Window, rep.Source, rep.Machine.LoadBefore)
		r, err := scale.Rest(ctx, o)
		if r == nil {
			return err
		}
		rep.Rest = []*scale.RestResult{r}
		if terr := r.WriteTable(u.Out); terr != nil {
			return terr
		}
		if err != nil {
			return sf.finish(u, rep, err)
		}
	}
	if *fpDuration > 0 {
		u.Infof("false positives: %d idle nodes for %s (profile %s)", *fpNodes, *fpDuration, *sf.profile)
		fp, err := scale.FalsePositives(ctx, scale.FalsePositiveOptions{N: *fpNodes, Duration: *fpDuration, Views: *views, Profile: *sf.profile, Tuning: sf.tuning, Burn: *fpBurn, Progress: u.Err})
		if err != nil {
			if len(rep.Rest) > 0 && ctx.Err() != nil {
				return sf.finish(u, rep, err) // keep the cost at rest measured before
			}
			return err
		}
		rep.FalsePositives = fp
		if len(o.Sizes) > 0 {
			fmt.Fprintln(u.Out)
		}
		if err := fp.WriteTable(u.Out); err != nil {
			return err
		}
	}
	if err := sf.finish(u, rep, nil); err != nil {
		return err
	}
	if rep.FalsePositives != nil && rep.FalsePositives.Departures > 0 {
		return fmt.Errorf("%d healthy nodes were declared dead (want 0)", rep.FalsePositives.Departures)
	}
	return nil
}

func benchMessages(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("messages", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, time.Hour, false)
	sizes := fs.String("sizes", "3,5,10,25,50", "cluster sizes")
	trials := fs.Int("trials", 5, "elections per size and scheme, each on a fresh cluster")
	schemes := fs.String("schemes", scale.SchemeViews+","+scale.SchemeRaft, "schemes to run")
	tail := fs.Duration("tail", time.Second, "keep counting this long after every survivor holds the new certificate")
	background := fs.Duration("background", 2*time.Second, "window before the kill that measures the idle rate of runtime calls")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("messages", pos); err != nil {
		return err
	}
	o := scale.MessagesOptions{Trials: *trials, Tail: *tail, Background: *background, Profile: *sf.profile, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 2); err != nil {
		return err
	}
	if o.Schemes, err = scaleParseSchemes(*schemes); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout)
	defer cancel()
	warnRaftDescriptors(u, o.Schemes, o.Sizes)
	rep := newScaleReport("messages", args)
	o.Checkpoint = func(r *scale.MessagesResult) { rep.Messages = r; sf.checkpoint(u, rep) }
	u.Infof("messages per election: sizes %v, %d trials, schemes %v; code %s; load average %s", o.Sizes, o.Trials, o.Schemes, rep.Source, rep.Machine.LoadBefore)
	r, err := scale.Messages(ctx, o)
	if r == nil {
		return err
	}
	rep.Messages = r
	if terr := r.WriteTable(u.Out); terr != nil {
		return terr
	}
	return sf.finish(u, rep, err)
}

func benchPlot(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("plot", "--in FILE[,FILE...] [--out DIR]", u)
	in := fs.String("in", "", "JSON results of failover, dissemination, trade-off or formation runs, comma-separated")
	out := fs.String("out", "docs/plots", "directory for the plots")
	format := fs.String("format", "svg", "svg, png or pdf")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("plot", pos); err != nil {
		return err
	}
	if *in == "" {
		return cmdline.Usagef("--in is required")
	}
	switch *format {
	case "svg", "png", "pdf":
	default:
		return cmdline.Usagef("--format %q: want svg, png or pdf", *format)
	}
	var files []string
	for _, f := range strings.Split(*in, ",") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	rep, err := scale.ReadReports(files...)
	if err != nil {
		return err
	}
	written, err := scale.Plot(rep, *out, *format)
	if err != nil {
		return err
	}
	for _, f := range written {
		fmt.Fprintln(u.Out, f)
	}
	if rep.Tradeoff != nil {
		for _, line := range rep.Tradeoff.EqualRateLines() {
			fmt.Fprintln(u.Out, line)
		}
	}
	return nil
}

func benchFormation(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("formation", "[flags]", u)
	var sf scaleFlags
	sf.register(fs, time.Hour, true)
	sizes := fs.String("sizes", "10,25,50,100,200", "cluster sizes, each formed on a fresh cluster")
	views := fs.Bool("views", false, "run the signed-views scheme instead of the member list")
	seeds := fs.Int("join-seeds", 1, "nodes join through this many seed nodes in turn (1: all through the first)")
	within := fs.Duration("within", 0, "give up on one formation after this long (0: 30s + 300ms per node)")
	burn := fs.Int("burn", 0, "goroutines spinning on the CPU alongside, each on its own thread (1: a CPU hog on one core)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to FILE")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("formation", pos); err != nil {
		return err
	}
	o := scale.FormationOptions{Views: *views, Profile: *sf.profile, Tuning: sf.tuning, JoinSeeds: *seeds, Within: *within, Burn: *burn, Progress: u.Err}
	if o.Sizes, err = scaleParseSizes("sizes", *sizes, 1); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *sf.timeout)
	defer cancel()
	u.Infof("formation: sizes %v, burn %d; load average %s", o.Sizes, *burn, scale.LoadAvg())
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep := scale.NewReport("vouch-bench formation " + strings.Join(args, " ")) // the machine and code as the run starts
	res, err := scale.Formation(ctx, o)
	for _, s := range res {
		fmt.Fprintf(u.Out, "%s\t%d\t%.2f s\t%d calls\t%.2f/node\t%d errors\t%d fp\tload %s\t%s\n", s.Scheme, s.N, s.StartS, s.Calls, s.CallsPerNode, s.Errors, s.FalsePositives, s.LoadAvg, s.Error)
	}
	if *sf.json != "" {
		rep.Machine.Finish()
		rep.Formation = res
		if err != nil {
			rep.Partial = err.Error()
		}
		if werr := rep.WriteJSON(*sf.json); werr != nil {
			return werr
		}
	}
	return err
}
