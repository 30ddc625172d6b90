package scale

import (
	"context"
	"fmt"
	"io"
	"slices"
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
	// Checkpoint, if set, receives the results so far after every trial
	// (a copy).
	Checkpoint func(*MessagesResult)
}

// MessagesSeries is one scheme at one size; counts are medians over the
// trials, per election. Every count is in messages: a one-way packet is
// one, a request and its answer (an RPC, a runtime call) two.
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
	// excess over that rate, the calls the election itself caused, with
	// its spread over the trials (quartiles): an excess whose quartiles
	// straddle 0 is noise around none. It can be negative (fewer calls
	// than the idle rate predicts); the total never charges less than 0.
	RuntimeCalls       float64 `json:"runtime_calls,omitempty"`
	IdleCallsPerS      float64 `json:"idle_calls_per_s,omitempty"`
	ExcessRuntimeCalls float64 `json:"excess_runtime_calls,omitempty"`
	ExcessP25          float64 `json:"excess_runtime_calls_p25,omitempty"`
	ExcessP75          float64 `json:"excess_runtime_calls_p75,omitempty"`
	// CertPackets: UDP packets that carried the new certificate (gossip
	// and piggybacked on probes); CertMsgs: copies of it in them.
	CertPackets float64 `json:"cert_packets,omitempty"`
	CertMsgs    float64 `json:"cert_msgs,omitempty"`
	// raft: RequestPreVote and RequestVote RPCs sent and answered, the
	// new leader's first AppendEntries to each peer (how it makes itself
	// known) sent and answered, election rounds (distinct candidate
	// terms), and the formula for one round in messages, 4(N−1): N−1
	// pre-vote and N−1 vote requests, each answered.
	PreVotes      float64 `json:"pre_votes,omitempty"`
	PreVoteResps  float64 `json:"pre_vote_responses,omitempty"`
	Votes         float64 `json:"votes,omitempty"`
	VoteResps     float64 `json:"vote_responses,omitempty"`
	Announces     float64 `json:"announces,omitempty"`
	AnnounceResps float64 `json:"announce_responses,omitempty"`
	Rounds        float64 `json:"rounds,omitempty"`
	RaftFormula   int     `json:"raft_formula_msgs_per_round,omitempty"`
	// Total is the messages per election compared across schemes, the
	// median over trials of: vouch, certificate packets + 2 × max(0,
	// excess runtime calls); raft, pre-vote, vote and announcing
	// AppendEntries requests and their answers.
	Total float64 `json:"total"`
	// Formulas, not measurements, for scale: PBFT's view change
	// (2n(n−1) messages) and MinBFT's (n(n−1)).
	PBFT   int      `json:"pbft_2n_n_minus_1"`
	MinBFT int      `json:"minbft_n_n_minus_1"`
	Errors []string `json:"errors,omitempty"`
}

// ExcessIsNoise reports whether the excess runtime calls' quartiles
// include 0: the election caused no calls beyond the idle rate that the
// trials can tell apart from none.
func (s *MessagesSeries) ExcessIsNoise() bool { return s.ExcessP25 <= 0 && s.ExcessP75 >= 0 }

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
	preVotes, preVoteResps, votes, voteResps float64
	announces, announceResps, rounds         float64
}

// total is the trial's messages (MessagesSeries.Total).
func (t msgTrial) total(raft bool) float64 {
	if raft {
		return t.preVotes + t.preVoteResps + t.votes + t.voteResps + t.announces + t.announceResps
	}
	return t.certPkts + 2*max(0, t.excess)
}

// quantile is the q-quantile of xs by linear interpolation between
// closest ranks (xs is sorted in place).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	pos := q * float64(len(xs)-1)
	lo := int(pos)
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (pos-float64(lo))*(xs[lo+1]-xs[lo])
}

// Messages counts the messages of one election. If ctx ends first, it
// returns what was counted until then with ctx's error.
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
	for _, s := range o.Schemes {
		if s != SchemeRaft && s != SchemeViews && s != SchemeMembers {
			return nil, fmt.Errorf("scale: unknown scheme %q", s)
		}
	}
	for _, n := range o.Sizes {
		for _, s := range o.Schemes {
			ser := MessagesSeries{Scheme: s, N: n, PBFT: 2 * n * (n - 1), MinBFT: n * (n - 1)}
			var ts []msgTrial
			snapshot := func() *MessagesResult {
				out := *res
				out.Series = append(slices.Clone(res.Series), summarizeMessages(ser, ts))
				return &out
			}
			for k := range o.Trials {
				var t msgTrial
				var err error
				if s == SchemeRaft {
					t, err = raftMessages(ctx, n, &o)
				} else {
					t, err = vouchMessages(ctx, rt, n, s == SchemeViews, fmt.Sprintf("m%d-%d-%d", n, k, time.Now().UnixNano()%1e6), &o)
				}
				if ctx.Err() != nil {
					return snapshot(), ctx.Err()
				}
				ser.Trials++
				if err != nil {
					ser.Failed++
					if len(ser.Errors) < 3 {
						ser.Errors = append(ser.Errors, err.Error())
					}
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %d: FAILED: %v\n", s, n, k+1, err)
				} else {
					ts = append(ts, t)
					fmt.Fprintf(o.Progress, "  %-13s N=%-3d trial %d: window %.0f ms, runtime calls %.0f (excess %.1f), cert packets %.0f, pre-votes %.0f+%.0f, votes %.0f+%.0f, announces %.0f+%.0f, rounds %.0f\n",
						s, n, k+1, ms(t.window), t.calls, t.excess, t.certPkts, t.preVotes, t.preVoteResps, t.votes, t.voteResps, t.announces, t.announceResps, t.rounds)
				}
				if o.Checkpoint != nil {
					o.Checkpoint(snapshot())
				}
			}
			res.Series = append(res.Series, summarizeMessages(ser, ts))
		}
	}
	return res, nil
}

