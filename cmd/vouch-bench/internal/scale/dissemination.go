package scale

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// DisseminationOptions configure Dissemination.
type DisseminationOptions struct {
	// Sizes are the cluster sizes; Certs the certificates timed per size.
	Sizes []int
	Certs int
	// Refresh is the leader's RefreshInterval: every Refresh it asks the
	// runtime for a fresh certificate (same members, higher seq) and
	// gossips it. That is the injected certificate.
	Refresh time.Duration
	Profile string
	Tuning  MemberlistTuning
	// ModelRuns is the number of simulated spreads per size (0: 2000).
	ModelRuns int
	// JoinSeeds is ClusterOptions.JoinSeeds.
	JoinSeeds int
	Progress  io.Writer
	// Checkpoint, if set, receives the results so far after every size
	// (a copy).
	Checkpoint func(*DisseminationResult)
}

// DisseminationSeries is one size.
type DisseminationSeries struct {
	N     int `json:"n"`
	Certs int `json:"certs"`
	// Incomplete counts the timed certificates that never reached every
	// node while the run watched (until Certs+1 newer ones had been issued,
	// so at least one refresh interval each). A certificate overtaken by
	// the next one before it reached every node never will: nodes holding
	// the newer one do not take or pass on the older.
	Incomplete int `json:"incomplete"`
	// K90, K99 are the node counts the 90% and 99% columns wait for:
	// ceil(0.9 N) and ceil(0.99 N). For N ≤ 100, K99 = N: the 99% and 100%
	// columns are then the same measurement.
	K90 int `json:"k90"`
	K99 int `json:"k99"`
	// To90, To99 and To100: from the leader accepting the certificate to
	// K90, K99 and all N nodes having accepted it, over the certificates
	// that got there.
	To90  Quantiles `json:"to_90pct"`
	To99  Quantiles `json:"to_99pct"`
	To100 Quantiles `json:"to_100pct"`
	// The same with the certificates that did not get there counted,
	// each as more than the time the run watched it (CensoredQuantiles).
	To90Censored  CensoredQuantiles `json:"to_90pct_censored"`
	To99Censored  CensoredQuantiles `json:"to_99pct_censored"`
	To100Censored CensoredQuantiles `json:"to_100pct_censored"`
	// The gossip model: memberlist's parameters, the closed form
	// log_{f+1}(N) + ln(N)/f rounds, and a simulation of memberlist's
	// broadcast (each informed node sends to GossipNodes random members
	// per GossipInterval, RetransmitMult × ceil(log10(N+1)) times in all,
	// unsynchronised ticks), median rounds to 99% and 100%.
	GossipIntervalMs float64 `json:"gossip_interval_ms"`
	Fanout           int     `json:"fanout"`
	TransmitLimit    int     `json:"transmit_limit"`
	ClosedFormRounds float64 `json:"closed_form_rounds"`
	ModelRounds90    float64 `json:"model_rounds_90"`
	ModelRounds99    float64 `json:"model_rounds_99"`
	ModelRounds100   float64 `json:"model_rounds_100"`
	// ModelIncomplete is the fraction of simulated spreads that never
	// reached every node (the retransmit budget ran out).
	ModelIncomplete float64 `json:"model_incomplete"`
	FalsePositives  int     `json:"false_positives"`
	Error           string  `json:"error,omitempty"`
}

// DisseminationResult is what Dissemination measured.
type DisseminationResult struct {
	Profile string                `json:"profile"`
	Refresh string                `json:"refresh"`
	Series  []DisseminationSeries `json:"series"`
}

// certTimes records when each node accepted each certificate.
type certTimes struct {
	mu sync.Mutex
	at map[uint64]map[string]time.Time
}

func (c *certTimes) event(ev node.Event) {
	if ev.Event != "cert_accepted" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.at[ev.Seq]
	if m == nil {
		m = map[string]time.Time{}
		c.at[ev.Seq] = m
	}
	if _, ok := m[ev.Node]; !ok {
		m[ev.Node] = ev.Time
	}
}

// Partial reports whether some certificates never reached every node, or
// the size failed: its quantiles then describe the ones that did.
func (s *DisseminationSeries) Partial() bool { return s.Incomplete > 0 || s.Error != "" }

