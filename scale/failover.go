package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"vouch/node"
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
	// Raft is the baseline's timing.
	Raft RaftTiming
	// Settle is how long a stable cluster runs before the kill.
	Settle time.Duration
	// Within bounds the wait for the failover; StartWithin the wait for
	// a new cluster to agree (0: 30 s + 200 ms per node).
	Within, StartWithin time.Duration
	// PollEvery is how often survivors are polled.
	PollEvery time.Duration
	// GiveUpAfter: a scheme whose first GiveUpAfter trials at a size all
	// fail is not tried again at that size (0: 3).
	GiveUpAfter int
	// Progress receives one line per trial; nil discards.
	Progress io.Writer
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

func (o *FailoverOptions) startWithin(n int) time.Duration {
	if o.StartWithin > 0 {
		return o.StartWithin
	}
	return 30*time.Second + time.Duration(n)*200*time.Millisecond
}

// FailoverSeries is one scheme at one size.
type FailoverSeries struct {
	Scheme string `json:"scheme"`
	N      int    `json:"n"`
	Trials int    `json:"trials"`
	// Failed counts trials that did not converge (start or failover).
	Failed int `json:"failed"`
	// All: kill to every survivor holding a certificate for one new
	// leader (raft: naming one new leader, which is in state Leader).
	All Quantiles `json:"all_survivors"`
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
	FalsePositives int      `json:"false_positives"`
	Errors         []string `json:"errors,omitempty"`
}

// Ratio compares a vouch series with raft at one size.
type Ratio struct {
	N      int    `json:"n"`
	Scheme string `json:"scheme"`
	// P50 is vouch's median over raft's median (ratio of medians);
	// P99 the same for p99. Below 1 means vouch is faster.
	P50 float64 `json:"p50_ratio"`
	P99 float64 `json:"p99_ratio"`
}

// FailoverResult is what Failover measured.
type FailoverResult struct {
	Profile string           `json:"profile"`
	Tuning  MemberlistTuning `json:"tuning"`
	Raft    RaftTiming       `json:"raft"`
	Settle  string           `json:"settle"`
	Poll    string           `json:"poll"`
	Series  []FailoverSeries `json:"series"`
	Ratios  []Ratio          `json:"ratios"`
}

// Series returns the series of scheme at size n, or nil.
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

// Failover kills the leader of fresh clusters and times the failover, for
// every size and scheme.
func Failover(ctx context.Context, o FailoverOptions) (*FailoverResult, error) {
	o.defaults()
	res := &FailoverResult{Profile: o.Profile, Tuning: o.Tuning, Raft: o.Raft, Settle: o.Settle.String(), Poll: o.PollEvery.String()}
	var rt *Runtime
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
		if n < 2 {
			return nil, fmt.Errorf("scale: failover needs at least 2 nodes, got %d", n)
		}
		acc := map[string]*struct {
			s                  FailoverSeries
			all, first, acting []time.Duration
		}{}
		for _, s := range o.Schemes {
			acc[s] = &struct {
				s                  FailoverSeries
				all, first, acting []time.Duration
			}{s: FailoverSeries{Scheme: s, N: n}}
		}
		for k := range o.Trials {
			for _, s := range o.Schemes {
				if err := ctx.Err(); err != nil {
					return nil, err
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
				a.s.Trials++
				var tt trialTimes
				var err error
				if s == SchemeRaft {
					tt, err = raftTrial(ctx, n, &o)
				} else {
					tt, err = vouchTrial(ctx, rt, n, s == SchemeViews, fmt.Sprintf("f%d-%d-%d", n, k, time.Now().UnixNano()%1e6), &o)
				}
				a.s.FalsePositives += tt.falsePos
				if err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					a.s.Failed++
					if len(a.s.Errors) < 3 {
						a.s.Errors = append(a.s.Errors, err.Error())
					}
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %2d: FAILED: %v\n", s, n, k+1, err)
					continue
				}
				a.all = append(a.all, tt.all)
				a.first = append(a.first, tt.first)
				if tt.acting > 0 {
					a.acting = append(a.acting, tt.acting)
				}
				a.s.SamplesMs = append(a.s.SamplesMs, ms(tt.all))
				fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %2d: all %6.0f ms  first %6.0f ms  false positives %d  (load %s)\n", s, n, k+1, ms(tt.all), ms(tt.first), tt.falsePos, LoadAvg())
				runtime.GC()
			}
		}
		for _, s := range o.Schemes {
			a := acc[s]
			a.s.All, a.s.First = Summarize(a.all), Summarize(a.first)
			if len(a.acting) > 0 {
				q := Summarize(a.acting)
				a.s.Acting = &q
			}
			res.Series = append(res.Series, a.s)
		}
		if r := res.Find(SchemeRaft, n); r != nil && r.All.N > 0 {
			for _, s := range []string{SchemeMembers, SchemeViews} {
				if v := res.Find(s, n); v != nil && v.All.N > 0 {
					res.Ratios = append(res.Ratios, Ratio{N: n, Scheme: s, P50: round3(v.All.P50 / r.All.P50), P99: round3(v.All.P99 / r.All.P99)})
				}
			}
		}
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

var errTimeout = errors.New("timed out")

// vouchTrial runs one failover of a fresh vouch cluster.
func vouchTrial(ctx context.Context, rt *Runtime, n int, views bool, name string, o *FailoverOptions) (trialTimes, error) {
	var tt trialTimes
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: views, Name: name, Profile: o.Profile,
		Tune: func(i int, cfg *node.Config) { o.Tuning.apply(cfg) }})
	if err != nil {
		return tt, err
	}
	defer c.Close()
	leader, seq, err := c.WaitStable(ctx, o.startWithin(n))
	if err != nil {
		return tt, fmt.Errorf("start: %w", err)
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
			return tt, fmt.Errorf("settle: %w", err)
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
		if tt.all != 0 && (!views || c.Nodes[c.Index(newLeader)].Leader().Self) {
			if views {
				tt.acting = now.Sub(t0)
			}
			break
		}
		if now.After(deadline) {
			tt.falsePos = c.DeparturesAmong(surv, leader) - before
			return tt, fmt.Errorf("failover %w after %s: %s", errTimeout, o.Within, c.describe(surv))
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
	c, err := StartRaft(n, o.Raft)
	if err != nil {
		return tt, err
	}
	defer c.Close()
	leader, err := c.WaitStable(ctx, o.startWithin(n))
	if err != nil {
		return tt, fmt.Errorf("start: %w", err)
	}
	for range 5 {
		if err := sleep(ctx, o.Settle); err != nil {
			return tt, err
		}
		if l2, ok := c.Agreement(c.Alive(), ""); ok && l2 == leader {
			break
		}
		if leader, err = c.WaitStable(ctx, o.startWithin(n)); err != nil {
			return tt, fmt.Errorf("settle: %w", err)
		}
	}
	li := c.Index(leader)
	killed := make(chan struct{})
	t0 := time.Now()
	go func() { c.Kill(li); close(killed) }()
	defer func() { <-killed }()
	var surv []int
	for i := range c.Rafts {
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
			return tt, fmt.Errorf("raft failover %w after %s", errTimeout, o.Within)
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
