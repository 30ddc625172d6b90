package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// Scheme names.
const (
	SchemeMembers = "vouch-members" // member-list scheme (default)
	SchemeViews   = "vouch-views"   // signed-views scheme
	SchemeRaft    = "raft"          // hashicorp/raft baseline
)

// MemberlistTuning overrides some of the profile's memberlist timing;
// zero fields keep the profile's values.
type MemberlistTuning struct {
	ProbeInterval time.Duration `json:"probe_interval,omitempty"`
	ProbeTimeout  time.Duration `json:"probe_timeout,omitempty"`
	SuspicionMult int           `json:"suspicion_mult,omitempty"`
	GossipNodes   int           `json:"gossip_nodes,omitempty"`
	// LeaderPingInterval and LeaderTimeout override the leader watch's
	// (node.Config); a negative LeaderPingInterval turns the watch off.
	LeaderPingInterval time.Duration `json:"leader_ping_interval,omitempty"`
	LeaderTimeout      time.Duration `json:"leader_timeout,omitempty"`
}

func (t MemberlistTuning) apply(cfg *node.Config) {
	ml := *cfg.Memberlist
	if t.ProbeInterval > 0 {
		ml.ProbeInterval = t.ProbeInterval
	}
	if t.ProbeTimeout > 0 {
		ml.ProbeTimeout = t.ProbeTimeout
	}
	if t.SuspicionMult > 0 {
		ml.SuspicionMult = t.SuspicionMult
	}
	if t.GossipNodes > 0 {
		ml.GossipNodes = t.GossipNodes
	}
	cfg.Memberlist = &ml
	switch {
	case t.LeaderPingInterval < 0:
		cfg.LeaderPingInterval, cfg.LeaderTimeout = 0, 0
	case t.LeaderPingInterval > 0:
		cfg.LeaderPingInterval = t.LeaderPingInterval
	}
	if t.LeaderTimeout > 0 && cfg.LeaderPingInterval > 0 {
		cfg.LeaderTimeout = t.LeaderTimeout
	}
}

// FailoverOptions configure Failover.
type FailoverOptions struct {
	// Sizes are the cluster sizes; Trials the trials per size and scheme.
	Sizes  []int
	Trials int
	// Schemes to run, among SchemeMembers, SchemeViews and SchemeRaft.
	// Trials are interleaved: trial k of every scheme runs before trial
	// k+1 of any, so that noise on the machine hits all schemes alike.
	Schemes []string
	// Profile is the vouch profile ("local"); Tuning overrides it.
	Profile string
	Tuning  MemberlistTuning
	// JoinSeeds is ClusterOptions.JoinSeeds for the vouch clusters.
	JoinSeeds int
	// Raft is the baseline's timing.
	Raft RaftTiming
	// RaftPerProcess, if above zero, runs the raft servers in child
	// processes of at most this many each (StartRaftProcs), so that no
	// process needs more file descriptors than its limit; 0 runs them
	// all in this process.
	RaftPerProcess int
	// Settle is how long a stable cluster runs before the kill.
	Settle time.Duration
	// Within bounds the wait for the failover, for every scheme alike; a
	// trial that takes longer counts as timed out, and enters the
	// censored quantiles as "> Within". StartWithin bounds the wait for a
	// new cluster to agree, again for every scheme alike (0: 30 s +
	// 200 ms per node).
	Within, StartWithin time.Duration
	// PollEvery is how often survivors are polled.
	PollEvery time.Duration
	// GiveUpAfter: a scheme whose first GiveUpAfter trials at a size all
	// fail is not tried again at that size (0: 3).
	GiveUpAfter int
	// Burn runs this many goroutines spinning on the CPU, each on an OS
	// thread of its own, from before the first cluster forms to the end.
	Burn int
	// Progress receives one line per trial; nil discards.
	Progress io.Writer
	// Runtime, if set, is the runtime the vouch clusters use (else
	// Failover starts one and closes it at the end).
	Runtime *Runtime
	// Checkpoint, if set, receives the results so far after every trial
	// (a copy), so that a long run can be saved as it goes.
	Checkpoint func(*FailoverResult)
}

