package scale

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/node"
)

// The trade-off between failover time and false failovers: both systems
// swept over one knob, the maximum silence a node tolerates from its
// leader before it acts, so that they can be compared at an equal rate of
// false failovers rather than at one arbitrary timeout each.

// Silence maps one maximum silence S onto both systems' settings.
//
// vouch (member-list scheme, local profile): the leader watch gives up on
// the leader after LeaderTimeout = S without an ack (and two failed pings
// in a row), pinging every S/5 (the local profile's 100 ms at S = 500 ms).
// memberlist's own failure detection (a failed probe round, then
// SuspicionMult probe intervals of suspicion; about 0.9 s at the local
// profile's 200 ms ProbeInterval) must not fire before the watch, or the
// sweep would measure memberlist: its ProbeInterval and ProbeTimeout are
// scaled by max(1, S/500 ms).
//
// hashicorp/raft: a follower starts an election after a random silence in
// [HeartbeatTimeout, 2×HeartbeatTimeout), so its maximum silence is
// 2×HeartbeatTimeout: HeartbeatTimeout = ElectionTimeout = S/2 (a
// candidate's own timer is drawn the same way from ElectionTimeout),
// LeaderLeaseTimeout = S/4 (half the heartbeat timeout, as raft's
// defaults), CommitTimeout 50 ms, pre-vote on.
type Silence time.Duration

// VouchTuning is the vouch setting for maximum silence s.
func (s Silence) VouchTuning() MemberlistTuning {
	d := time.Duration(s)
	t := MemberlistTuning{LeaderTimeout: d, LeaderPingInterval: d / 5}
	if d > 500*time.Millisecond {
		t.ProbeInterval = 200 * time.Millisecond * d / (500 * time.Millisecond)
		t.ProbeTimeout = 100 * time.Millisecond * d / (500 * time.Millisecond)
	}
	return t
}

// RaftTiming is the raft setting for maximum silence s.
func (s Silence) RaftTiming() RaftTiming {
	d := time.Duration(s)
	return RaftTiming{HeartbeatTimeout: d / 2, ElectionTimeout: d / 2, LeaderLeaseTimeout: d / 4, CommitTimeout: 50 * time.Millisecond, PreVote: true}
}

// String is the silence in milliseconds, "500ms".
func (s Silence) String() string { return time.Duration(s).String() }

// incidents counts false failovers in a stream of samples of an idle
// cluster. An event is a node giving up on the leader (marks, a
// monotonic count of such alarms summed over the nodes, went up: vouch's
// leader-watch alarms, raft's terms) or the leader that all nodes name
// changing. Events less than quiet apart are one incident, so that one
// failover, seen by many nodes, counts once. Samples where the nodes do
// not all name one leader are no event by themselves: a raft follower in
// a pre-vote names none, and it disturbs nobody unless it wins (a term
// increase).
type incidents struct {
	quiet     time.Duration
	started   bool
	leader    string // the leader all nodes named last
	marks     uint64
	lastEvent time.Time
	count     int
	changes   int // changes of the agreed leader
	at        []time.Time
}

// observe feeds one sample: the leader each node names ("" for none) and
// the alarm or term count summed over the nodes.
func (c *incidents) observe(t time.Time, leaders []string, marks uint64) {
	agreed := ""
	if len(leaders) > 0 {
		agreed = leaders[0]
	}
	for _, l := range leaders {
		if l != agreed {
			agreed = ""
		}
	}
	if !c.started {
		// The baseline: counting starts from an agreed cluster.
		if agreed != "" {
			c.started, c.leader, c.marks = true, agreed, marks
		}
		return
	}
	event := marks > c.marks
	c.marks = max(c.marks, marks)
	if agreed != "" && agreed != c.leader {
		event = true
		c.changes++
		c.leader = agreed
	}
	if !event {
		return
	}
	if c.lastEvent.IsZero() || t.Sub(c.lastEvent) >= c.quiet {
		c.count++
		c.at = append(c.at, t)
	}
	c.lastEvent = t
}

// PerHour is count events over d, per hour.
func PerHour(count int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round3(float64(count) / d.Hours())
}