// summarizeMessages fills ser's medians from the successful trials.
func summarizeMessages(ser MessagesSeries, ts []msgTrial) MessagesSeries {
	ser.Errors = slices.Clone(ser.Errors)
	at := func(q float64, f func(msgTrial) float64) float64 {
		if len(ts) == 0 {
			return 0
		}
		xs := make([]float64, len(ts))
		for i, t := range ts {
			xs[i] = f(t)
		}
		return round3(quantile(xs, q))
	}
	med := func(f func(msgTrial) float64) float64 { return at(0.5, f) }
	raft := ser.Scheme == SchemeRaft
	ser.WindowMs = med(func(t msgTrial) float64 { return ms(t.window) })
	ser.Total = med(func(t msgTrial) float64 { return t.total(raft) })
	if raft {
		ser.PreVotes = med(func(t msgTrial) float64 { return t.preVotes })
		ser.PreVoteResps = med(func(t msgTrial) float64 { return t.preVoteResps })
		ser.Votes = med(func(t msgTrial) float64 { return t.votes })
		ser.VoteResps = med(func(t msgTrial) float64 { return t.voteResps })
		ser.Announces = med(func(t msgTrial) float64 { return t.announces })
		ser.AnnounceResps = med(func(t msgTrial) float64 { return t.announceResps })
		ser.Rounds = med(func(t msgTrial) float64 { return t.rounds })
		ser.RaftFormula = 4 * (ser.N - 1)
		return ser
	}
	ser.RuntimeCalls = med(func(t msgTrial) float64 { return t.calls })
	ser.IdleCallsPerS = med(func(t msgTrial) float64 { return t.idleRate })
	ser.ExcessRuntimeCalls = med(func(t msgTrial) float64 { return t.excess })
	ser.ExcessP25 = at(0.25, func(t msgTrial) float64 { return t.excess })
	ser.ExcessP75 = at(0.75, func(t msgTrial) float64 { return t.excess })
	ser.CertPackets = med(func(t msgTrial) float64 { return t.certPkts })
	ser.CertMsgs = med(func(t msgTrial) float64 { return t.certs })
	return ser
}

func vouchMessages(ctx context.Context, rt *Runtime, n int, views bool, name string, o *MessagesOptions) (msgTrial, error) {
	var t msgTrial
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: views, Name: name, Profile: o.Profile, Count: true, Classify: true, InsecureGossip: true})
	if err != nil {
		return t, err
	}
	defer c.Close()
	if _, _, err := c.WaitStable(ctx, startBound(0, n)); err != nil {
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
	leader, err := c.WaitStable(ctx, startBound(0, n))
	if err != nil {
		return t, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return t, err
	}
	li := c.Index(leader)
	term, _ := strconv.ParseUint(c.Rafts[li].Stats()["term"], 10, 64)
	k := c.Counts
	k.AnnounceFloor.Store(term)
	pv0, pr0, v0, vr0, a0, ar0 := k.PreVotes.Load(), k.PreVoteResps.Load(), k.Votes.Load(), k.VoteResps.Load(), k.Announces.Load(), k.AnnounceResps.Load()
	t0 := time.Now()
	c.Kill(li)
	surv := c.Alive()
	for {
		if _, ok := c.Agreement(surv, leader); ok {
			break
		}
		if time.Since(t0) > 20*time.Second {
			return t, fmt.Errorf("raft failover timed out after 20s: %s", c.describe(surv))
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return t, err
		}
	}
	if err := sleep(ctx, o.Tail); err != nil {
		return t, err
	}
	t.window = time.Since(t0)
	t.preVotes, t.preVoteResps = float64(k.PreVotes.Load()-pv0), float64(k.PreVoteResps.Load()-pr0)
	t.votes, t.voteResps = float64(k.Votes.Load()-v0), float64(k.VoteResps.Load()-vr0)
	t.announces, t.announceResps = float64(k.Announces.Load()-a0), float64(k.AnnounceResps.Load()-ar0)
	t.rounds = float64(k.TermsAbove(term))
	return t, nil
}