func (o *FailoverOptions) defaults() {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{3, 5, 10, 25, 50, 100}
	}
	if o.Trials <= 0 {
		o.Trials = 20
	}
	if len(o.Schemes) == 0 {
		o.Schemes = []string{SchemeMembers, SchemeViews, SchemeRaft}
	}
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.Raft == (RaftTiming{}) {
		o.Raft = DefaultRaftTiming()
	}
	if o.Settle <= 0 {
		o.Settle = time.Second
	}
	if o.Within <= 0 {
		o.Within = 20 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 2 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 3
	}
}

// startWithin is how long a new cluster of n nodes may take to agree:
// StartWithin, or 30 s + 200 ms per node. Every scheme gets the same.
func (o *FailoverOptions) startWithin(n int) time.Duration { return startBound(o.StartWithin, n) }

func startBound(set time.Duration, n int) time.Duration {
	if set > 0 {
		return set
	}
	return 30*time.Second + time.Duration(n)*200*time.Millisecond
}

// FailoverSeries is one scheme at one size.
type FailoverSeries struct {
	Scheme string `json:"scheme"`
	N      int    `json:"n"`
	Trials int    `json:"trials"`
	// Failed counts the trials that produced no failover time:
	// StartFailed those whose cluster did not agree (or did not stay
	// agreed) before the kill, so nothing was killed; TimedOut those
	// whose survivors did not agree on a new leader within the bound
	// after the kill.
	Failed      int `json:"failed"`
	StartFailed int `json:"start_failed"`
	TimedOut    int `json:"timed_out"`
	// All: kill to every survivor holding a certificate for one new
	// leader (raft: naming one new leader, which is in state Leader),
	// over the successful trials only.
	All Quantiles `json:"all_survivors"`
	// Censored is All with the timed-out trials counted too, each as
	// "more than BoundMs": what a user waits for, not only the survivors
	// of the bound. Start failures are not in it (there was no kill).
	Censored CensoredQuantiles `json:"all_survivors_censored"`
	BoundMs  float64           `json:"bound_ms"`
	// First: kill to the first survivor holding one.
	First Quantiles `json:"first_survivor"`
	// Acting (signed views): kill to the new leader acting on a renewed
	// lease.
	Acting *Quantiles `json:"leader_acting,omitempty"`
	// GaveUp is set when the first trials all failed and the rest were
	// skipped.
	GaveUp bool `json:"gave_up,omitempty"`
	// SamplesMs are the All times of the successful trials, in order.
	SamplesMs []float64 `json:"samples_ms"`
	// FalsePositives: over all trials, survivors' records of a member
	// other than the killed leader departing (healthy nodes declared
	// dead), from node.Status().Departed.
	FalsePositives int `json:"false_positives"`
	// Errors are the first three errors of each kind, prefixed with the
	// kind ("start: ", "failover: ").
	Errors []string `json:"errors,omitempty"`
}

// Partial reports whether some trials of the series failed or were
// skipped: its quantiles then describe the survivors only.
func (s *FailoverSeries) Partial() bool { return s.Failed > 0 || s.GaveUp }

// Ratio compares a vouch series with raft at one size.
type Ratio struct {
	N      int    `json:"n"`
	Scheme string `json:"scheme"`
	// P50 is vouch's median over raft's median (ratio of medians);
	// P99 the same for p99. Below 1 means vouch is faster.
	P50 float64 `json:"p50_ratio"`
	P99 float64 `json:"p99_ratio"`
	// Partial is set when either series had failed trials, so that the
	// ratio compares survivors.
	Partial bool `json:"partial,omitempty"`
}

// FailoverResult is what Failover measured.
type FailoverResult struct {
	Profile   string           `json:"profile"`
	Tuning    MemberlistTuning `json:"tuning"`
	JoinSeeds int              `json:"join_seeds,omitempty"`
	Raft      RaftTiming       `json:"raft"`
	// RaftPerProcess is FailoverOptions.RaftPerProcess.
	RaftPerProcess int `json:"raft_per_process,omitempty"`
	// Burn is FailoverOptions.Burn: CPU hogs running alongside.
	Burn   int    `json:"burn_goroutines"`
	Settle string `json:"settle"`
	Poll   string `json:"poll"`
	// Within bounds every failover; StartWithin every formation ("" is
	// 30 s + 200 ms per node).
	Within      string           `json:"within"`
	StartWithin string           `json:"start_within,omitempty"`
	Series      []FailoverSeries `json:"series"`
	Ratios      []Ratio          `json:"ratios"`
}