// Hog is a CPU hog: a child process, `sh -c 'while :; do :; done'`, one
// thread spinning, so at most one core busy, scheduled by the kernel
// like any other process. Stop kills and reaps it.
type Hog struct{ cmd *exec.Cmd }

// StartHog starts the hog.
func StartHog() (*Hog, error) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("scale: starting the CPU hog: %w", err)
	}
	return &Hog{cmd: cmd}, nil
}

// Stop kills the hog and waits for it.
func (h *Hog) Stop() {
	if h == nil || h.cmd.Process == nil {
		return
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
}

// AtRestOptions configure AtRest.
type AtRestOptions struct {
	// Silences are the settings; Sizes the cluster sizes; every (system,
	// setting, size) cluster runs at once, side by side, for Duration.
	Silences []Silence
	Sizes    []int
	Duration time.Duration
	// Hog runs a CPU hog (StartHog) for the whole window.
	Hog bool
	// Quiet merges events less than this apart into one incident (0: 1 s).
	Quiet time.Duration
	// Poll is the sampling period (0: 20 ms).
	Poll     time.Duration
	Report   time.Duration
	Progress io.Writer
	// Checkpoint receives the results so far at every Report.
	Checkpoint func(*AtRestResult)
}

// AtRestSeries is one system at one setting and size.
type AtRestSeries struct {
	Scheme    string  `json:"scheme"`
	SilenceMs float64 `json:"max_silence_ms"`
	N         int     `json:"n"`
	// Setting is the system's own settings (MemberlistTuning or
	// RaftTiming).
	Setting any `json:"setting"`
	// FalseFailovers are incidents (see the result's Definition); PerHour
	// the same per hour of DurationS.
	FalseFailovers int     `json:"false_failovers"`
	PerHour        float64 `json:"false_failovers_per_hour"`
	// LeaderChanges: changes of the leader all nodes name; ChangesPerHour
	// the same per hour.
	LeaderChanges  int     `json:"leader_changes"`
	ChangesPerHour float64 `json:"leader_changes_per_hour"`
	// Alarms: vouch, times a node's leader watch found the leader
	// unreachable (vouch_node_leader_unreachable_total, summed); raft,
	// term increases summed over the nodes.
	Alarms uint64 `json:"alarms"`
	// Departures (vouch): healthy members recorded departed by memberlist
	// or the watch at the end. PreVotes (raft): pre-vote requests sent,
	// each follower that timed out asks N−1 peers.
	Departures int       `json:"departures,omitempty"`
	PreVotes   int64     `json:"prevote_requests,omitempty"`
	At         []string  `json:"incidents_at,omitempty"`
	DurationS  float64   `json:"duration_s"`
	Error      string    `json:"error,omitempty"`
	count      incidents `json:"-"`
}

// AtRestResult is what AtRest counted.
type AtRestResult struct {
	Definition string         `json:"definition"`
	Hog        string         `json:"hog"`
	Poll       string         `json:"poll"`
	Quiet      string         `json:"quiet"`
	Loads      []string       `json:"load_averages"`
	Series     []AtRestSeries `json:"series"`
}

// AtRestDefinition says what a false failover is, in every result.
const AtRestDefinition = "an incident in an idle cluster with no fault injected: events less than the quiet period apart, where an event is a node giving up on the leader (vouch: a leader-watch alarm, vouch_node_leader_unreachable_total; raft: a term increase at any server, i.e. a pre-vote won and an election started) or the leader all nodes name changing"

// atRestMember is one running cluster of AtRest.
type atRestMember struct {
	mu     sync.Mutex // guards s while its sampler runs
	s      *AtRestSeries
	vouch  *Cluster
	regs   []*prometheus.Registry
	raft   *RaftCluster
	sample func() ([]string, uint64)
	// dep0 and pv0 are the departures and pre-votes before the window.
	dep0 int
	pv0  int64
}

// AtRest runs idle clusters of both systems at every setting and size side
// by side, and counts false failovers.
func AtRest(ctx context.Context, o AtRestOptions) (*AtRestResult, error) {
	if o.Quiet <= 0 {
		o.Quiet = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.Report <= 0 {
		o.Report = time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	res := &AtRestResult{Definition: AtRestDefinition, Poll: o.Poll.String(), Quiet: o.Quiet.String(), Hog: "none"}
	if o.Hog {
		res.Hog = "child process sh -c 'while :; do :; done' (one thread: one core at most)"
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	var ms []*atRestMember
	defer func() {
		for _, m := range ms {
			if m.vouch != nil {
				m.vouch.Close()
			}
			if m.raft != nil {
				m.raft.Close()
			}
		}
	}()
	for _, s := range o.Silences {
		for _, n := range o.Sizes {
			// vouch, member-list scheme. A cluster that does not form
			// is tried again twice, then recorded as not formed.
			tune := s.VouchTuning()
			m := &atRestMember{s: &AtRestSeries{Scheme: SchemeMembers, SilenceMs: ms64(time.Duration(s)), N: n, Setting: tune}}
			ms = append(ms, m)
			for attempt := range 3 {
				m.regs = make([]*prometheus.Registry, n)
				c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Name: fmt.Sprintf("rest%d-%d-%d", n, time.Duration(s).Milliseconds(), time.Now().UnixNano()%1e6), Profile: "local",
					Tune: func(i int, cfg *node.Config) {
						tune.apply(cfg)
						m.regs[i] = prometheus.NewRegistry()
						cfg.Registerer = m.regs[i]
					}})
				if err == nil {
					_, _, err = c.WaitStable(ctx, startBound(0, n))
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					if c != nil {
						c.Close()
					}
					m.s.Error = fmt.Sprintf("attempt %d of 3 did not form: %v", attempt+1, err)
					fmt.Fprintf(o.Progress, "  at rest: %s, max silence %s, N=%d: %s (load %s)\n", SchemeMembers, s, n, m.s.Error, LoadAvg())
					continue
				}
				m.vouch, m.s.Error = c, ""
				m.sample = func() ([]string, uint64) {
					ls := make([]string, len(c.Nodes))
					for i, nd := range c.Nodes {
						ls[i] = nd.Leader().Leader
					}
					var alarms uint64
					for _, r := range m.regs {
						alarms += counterValue(r, "vouch_node_leader_unreachable_total")
					}
					return ls, alarms
				}
				break
			}
			// raft.
			rtm := s.RaftTiming()
			rm := &atRestMember{s: &AtRestSeries{Scheme: SchemeRaft, SilenceMs: ms64(time.Duration(s)), N: n, Setting: rtm}}
			ms = append(ms, rm)
			for attempt := range 3 {
				rc, err := StartRaft(n, rtm)
				if err == nil {
					_, err = rc.WaitStable(ctx, startBound(0, n))
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					if rc != nil {
						rc.Close()
					}
					rm.s.Error = fmt.Sprintf("attempt %d of 3 did not form: %v", attempt+1, err)
					fmt.Fprintf(o.Progress, "  at rest: raft, max silence %s, N=%d: %s (load %s)\n", s, n, rm.s.Error, LoadAvg())
					continue
				}
				rm.raft, rm.s.Error = rc, ""
				rm.sample = func() ([]string, uint64) { return raftSample(rc) }
				break
			}
			fmt.Fprintf(o.Progress, "  at rest: %s and raft at max silence %s, N=%d formed (load %s)\n", SchemeMembers, s, n, LoadAvg())
		}
	}
	// The vouch alarm counters are read every 500 ms (Gather is not
	// free); leaders every Poll.
	var hog *Hog
	if o.Hog {
		if hog, err = StartHog(); err != nil {
			return nil, err
		}
		defer hog.Stop()
	}
	res.Loads = append(res.Loads, "start "+LoadAvg())
	for _, m := range ms {
		m.s.count.quiet = o.Quiet
	}
	t0 := time.Now()
	end, next := t0.Add(o.Duration), t0.Add(o.Report)
	snapshot := func() *AtRestResult {
		out := *res
		out.Loads = slices.Clone(res.Loads)
		out.Series = nil
		for _, m := range ms {
			m.mu.Lock()
			s := *m.s
			s.At = nil
			for _, t := range m.s.count.at {
				s.At = append(s.At, t.Sub(t0).Round(time.Millisecond).String())
			}
			s.FalseFailovers, s.LeaderChanges = m.s.count.count, m.s.count.changes
			m.mu.Unlock()
			if m.sample != nil {
				s.DurationS = round3(time.Since(t0).Seconds())
				s.PerHour = PerHour(s.FalseFailovers, time.Since(t0))
				s.ChangesPerHour = PerHour(s.LeaderChanges, time.Since(t0))
			}
			if m.vouch != nil {
				s.Departures = m.vouch.Departures() - m.dep0
			}
			if m.raft != nil {
				s.PreVotes = m.raft.Counts.PreVotes.Load() - m.pv0
			}
			out.Series = append(out.Series, s)
		}
		return &out
	}
	// Alarms at the start are the baseline (formation may have raised
	// some).
	alarms0 := make([]uint64, len(ms))
	for i, m := range ms {
		if m.sample == nil {
			continue
		}
		_, alarms0[i] = m.sample()
		if m.vouch != nil {
			m.dep0 = m.vouch.Departures()
		}
		if m.raft != nil {
			m.pv0 = m.raft.Counts.PreVotes.Load()
		}
	}
	var wg sync.WaitGroup
	for i, m := range ms {
		if m.sample == nil {
			continue // did not form: its series says so
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var marks uint64
			lastGather := time.Time{}
			for {
				now := time.Now()
				if now.After(end) || ctx.Err() != nil {
					return
				}
				var ls []string
				if m.raft != nil || now.Sub(lastGather) >= 500*time.Millisecond {
					ls, marks = m.sample()
					lastGather = now
					marks -= min(marks, alarms0[i])
				} else {
					ls = make([]string, len(m.vouch.Nodes))
					for j, nd := range m.vouch.Nodes {
						ls[j] = nd.Leader().Leader
					}
				}
				m.mu.Lock()
				m.s.count.observe(now, ls, marks)
				m.s.Alarms = marks
				m.mu.Unlock()
				time.Sleep(o.Poll)
			}
		}()
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		sleep(ctx, min(time.Until(end), time.Second))
		if time.Now().After(next) {
			next = next.Add(o.Report)
			res.Loads = append(res.Loads, fmt.Sprintf("%s %s", time.Since(t0).Round(time.Second), LoadAvg()))
			fmt.Fprintf(o.Progress, "  at rest %s: load %s\n", time.Since(t0).Round(time.Second), LoadAvg())
			if o.Checkpoint != nil {
				o.Checkpoint(snapshot())
			}
		}
	}
	wg.Wait()
	res.Loads = append(res.Loads, "end "+LoadAvg())
	out := snapshot()
	return out, ctx.Err()
}

func ms64(d time.Duration) float64 { return float64(d.Milliseconds()) }

// raftSample is the leaders the servers name and their terms summed.
func raftSample(c *RaftCluster) ([]string, uint64) {
	alive := c.Alive()
	ls := make([]string, 0, len(alive))
	var terms uint64
	for _, i := range alive {
		_, id := c.Rafts[i].LeaderWithID()
		ls = append(ls, string(id))
		terms += c.Rafts[i].CurrentTerm()
	}
	return ls, terms
}

// counterValue reads a counter from a registry (0 if absent).
func counterValue(r *prometheus.Registry, name string) uint64 {
	mfs, err := r.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue()
		}
		return uint64(v)
	}
	return 0
}

