package scale

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"vouch/node"
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
	Progress  io.Writer
}

// DisseminationSeries is one size.
type DisseminationSeries struct {
	N     int `json:"n"`
	Certs int `json:"certs"`
	// Incomplete counts certificates that had not reached every node when
	// the next one was issued.
	Incomplete int `json:"incomplete"`
	// To99 and To100: from the leader accepting the certificate to
	// ceil(0.99 N) nodes, and to all N nodes, having accepted it.
	To99  Quantiles `json:"to_99pct"`
	To100 Quantiles `json:"to_100pct"`
	// The gossip model: memberlist's parameters, the closed form
	// log_{f+1}(N) + ln(N)/f rounds, and a simulation of memberlist's
	// broadcast (each informed node sends to GossipNodes random members
	// per GossipInterval, RetransmitMult × ceil(log10(N+1)) times in all,
	// unsynchronised ticks), median rounds to 99% and 100%.
	GossipIntervalMs float64 `json:"gossip_interval_ms"`
	Fanout           int     `json:"fanout"`
	TransmitLimit    int     `json:"transmit_limit"`
	ClosedFormRounds float64 `json:"closed_form_rounds"`
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

// Dissemination times how fast a new certificate reaches every node.
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
				return nil, ctx.Err()
			}
			s.Error = err.Error()
			fmt.Fprintf(o.Progress, "  N=%-3d FAILED: %v\n", n, err)
		}
		res.Series = append(res.Series, s)
	}
	return res, nil
}

func disseminate(ctx context.Context, rt *Runtime, n int, o *DisseminationOptions) (DisseminationSeries, error) {
	ct := &certTimes{at: map[uint64]map[string]time.Time{}}
	var gossip time.Duration
	var fanout, mult int
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Name: fmt.Sprintf("d%d-%d", n, time.Now().UnixNano()%1e6), Profile: o.Profile, OnEvent: ct.event,
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
	s.ModelRounds99, s.ModelRounds100, s.ModelIncomplete = SimulateGossip(n, fanout, s.TransmitLimit, o.ModelRuns)
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
	var to99, to100 []time.Duration
	k99 := int(math.Ceil(0.99 * float64(n)))
	for _, seq := range seqs {
		var ts []time.Time
		for _, t := range ct.at[seq] {
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		s.Certs++
		if len(ts) >= k99 {
			to99 = append(to99, ts[k99-1].Sub(ts[0]))
		}
		if len(ts) >= n {
			to100 = append(to100, ts[n-1].Sub(ts[0]))
		} else {
			s.Incomplete++
		}
	}
	s.To99, s.To100 = Summarize(to99), Summarize(to100)
	fmt.Fprintf(o.Progress, "  N=%-3d %d certificates: 99%% p50 %.0f ms, 100%% p50 %.0f ms (model %.1f / %.1f rounds × %.0f ms), incomplete %d, false positives %d (load %s)\n",
		n, s.Certs, s.To99.P50, s.To100.P50, s.ModelRounds99, s.ModelRounds100, s.GossipIntervalMs, s.Incomplete, s.FalsePositives, LoadAvg())
	if s.Certs == 0 {
		return s, fmt.Errorf("no certificate was issued after seq %d", seq0)
	}
	return s, nil
}

// SimulateGossip simulates memberlist's broadcast of one message from one
// node among n: every node gossips at its own phase once per round to
// fanout random other members, and each node passes the message on
// limit times in all. It returns the median rounds until 99% and 100% of
// the nodes know the message, and the fraction of runs that never reached
// all of them (those count as +Inf in the median).
func SimulateGossip(n, fanout, limit, runs int) (r99, r100, incomplete float64) {
	if n <= 1 {
		return 0, 0, 0
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	k99 := int(math.Ceil(0.99 * float64(n)))
	var t99s, t100s []float64
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
		if len(times) >= k99 {
			t99s = append(t99s, times[k99-1])
		} else {
			t99s = append(t99s, math.Inf(1))
		}
		if len(times) == n {
			t100s = append(t100s, times[n-1])
		} else {
			t100s = append(t100s, math.Inf(1))
			inf++
		}
	}
	sort.Float64s(t99s)
	sort.Float64s(t100s)
	return math.Round(t99s[len(t99s)/2]*100) / 100, math.Round(t100s[len(t100s)/2]*100) / 100, float64(inf) / float64(runs)
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