// Find returns the series of scheme at size n, or nil.
func (r *FailoverResult) Find(scheme string, n int) *FailoverSeries {
	for i := range r.Series {
		if r.Series[i].Scheme == scheme && r.Series[i].N == n {
			return &r.Series[i]
		}
	}
	return nil
}

type trialTimes struct {
	all, first, acting time.Duration
	falsePos           int
}

// trialError is a failed trial: Stage "start" when the cluster never
// agreed (nothing was killed), "failover" when the survivors did not
// agree within the bound after the kill.
type trialError struct {
	stage string
	err   error
}

func (e *trialError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *trialError) Unwrap() error { return e.err }

func startErr(err error) error    { return &trialError{"start", err} }
func failoverErr(err error) error { return &trialError{"failover", err} }

// seriesAcc accumulates one series' trials.
type seriesAcc struct {
	s                  FailoverSeries
	all, first, acting []time.Duration
	timedOut           []time.Duration
	errs               map[string]int
}

func (a *seriesAcc) fail(err error, bound time.Duration) {
	a.s.Failed++
	stage := "start"
	var te *trialError
	if errors.As(err, &te) {
		stage = te.stage
	}
	if stage == "failover" {
		a.s.TimedOut++
		a.timedOut = append(a.timedOut, bound)
	} else {
		a.s.StartFailed++
	}
	if a.errs == nil {
		a.errs = map[string]int{}
	}
	if a.errs[stage] < 3 {
		a.s.Errors = append(a.s.Errors, err.Error())
	}
	a.errs[stage]++
}

// summary is the series with its quantiles, a copy.
func (a *seriesAcc) summary() FailoverSeries {
	s := a.s
	s.All, s.First = Summarize(a.all), Summarize(a.first)
	s.Censored = SummarizeCensored(a.all, a.timedOut)
	if len(a.acting) > 0 {
		q := Summarize(a.acting)
		s.Acting = &q
	}
	s.SamplesMs = slices.Clone(a.s.SamplesMs)
	s.Errors = slices.Clone(a.s.Errors)
	return s
}

// ratios compares each vouch series at size n with raft's.
func ratios(series []FailoverSeries, n int) []Ratio {
	find := func(scheme string) *FailoverSeries {
		for i := range series {
			if series[i].Scheme == scheme && series[i].N == n {
				return &series[i]
			}
		}
		return nil
	}
	r := find(SchemeRaft)
	if r == nil || r.All.N == 0 {
		return nil
	}
	var out []Ratio
	for _, s := range []string{SchemeMembers, SchemeViews} {
		if v := find(s); v != nil && v.All.N > 0 {
			out = append(out, Ratio{N: n, Scheme: s, P50: round3(v.All.P50 / r.All.P50), P99: round3(v.All.P99 / r.All.P99), Partial: v.Partial() || r.Partial()})
		}
	}
	return out
}