// TradeoffResult is `vouch-bench tradeoff`: failover at every setting
// (one FailoverResult each, vouch and raft interleaved trial by trial)
// and false failovers at rest.
type TradeoffResult struct {
	Silences []string          `json:"max_silences"`
	Mapping  string            `json:"mapping"`
	Failover []*FailoverResult `json:"failover,omitempty"`
	AtRest   *AtRestResult     `json:"at_rest,omitempty"`
}

// TradeoffMapping documents Silence in every result.
const TradeoffMapping = "maximum silence S: vouch LeaderTimeout = S, LeaderPingInterval = S/5, memberlist ProbeInterval and ProbeTimeout scaled by max(1, S/500ms) from the local profile's 200ms and 100ms; raft HeartbeatTimeout = ElectionTimeout = S/2 (a follower waits a random [HeartbeatTimeout, 2*HeartbeatTimeout)), LeaderLeaseTimeout = S/4, CommitTimeout 50ms, pre-vote on"

// TradeoffPoint is one system at one setting: its failover p50 at a size
// and its false failovers per hour at rest (at RestN nodes).
type TradeoffPoint struct {
	Scheme    string  `json:"scheme"`
	SilenceMs float64 `json:"max_silence_ms"`
	N         int     `json:"n"`
	P50Ms     float64 `json:"failover_p50_ms"`
	P99Ms     float64 `json:"failover_p99_ms"`
	OK        int     `json:"failover_ok"`
	Trials    int     `json:"failover_trials"`
	RestN     int     `json:"rest_n"`
	PerHour   float64 `json:"false_failovers_per_hour"`
	Count     int     `json:"false_failovers"`
	// ChangesPerHour is the rate of leader changes alone at rest.
	ChangesPerHour float64 `json:"leader_changes_per_hour"`
	Changes        int     `json:"leader_changes"`
	RestS          float64 `json:"rest_s"`
}

