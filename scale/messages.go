package scale

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
)

// MessagesOptions configure Messages.
type MessagesOptions struct {
	// Sizes are the cluster sizes; Trials the elections per size and
	// scheme, each on a fresh cluster.
	Sizes  []int
	Trials int
	// Schemes among SchemeViews (the default), SchemeMembers, SchemeRaft.
	Schemes []string
	// Background is the window before the kill in which the idle rate of
	// runtime calls is measured; Tail how long counting goes on after
	// every survivor holds the new certificate (gossip retransmissions
	// end within a few GossipIntervals).
	Background, Tail time.Duration
	Profile          string
	Raft             RaftTiming
	Progress         io.Writer
}

// MessagesSeries is one scheme at one size; counts are medians over the
// trials, per election.
type MessagesSeries struct {
	Scheme string `json:"scheme"`
	N      int    `json:"n"`
	Trials int    `json:"trials"`
	Failed int    `json:"failed"`
	// WindowMs: from the kill to the end of counting (failover + Tail).
	WindowMs float64 `json:"window_ms"`
	// vouch: calls to the runtime (view submissions with signed views,
	// elections with the member list) in the window; the idle rate
	// (calls per second, whole cluster) measured before the kill; and the
	// excess over that rate, the calls the election itself caused.
	RuntimeCalls       float64 `json:"runtime_calls,omitempty"`
	IdleCallsPerS      float64 `json:"idle_calls_per_s,omitempty"`
	ExcessRuntimeCalls float64 `json:"excess_runtime_calls,omitempty"`
	// CertPackets: UDP packets that carried the new certificate (gossip
	// and piggybacked on probes); CertMsgs: copies of it in them.
	CertPackets float64 `json:"cert_packets,omitempty"`
	CertMsgs    float64 `json:"cert_msgs,omitempty"`
	// raft: RequestPreVote and RequestVote RPCs sent, election rounds
	// (distinct candidate terms) and the formula 2(N−1) per round.
	PreVotes    float64 `json:"pre_votes,omitempty"`
	Votes       float64 `json:"votes,omitempty"`
	Rounds      float64 `json:"rounds,omitempty"`
	RaftFormula int     `json:"raft_formula_per_round,omitempty"`
	// Total is the messages per election compared across schemes: vouch
	// excess runtime calls + certificate packets; raft pre-votes + votes.
	Total float64 `json:"total"`
	// PBFT's view change (2n(n−1)) and MinBFT's (n(n−1)), for scale.
	PBFT   int      `json:"pbft_2n_n_minus_1"`
	MinBFT int      `json:"minbft_n_n_minus_1"`
	Errors []string `json:"errors,omitempty"`
}

// MessagesResult is what Messages measured.
type MessagesResult struct {
	Profile string           `json:"profile"`
	Raft    RaftTiming       `json:"raft"`
	Tail    string           `json:"tail"`
	Series  []MessagesSeries `json:"series"`
}

type msgTrial struct {
	window                                   time.Duration
	calls, idleRate, excess, certPkts, certs float64
	preVotes, votes, rounds                  float64
}

// Messages counts the messages of one election.
func Messages(ctx context.Context, o MessagesOptions) (*MessagesResult, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{3, 5, 10, 25, 50}
	}
	if o.Trials <= 0 {
		o.Trials = 5
	}
	if len(o.Schemes) == 0 {
		o.Schemes = []string{SchemeViews, SchemeRaft}
	}
	if o.Background <= 0 {
		o.Background = 2 * time.Second
	}
	if o.Tail <= 0 {
		o.Tail = time.Second
	}
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.Raft == (RaftTiming{}) {
		o.Raft = DefaultRaftTiming()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	res := &MessagesResult{Profile: o.Profile, Raft: o.Raft, Tail: o.Tail.String()}
	for _, n := range o.Sizes {
		for _, s := range o.Schemes {
			ser := MessagesSeries{Scheme: s, N: n, PBFT: 2 * n * (n - 1), MinBFT: n * (n - 1)}
			var ts []msgTrial
			for k := range o.Trials {
				var t msgTrial
				var err error
				switch s {
				case SchemeRaft:
					t, err = raftMessages(ctx, n, &o)
				case SchemeViews, SchemeMembers:
					t, err = vouchMessages(ctx, rt, n, s == SchemeViews, fmt.Sprintf("m%d-%d-%d", n, k, time.Now().UnixNano()%1e6), &o)
				default:
					return nil, fmt.Errorf("scale: unknown scheme %q", s)
				}
				ser.Trials++
				if err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					ser.Failed++
					if len(ser.Errors) < 3 {
						ser.Errors = append(ser.Errors, err.Error())
					}
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %d: FAILED: %v\n", s, n, k+1, err)
					continue
				}
				ts = append(ts, t)
				fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %d: window %.0f ms, runtime calls %.0f (excess %.1f), cert packets %.0f, pre-votes %.0f, votes %.0f, rounds %.0f\n",
					s, n, k+1, ms(t.window), t.calls, t.excess, t.certPkts, t.preVotes, t.votes, t.rounds)
			}
			med := func(f func(msgTrial) float64) float64 {
				if len(ts) == 0 {
					return 0
				}
				xs := make([]float64, len(ts))
				for i, t := range ts {
					xs[i] = f(t)
				}
				sort.Float64s(xs)
				if len(xs)%2 == 1 {
					return round3(xs[len(xs)/2])
				}
				return round3((xs[len(xs)/2-1] + xs[len(xs)/2]) / 2)
			}
			ser.WindowMs = med(func(t msgTrial) float64 { return ms(t.window) })
			if s == SchemeRaft {
				ser.PreVotes = med(func(t msgTrial) float64 { return t.preVotes })
				ser.Votes = med(func(t msgTrial) float64 { return t.votes })
				ser.Rounds = med(func(t msgTrial) float64 { return t.rounds })
				ser.RaftFormula = 2 * (n - 1)
				ser.Total = med(func(t msgTrial) float64 { return t.preVotes + t.votes })
			} else {
				ser.RuntimeCalls = med(func(t msgTrial) float64 { return t.calls })
				ser.IdleCallsPerS = med(func(t msgTrial) float64 { return t.idleRate })
				ser.ExcessRuntimeCalls = med(func(t msgTrial) float64 { return t.excess })
				ser.CertPackets = med(func(t msgTrial) float64 { return t.certPkts })
				ser.CertMsgs = med(func(t msgTrial) float64 { return t.certs })
				ser.Total = med(func(t msgTrial) float64 { return t.excess + t.certPkts })
			}
			res.Series = append(res.Series, ser)
		}
	}
	return res, nil
}