// Failover kills the leader of fresh clusters and times the failover, for
// every size and scheme. If ctx ends first, it returns what was measured
// until then with ctx's error; the trial under way is left out.
func Failover(ctx context.Context, o FailoverOptions) (*FailoverResult, error) {
	o.defaults()
	res := &FailoverResult{Profile: o.Profile, Tuning: o.Tuning, JoinSeeds: o.JoinSeeds, Raft: o.Raft, RaftPerProcess: o.RaftPerProcess, Burn: o.Burn, Settle: o.Settle.String(), Poll: o.PollEvery.String(), Within: o.Within.String()}
	if o.StartWithin > 0 {
		res.StartWithin = o.StartWithin.String()
	}
	for _, n := range o.Sizes {
		if n < 2 {
			return nil, fmt.Errorf("scale: failover needs at least 2 nodes, got %d", n)
		}
	}
	if o.Burn > 0 {
		stop := burnCPU(o.Burn)
		defer stop()
	}
	rt := o.Runtime
	for _, s := range o.Schemes {
		switch s {
		case SchemeMembers, SchemeViews:
			if rt == nil {
				var err error
				if rt, err = StartRuntime(ctx); err != nil {
					return nil, err
				}
				defer rt.Close()
			}
		case SchemeRaft:
		default:
			return nil, fmt.Errorf("scale: unknown scheme %q (want %s, %s or %s)", s, SchemeMembers, SchemeViews, SchemeRaft)
		}
	}
	for _, n := range o.Sizes {
		acc := map[string]*seriesAcc{}
		for _, s := range o.Schemes {
			acc[s] = &seriesAcc{s: FailoverSeries{Scheme: s, N: n, BoundMs: ms(o.Within)}}
		}
		// snapshot is the result so far, this size included.
		snapshot := func() *FailoverResult {
			out := *res
			out.Series = slices.Clone(res.Series)
			out.Ratios = slices.Clone(res.Ratios)
			for _, s := range o.Schemes {
				if a := acc[s]; a.s.Trials > 0 || a.s.GaveUp {
					out.Series = append(out.Series, a.summary())
				}
			}
			out.Ratios = append(out.Ratios, ratios(out.Series, n)...)
			return &out
		}
		for k := range o.Trials {
			for _, s := range o.Schemes {
				if err := ctx.Err(); err != nil {
					return snapshot(), err
				}
				a := acc[s]
				if a.s.GaveUp {
					continue
				}
				if a.s.Failed >= o.GiveUpAfter && len(a.all) == 0 {
					a.s.GaveUp = true
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d: the first %d trials failed; giving up at this size\n", s, n, a.s.Failed)
					continue
				}
				var tt trialTimes
				var err error
				if s == SchemeRaft {
					tt, err = raftTrial(ctx, n, &o)
				} else {
					tt, err = vouchTrial(ctx, rt, n, s == SchemeViews, fmt.Sprintf("f%d-%d-%d", n, k, time.Now().UnixNano()%1e6), &o)
				}
				if ctx.Err() != nil {
					// Interrupted: the trial says nothing about the scheme.
					return snapshot(), ctx.Err()
				}
				a.s.Trials++
				a.s.FalsePositives += tt.falsePos
				if err != nil {
					a.fail(err, o.Within)
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %2d: FAILED: %v\n", s, n, k+1, err)
				} else {
					a.all = append(a.all, tt.all)
					a.first = append(a.first, tt.first)
					if tt.acting > 0 {
						a.acting = append(a.acting, tt.acting)
					}
					a.s.SamplesMs = append(a.s.SamplesMs, ms(tt.all))
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %2d: all %6.0f ms  first %6.0f ms  false positives %d  (load %s)\n", s, n, k+1, ms(tt.all), ms(tt.first), tt.falsePos, LoadAvg())
				}
				if o.Checkpoint != nil {
					o.Checkpoint(snapshot())
				}
				runtime.GC()
			}
		}
		*res = *snapshot()
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

var errTimeout = errors.New("timed out")

// vouchTrial runs one failover of a fresh vouch cluster.
func vouchTrial(ctx context.Context, rt *Runtime, n int, views bool, name string, o *FailoverOptions) (trialTimes, error) {
	var tt trialTimes
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: views, Name: name, Profile: o.Profile, JoinSeeds: o.JoinSeeds,
		Tune: func(i int, cfg *node.Config) { o.Tuning.apply(cfg) }})
	if err != nil {
		return tt, startErr(err)
	}
	defer c.Close()
	leader, seq, err := c.WaitStable(ctx, o.startWithin(n))
	if err != nil {
		return tt, startErr(err)
	}
	// Settle, and start over if anything changed meanwhile.
	for range 5 {
		if err := sleep(ctx, o.Settle); err != nil {
			return tt, err
		}
		l2, s2, ok := c.Agreement(c.Alive(), 1, "", true)
		if ok && l2 == leader && s2 == seq {
			break
		}
		if leader, seq, err = c.WaitStable(ctx, o.startWithin(n)); err != nil {
			return tt, startErr(fmt.Errorf("did not stay agreed while settling: %w", err))
		}
	}
	li := c.Index(leader)
	var surv []int
	for i := range c.Nodes {
		if i != li {
			surv = append(surv, i)
		}
	}
	before := c.DeparturesAmong(surv, leader)
	killed := make(chan struct{})
	t0 := time.Now()
	go func() { c.Kill(li); close(killed) }()
	defer func() { <-killed }()
	deadline := t0.Add(o.Within)
	var newLeader string
	for {
		now := time.Now()
		if tt.first == 0 && c.Holders(surv, seq+1, leader) > 0 {
			tt.first = now.Sub(t0)
		}
		if tt.all == 0 {
			if l, _, ok := c.Agreement(surv, seq+1, leader, false); ok {
				tt.all, newLeader = now.Sub(t0), l
				if tt.first == 0 {
					tt.first = tt.all
				}
			}
		}
		if tt.all != 0 && views {
			// The leadership may move on after the agreement (a later term
			// names another survivor): acting is when the leader the
			// survivors name now acts, not only the first one they agreed on.
			if l, _, ok := c.Agreement(surv, seq+1, leader, false); ok {
				newLeader = l
			}
		}
		if tt.all != 0 && (!views || c.Nodes[c.Index(newLeader)].Leader().Self) {
			if views {
				tt.acting = now.Sub(t0)
			}
			break
		}
		if now.After(deadline) {
			tt.falsePos = c.DeparturesAmong(surv, leader) - before
			waiting := ""
			if tt.all != 0 {
				waiting = fmt.Sprintf(" (all agreed after %s; %s does not act)", tt.all.Round(time.Millisecond), newLeader)
			}
			return tt, failoverErr(fmt.Errorf("%w after %s: %s%s", errTimeout, o.Within, c.describe(surv), waiting))
		}
		if err := sleep(ctx, o.PollEvery); err != nil {
			return tt, err
		}
	}
	tt.falsePos = c.DeparturesAmong(surv, leader) - before
	return tt, nil
}

