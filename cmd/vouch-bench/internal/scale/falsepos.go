package scale

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// FalsePositiveOptions configure FalsePositives.
type FalsePositiveOptions struct {
	// N nodes run idle for Duration; none is killed, so every departure
	// any node records is a false positive.
	N        int
	Duration time.Duration
	Views    bool
	Profile  string
	Tuning   MemberlistTuning
	// Burn, if above zero, runs that many goroutines spinning on the CPU
	// alongside the cluster, to see whether load alone causes false
	// positives.
	Burn int
	// Report is how often progress is printed.
	Report   time.Duration
	Progress io.Writer
}

// FalsePositiveResult is what FalsePositives counted.
type FalsePositiveResult struct {
	N         int     `json:"n"`
	Scheme    string  `json:"scheme"`
	Profile   string  `json:"profile"`
	DurationS float64 `json:"duration_s"`
	Burn      int     `json:"burn_goroutines"`
	// Departures: (observer, member) pairs where a live node recorded a
	// healthy member as departed (node.Status().Departed). Must be 0.
	Departures int `json:"departures"`
	// Suspicions and Failures: memberlist's "Suspect X has failed" and
	// "Marking X as failed" log lines (suspicions are refuted by the
	// suspect before they become failures).
	Suspicions int64 `json:"suspicions"`
	Failures   int64 `json:"failures"`
	// LeaderChanges: certificates accepted that name a leader other than
	// the first.
	LeaderChanges int64   `json:"leader_changes"`
	RuntimeCalls  int64   `json:"runtime_calls"`
	CPUCores      float64 `json:"cpu_cores"`
	LoadAvg       string  `json:"load_avg_end"`
}

// FalsePositives runs an idle cluster and counts healthy nodes declared
// dead.
func FalsePositives(ctx context.Context, o FalsePositiveOptions) (*FalsePositiveResult, error) {
	if o.N <= 0 {
		o.N = 5
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.Report <= 0 {
		o.Report = 30 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	res := &FalsePositiveResult{N: o.N, Scheme: SchemeMembers, Profile: o.Profile, Burn: o.Burn}
	if o.Views {
		res.Scheme = SchemeViews
	}
	var first atomic.Pointer[string]
	var changes atomic.Int64
	onEvent := func(ev node.Event) {
		if ev.Event != "cert_accepted" {
			return
		}
		l := ev.Leader
		if !first.CompareAndSwap(nil, &l) && *first.Load() != l {
			changes.Add(1)
		}
	}
	c, err := StartCluster(ctx, rt, ClusterOptions{N: o.N, Views: o.Views, Name: fmt.Sprintf("fp%d-%d", o.N, time.Now().UnixNano()%1e6), Profile: o.Profile, CountLogs: true, OnEvent: onEvent,
		Tune: func(i int, cfg *node.Config) { o.Tuning.apply(cfg) }})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	leader, _, err := c.WaitStable(ctx, 30*time.Second+time.Duration(o.N)*200*time.Millisecond)
	if err != nil {
		return nil, err
	}
	// Count from agreement on: joins may legitimately suspect a member
	// that is still starting.
	first.Store(&leader)
	changes.Store(0)
	c.Suspects.Store(0)
	c.Failures.Store(0)
	dep0 := c.Departures()
	calls0 := c.Elects.Load() + c.Submits.Load()
	stopBurn := make(chan struct{})
	var wg sync.WaitGroup
	for range o.Burn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for {
				select {
				case <-stopBurn:
					return
				default:
				}
				for k := range 100000 {
					x += k
				}
				runtime.Gosched()
			}
		}()
	}
	defer func() { close(stopBurn); wg.Wait() }()
	cpu0, t0 := CPUTime(), time.Now()
	end := t0.Add(o.Duration)
	next := t0.Add(o.Report)
	for time.Now().Before(end) {
		if err := sleep(ctx, min(time.Until(end), 250*time.Millisecond)); err != nil {
			return nil, err
		}
		if time.Now().After(next) {
			next = next.Add(o.Report)
			fmt.Fprintf(o.Progress, "  %s: departures %d, suspicions %d, failures %d, leader changes %d (load %s)\n",
				time.Since(t0).Round(time.Second), c.Departures()-dep0, c.Suspects.Load(), c.Failures.Load(), changes.Load(), LoadAvg())
		}
	}
	res.DurationS = round3(time.Since(t0).Seconds())
	res.CPUCores = round3((CPUTime() - cpu0).Seconds() / time.Since(t0).Seconds())
	res.Departures = c.Departures() - dep0
	res.Suspicions, res.Failures = c.Suspects.Load(), c.Failures.Load()
	res.LeaderChanges = changes.Load()
	res.RuntimeCalls = c.Elects.Load() + c.Submits.Load() - calls0
	res.LoadAvg = LoadAvg()
	return res, nil
}