// Points pairs the failover series at size n with the at-rest series at
// restN, setting by setting, for vouch's member list and raft. A setting
// without both halves is left out.
func (r *TradeoffResult) Points(n, restN int) []TradeoffPoint {
	var out []TradeoffPoint
	if r.AtRest == nil {
		return nil
	}
	for _, f := range r.Failover {
		if f == nil {
			continue
		}
		for _, scheme := range []string{SchemeMembers, SchemeRaft} {
			s := f.Find(scheme, n)
			if s == nil || s.All.N == 0 {
				continue
			}
			silence := silenceOf(f, scheme)
			for _, a := range r.AtRest.Series {
				if a.Scheme == scheme && a.N == restN && a.SilenceMs == silence && a.Error == "" && a.DurationS > 0 {
					out = append(out, TradeoffPoint{Scheme: scheme, SilenceMs: silence, N: n, P50Ms: s.All.P50, P99Ms: s.All.P99, OK: s.All.N, Trials: s.Trials,
						RestN: restN, PerHour: a.PerHour, Count: a.FalseFailovers, Changes: a.LeaderChanges, ChangesPerHour: PerHour(a.LeaderChanges, time.Duration(a.DurationS*float64(time.Second))), RestS: a.DurationS})
				}
			}
		}
	}
	return out
}