// raftTrial runs one failover of a fresh raft cluster.
func raftTrial(ctx context.Context, n int, o *FailoverOptions) (trialTimes, error) {
	var tt trialTimes
	var c raftGroup
	var err error
	if o.RaftPerProcess > 0 {
		c, err = StartRaftProcs(n, o.RaftPerProcess, o.Raft)
	} else {
		c, err = StartRaft(n, o.Raft)
	}
	if err != nil {
		return tt, startErr(err)
	}
	defer c.Close()
	leader, err := waitRaftStable(ctx, c, o.startWithin(n))
	if err != nil {
		return tt, startErr(err)
	}
	for range 5 {
		if err := sleep(ctx, o.Settle); err != nil {
			return tt, err
		}
		if l2, ok := c.Agreement(c.Alive(), ""); ok && l2 == leader {
			break
		}
		if leader, err = waitRaftStable(ctx, c, o.startWithin(n)); err != nil {
			return tt, startErr(fmt.Errorf("did not stay agreed while settling: %w", err))
		}
	}
	li := c.Index(leader)
	killed := make(chan struct{})
	t0 := time.Now()
	go func() { c.Kill(li); close(killed) }()
	defer func() { <-killed }()
	var surv []int
	for _, i := range c.Alive() {
		if i != li {
			surv = append(surv, i)
		}
	}
	deadline := t0.Add(o.Within)
	for {
		now := time.Now()
		if tt.first == 0 && c.Holders(surv, leader) > 0 {
			tt.first = now.Sub(t0)
		}
		if _, ok := c.Agreement(surv, leader); ok {
			tt.all = now.Sub(t0)
			if tt.first == 0 {
				tt.first = tt.all
			}
			return tt, nil
		}
		if now.After(deadline) {
			return tt, failoverErr(fmt.Errorf("%w after %s: %s", errTimeout, o.Within, c.describe(surv)))
		}
		if err := sleep(ctx, o.PollEvery); err != nil {
			return tt, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