func vouchMessages(ctx context.Context, rt *Runtime, n int, views bool, name string, o *MessagesOptions) (msgTrial, error) {
	var t msgTrial
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: views, Name: name, Profile: o.Profile, Count: true, Classify: true})
	if err != nil {
		return t, err
	}
	defer c.Close()
	if _, _, err := c.WaitStable(ctx, 30*time.Second+time.Duration(n)*200*time.Millisecond); err != nil {
		return t, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return t, err
	}
	calls := func() int64 { return c.Elects.Load() + c.Submits.Load() }
	b0, bt := calls(), time.Now()
	if err := sleep(ctx, o.Background); err != nil {
		return t, err
	}
	t.idleRate = float64(calls()-b0) / time.Since(bt).Seconds()
	leader, seq, ok := c.Agreement(c.Alive(), 1, "", true)
	if !ok {
		return t, fmt.Errorf("the cluster changed during the background window: %s", c.describe(c.Alive()))
	}
	var before Snapshot
	for _, ctr := range c.Counters {
		ctr.CertFloor.Store(seq)
		before = before.Add(ctr.Snap())
	}
	li := c.Index(leader)
	c0 := calls()
	t0 := time.Now()
	c.Kill(li)
	surv := c.Alive()
	for {
		if l, _, ok := c.Agreement(surv, seq+1, leader, false); ok && (!views || c.Nodes[c.Index(l)].Leader().Self) {
			break
		}
		if time.Since(t0) > 20*time.Second {
			return t, fmt.Errorf("failover timed out: %s", c.describe(surv))
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return t, err
		}
	}
	if err := sleep(ctx, o.Tail); err != nil {
		return t, err
	}
	t.window = time.Since(t0)
	t.calls = float64(calls() - c0)
	t.excess = t.calls - t.idleRate*float64(n-1)/float64(n)*t.window.Seconds()
	var after Snapshot
	for _, ctr := range c.Counters {
		after = after.Add(ctr.Snap())
	}
	d := after.Sub(before)
	t.certPkts, t.certs = float64(d.CertPackets), float64(d.CertMsgs)
	return t, nil
}

func raftMessages(ctx context.Context, n int, o *MessagesOptions) (msgTrial, error) {
	var t msgTrial
	c, err := StartRaft(n, o.Raft)
	if err != nil {
		return t, err
	}
	defer c.Close()
	leader, err := c.WaitStable(ctx, 30*time.Second)
	if err != nil {
		return t, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return t, err
	}
	li := c.Index(leader)
	term, _ := strconv.ParseUint(c.Rafts[li].Stats()["term"], 10, 64)
	pv0, v0 := c.Counts.PreVotes.Load(), c.Counts.Votes.Load()
	t0 := time.Now()
	c.Kill(li)
	surv := c.Alive()
	for {
		if _, ok := c.Agreement(surv, leader); ok {
			break
		}
		if time.Since(t0) > 20*time.Second {
			return t, fmt.Errorf("raft failover timed out")
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return t, err
		}
	}
	if err := sleep(ctx, o.Tail); err != nil {
		return t, err
	}
	t.window = time.Since(t0)
	t.preVotes = float64(c.Counts.PreVotes.Load() - pv0)
	t.votes = float64(c.Counts.Votes.Load() - v0)
	t.rounds = float64(c.Counts.TermsAbove(term))
	return t, nil
}