// silenceOf is the maximum silence a failover result ran at for scheme,
// by the mapping of Silence.
func silenceOf(f *FailoverResult, scheme string) float64 {
	if scheme == SchemeRaft {
		return ms64(2 * f.Raft.HeartbeatTimeout)
	}
	return ms64(f.Tuning.LeaderTimeout)
}

// EqualRate compares the systems at an equal rate of false failovers:
// the lowest rate both reach (the larger of the two systems' lowest
// rates), and at it each system's fastest setting whose rate is no
// higher. Ratio is vouch's p50 over raft's. ok is false when a system has
// no points.
type EqualRate struct {
	PerHour   float64       `json:"per_hour_at_most"`
	Vouch     TradeoffPoint `json:"vouch"`
	Raft      TradeoffPoint `json:"raft"`
	P50Ratio  float64       `json:"p50_ratio"`
	P99Ratio  float64       `json:"p99_ratio"`
	Explained string        `json:"explained"`
}

// AtEqualRate computes EqualRate from points of one size, by their rate
// of false failovers (PerHour).
func AtEqualRate(points []TradeoffPoint) (EqualRate, bool) {
	return atEqual(points, func(p TradeoffPoint) float64 { return p.PerHour }, "false failovers")
}

// AtEqualChanges is AtEqualRate by the rate of leader changes alone.
func AtEqualChanges(points []TradeoffPoint) (EqualRate, bool) {
	return atEqual(points, func(p TradeoffPoint) float64 { return p.ChangesPerHour }, "leader changes")
}