// Dissemination times how fast a new certificate reaches every node. If
// ctx ends first, it returns the sizes measured until then with ctx's
// error.
func Dissemination(ctx context.Context, o DisseminationOptions) (*DisseminationResult, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{10, 25, 50, 100}
	}
	if o.Certs <= 0 {
		o.Certs = 20
	}
	if o.Refresh <= 0 {
		o.Refresh = 1500 * time.Millisecond
	}
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.ModelRuns <= 0 {
		o.ModelRuns = 2000
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	res := &DisseminationResult{Profile: o.Profile, Refresh: o.Refresh.String()}
	for _, n := range o.Sizes {
		s, err := disseminate(ctx, rt, n, &o)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			s.Error = err.Error()
			fmt.Fprintf(o.Progress, "  N=%-3d FAILED: %v\n", n, err)
		}
		res.Series = append(res.Series, s)
		if o.Checkpoint != nil {
			cp := *res
			cp.Series = slices.Clone(res.Series)
			o.Checkpoint(&cp)
		}
	}
	return res, nil
}

func disseminate(ctx context.Context, rt *Runtime, n int, o *DisseminationOptions) (DisseminationSeries, error) {
	ct := &certTimes{at: map[uint64]map[string]time.Time{}}
	var gossip time.Duration
	var fanout, mult int
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Name: fmt.Sprintf("d%d-%d", n, time.Now().UnixNano()%1e6), Profile: o.Profile, OnEvent: ct.event, JoinSeeds: o.JoinSeeds,
		Tune: func(i int, cfg *node.Config) {
			o.Tuning.apply(cfg)
			cfg.RefreshInterval = o.Refresh
			gossip, fanout, mult = cfg.Memberlist.GossipInterval, cfg.Memberlist.GossipNodes, cfg.Memberlist.RetransmitMult
		}})
	s := DisseminationSeries{N: n}
	if err != nil {
		return s, err
	}
	defer c.Close()
	s.GossipIntervalMs, s.Fanout = ms(gossip), fanout
	s.TransmitLimit = mult * int(math.Ceil(math.Log10(float64(n+1))))
	s.ClosedFormRounds = math.Round((math.Log(float64(n))/math.Log(float64(fanout+1))+math.Log(float64(n))/float64(fanout))*100) / 100
	s.K90, s.K99 = int(math.Ceil(0.9*float64(n))), int(math.Ceil(0.99*float64(n)))
	rounds, inc := SimulateGossipTo(n, fanout, s.TransmitLimit, o.ModelRuns, []int{s.K90, s.K99, n})
	s.ModelRounds90, s.ModelRounds99, s.ModelRounds100, s.ModelIncomplete = rounds[0], rounds[1], rounds[2], inc
	_, seq0, err := c.WaitStable(ctx, 30*time.Second+time.Duration(n)*200*time.Millisecond)
	if err != nil {
		return s, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return s, err
	}
	// Wait for Certs refreshes past the current one, and one more
	// interval for the last to spread.
	deadline := time.Now().Add(time.Duration(o.Certs+3)*o.Refresh + 30*time.Second)
	for {
		ct.mu.Lock()
		k := 0
		for seq := range ct.at {
			if seq > seq0 {
				k++
			}
		}
		ct.mu.Unlock()
		if k > o.Certs {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return s, err
		}
	}
	s.FalsePositives = c.Departures()
	end := time.Now()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	var seqs []uint64
	for seq := range ct.at {
		if seq > seq0 {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	if len(seqs) > o.Certs {
		seqs = seqs[:o.Certs]
	}
	// For each fraction: the times of the certificates that reached it,
	// and for the others how long the run watched them (censored).
	ks := []int{s.K90, s.K99, n}
	got := make([][]time.Duration, len(ks))
	cut := make([][]time.Duration, len(ks))
	for _, seq := range seqs {
		var ts []time.Time
		for _, t := range ct.at[seq] {
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		s.Certs++
		for j, k := range ks {
			if len(ts) >= k {
				got[j] = append(got[j], ts[k-1].Sub(ts[0]))
			} else {
				cut[j] = append(cut[j], end.Sub(ts[0]))
			}
		}
		if len(ts) < n {
			s.Incomplete++
		}
	}
	s.To90, s.To99, s.To100 = Summarize(got[0]), Summarize(got[1]), Summarize(got[2])
	s.To90Censored, s.To99Censored, s.To100Censored = SummarizeCensored(got[0], cut[0]), SummarizeCensored(got[1], cut[1]), SummarizeCensored(got[2], cut[2])
	fmt.Fprintf(o.Progress, "  N=%-3d %d certificates: 90%% p50 %.0f ms, 99%% p50 %.0f ms, 100%% p50 %.0f ms (model %.1f / %.1f / %.1f rounds × %.0f ms), incomplete %d, false positives %d (load %s)\n",
		n, s.Certs, s.To90.P50, s.To99.P50, s.To100.P50, s.ModelRounds90, s.ModelRounds99, s.ModelRounds100, s.GossipIntervalMs, s.Incomplete, s.FalsePositives, LoadAvg())
	if s.Certs == 0 {
		return s, fmt.Errorf("no certificate was issued after seq %d", seq0)
	}
	return s, nil
}

// SimulateGossip simulates memberlist's broadcast of one message from one
// node among n: every node gossips at its own phase once per round to
// fanout random other members, and each node passes the message on
// limit times in all. It returns the median rounds until 99% and 100% of
// the nodes know the message (−1 if fewer than half the runs got there),
// and the fraction of runs that never reached all of them.
func SimulateGossip(n, fanout, limit, runs int) (r99, r100, incomplete float64) {
	r, inc := SimulateGossipTo(n, fanout, limit, runs, []int{int(math.Ceil(0.99 * float64(n))), n})
	return r[0], r[1], inc
}

// SimulateGossipTo is SimulateGossip for any node counts: the median
// rounds until counts[i] nodes know the message (−1, which JSON can carry
// where +Inf cannot, if fewer than half the runs got there), and the
// fraction of runs that never reached all n.
func SimulateGossipTo(n, fanout, limit, runs int, counts []int) (rounds []float64, incomplete float64) {
	rounds = make([]float64, len(counts))
	if n <= 1 || runs <= 0 {
		return rounds, 0
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	at := make([][]float64, len(counts))
	inf := 0
	informed := make([]float64, n) // time informed, in rounds; -1 unknown
	budget := make([]int, n)
	phase := make([]float64, n)
	for range runs {
		for i := range informed {
			informed[i], budget[i], phase[i] = -1, limit, rng.Float64()
		}
		informed[0] = 0
		// Event-driven: each informed node sends at its next ticks.
		type ev struct {
			t    float64
			node int
		}
		queue := []ev{{nextTick(0, phase[0]), 0}}
		var times []float64
		times = append(times, 0)
		for len(queue) > 0 {
			// pop the earliest
			m := 0
			for i := range queue {
				if queue[i].t < queue[m].t {
					m = i
				}
			}
			e := queue[m]
			queue = append(queue[:m], queue[m+1:]...)
			for range fanout {
				if budget[e.node] == 0 {
					break
				}
				budget[e.node]--
				j := rng.IntN(n - 1)
				if j >= e.node {
					j++
				}
				if informed[j] < 0 {
					informed[j] = e.t
					times = append(times, e.t)
					queue = append(queue, ev{nextTick(e.t, phase[j]), j})
				}
			}
			if budget[e.node] > 0 {
				queue = append(queue, ev{e.t + 1, e.node})
			}
		}
		sort.Float64s(times)
		for i, k := range counts {
			if k >= 1 && len(times) >= k {
				at[i] = append(at[i], times[k-1])
			} else {
				at[i] = append(at[i], math.Inf(1))
			}
		}
		if len(times) < n {
			inf++
		}
	}
	for i := range counts {
		sort.Float64s(at[i])
		if med := at[i][len(at[i])/2]; math.IsInf(med, 1) {
			rounds[i] = -1
		} else {
			rounds[i] = math.Round(med*100) / 100
		}
	}
	return rounds, float64(inf) / float64(runs)
}

// nextTick is the first tick of a node with the given phase (in rounds)
// strictly after t.
func nextTick(t, phase float64) float64 {
	k := math.Floor(t - phase)
	next := phase + k + 1
	for next <= t {
		next++
	}
	return next
}