func atEqual(points []TradeoffPoint, rate func(TradeoffPoint) float64, what string) (EqualRate, bool) {
	lowest := map[string]float64{}
	for _, p := range points {
		if v, ok := lowest[p.Scheme]; !ok || rate(p) < v {
			lowest[p.Scheme] = rate(p)
		}
	}
	lv, ok1 := lowest[SchemeMembers]
	lr, ok2 := lowest[SchemeRaft]
	if !ok1 || !ok2 {
		return EqualRate{}, false
	}
	e := EqualRate{PerHour: max(lv, lr)}
	fastest := func(scheme string) TradeoffPoint {
		var best TradeoffPoint
		for _, p := range points {
			if p.Scheme == scheme && rate(p) <= e.PerHour && (best.Scheme == "" || p.P50Ms < best.P50Ms) {
				best = p
			}
		}
		return best
	}
	e.Vouch, e.Raft = fastest(SchemeMembers), fastest(SchemeRaft)
	e.P50Ratio = round3(e.Vouch.P50Ms / e.Raft.P50Ms)
	e.P99Ratio = round3(e.Vouch.P99Ms / e.Raft.P99Ms)
	e.Explained = fmt.Sprintf("at most %.1f %s per hour (the lowest rate both reach): vouch's fastest such setting is max silence %.0f ms (p50 %.0f ms), raft's %.0f ms (p50 %.0f ms)",
		e.PerHour, what, e.Vouch.SilenceMs, e.Vouch.P50Ms, e.Raft.SilenceMs, e.Raft.P50Ms)
	return e, true
}

// TradeoffFailoverOptions configure TradeoffFailover.
type TradeoffFailoverOptions struct {
	Silences []Silence
	// Schemes are SchemeMembers and/or SchemeRaft (default both).
	Schemes        []string
	Sizes          []int
	Trials         int
	RaftPerProcess int
	Settle, Within time.Duration
	// GiveUpAfter: a (setting, system, size) whose first GiveUpAfter
	// trials all fail is not tried again (0: 3).
	GiveUpAfter int
	Progress    io.Writer
	Checkpoint  func([]*FailoverResult)
}

// TradeoffFailover times failovers at every setting, interleaved: for
// each size, trial k of every setting and system runs before trial k+1 of
// any, so that the machine's noise, which drifts, hits every setting
// alike. It returns one FailoverResult per setting.
func TradeoffFailover(ctx context.Context, o TradeoffFailoverOptions) ([]*FailoverResult, error) {
	if o.Trials <= 0 {
		o.Trials = 20
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 3
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	schemes := o.Schemes
	if len(schemes) == 0 {
		schemes = []string{SchemeMembers, SchemeRaft}
	}
	for _, sch := range schemes {
		if sch != SchemeMembers && sch != SchemeRaft {
			return nil, fmt.Errorf("scale: the trade-off runs %s and %s, not %q", SchemeMembers, SchemeRaft, sch)
		}
	}
	opts := make([]FailoverOptions, len(o.Silences))
	out := make([]*FailoverResult, len(o.Silences))
	for i, s := range o.Silences {
		opts[i] = FailoverOptions{Sizes: []int{2}, Trials: 1, Schemes: schemes, Profile: "local", Tuning: s.VouchTuning(), Raft: s.RaftTiming(),
			RaftPerProcess: o.RaftPerProcess, Settle: o.Settle, Within: o.Within, Runtime: rt, Progress: o.Progress}
		opts[i].defaults()
		oi := opts[i]
		out[i] = &FailoverResult{Profile: oi.Profile, Tuning: oi.Tuning, Raft: oi.Raft, RaftPerProcess: oi.RaftPerProcess, Settle: oi.Settle.String(), Poll: oi.PollEvery.String(), Within: oi.Within.String()}
	}
	snapshot := func(accs []map[string]*seriesAcc, n int) []*FailoverResult {
		cp := make([]*FailoverResult, len(out))
		for i, r := range out {
			c := *r
			c.Series, c.Ratios = slices.Clone(r.Series), slices.Clone(r.Ratios)
			if accs != nil {
				for _, sch := range schemes {
					if a := accs[i][sch]; a.s.Trials > 0 || a.s.GaveUp {
						c.Series = append(c.Series, a.summary())
					}
				}
				c.Ratios = append(c.Ratios, ratios(c.Series, n)...)
			}
			cp[i] = &c
		}
		return cp
	}
	for _, n := range o.Sizes {
		accs := make([]map[string]*seriesAcc, len(o.Silences))
		for i := range accs {
			accs[i] = map[string]*seriesAcc{}
			for _, sch := range schemes {
				accs[i][sch] = &seriesAcc{s: FailoverSeries{Scheme: sch, N: n, BoundMs: ms(opts[i].Within)}}
			}
		}
		for k := range o.Trials {
			for i, s := range o.Silences {
				for _, sch := range schemes {
					if err := ctx.Err(); err != nil {
						return snapshot(accs, n), err
					}
					a := accs[i][sch]
					if a.s.GaveUp {
						continue
					}
					if a.s.Failed >= o.GiveUpAfter && len(a.all) == 0 {
						a.s.GaveUp = true
						fmt.Fprintf(o.Progress, "  %-13s %6s N=%-3d: the first %d trials failed; giving up\n", sch, s, n, a.s.Failed)
						continue
					}
					var tt trialTimes
					var err error
					if sch == SchemeRaft {
						tt, err = raftTrial(ctx, n, &opts[i])
					} else {
						tt, err = vouchTrial(ctx, rt, n, false, fmt.Sprintf("t%d-%d-%d-%d", n, i, k, time.Now().UnixNano()%1e6), &opts[i])
					}
					if ctx.Err() != nil {
						return snapshot(accs, n), ctx.Err()
					}
					a.s.Trials++
					a.s.FalsePositives += tt.falsePos
					if err != nil {
						a.fail(err, opts[i].Within)
						fmt.Fprintf(o.Progress, "  %-13s %6s N=%-3d trial %2d: FAILED: %.300v (load %s)\n", sch, s, n, k+1, err, LoadAvg())
					} else {
						a.all = append(a.all, tt.all)
						a.first = append(a.first, tt.first)
						a.s.SamplesMs = append(a.s.SamplesMs, ms(tt.all))
						fmt.Fprintf(o.Progress, "  %-13s %6s N=%-3d trial %2d: all %6.0f ms  first %6.0f ms  (load %s)\n", sch, s, n, k+1, ms(tt.all), ms(tt.first), LoadAvg())
					}
					if o.Checkpoint != nil {
						o.Checkpoint(snapshot(accs, n))
					}
					runtime.GC()
				}
			}
		}
		out = snapshot(accs, n)
	}
	return out, nil
}

// EqualRateLines states, for every failover size, the comparison at an
// equal rate of false failovers and at an equal rate of leader changes
// (at rest at restSizeFor(n) nodes).
func (r *TradeoffResult) EqualRateLines() []string {
	sizes := map[int]bool{}
	for _, f := range r.Failover {
		if f != nil {
			for _, s := range f.Series {
				sizes[s.N] = true
			}
		}
	}
	var ns []int
	for n := range sizes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	var out []string
	for _, n := range ns {
		restN := r.restSizeFor(n)
		pts := r.Points(n, restN)
		if e, ok := AtEqualRate(pts); ok {
			out = append(out, fmt.Sprintf("failover N=%d, at rest N=%d, by false failovers: p50 ratio %.2f, p99 ratio %.2f: %s", n, restN, e.P50Ratio, e.P99Ratio, e.Explained))
		}
		if e, ok := AtEqualChanges(pts); ok {
			out = append(out, fmt.Sprintf("failover N=%d, at rest N=%d, by leader changes: p50 ratio %.2f, p99 ratio %.2f: %s", n, restN, e.P50Ratio, e.P99Ratio, e.Explained))
		}
	}
	return out
}
