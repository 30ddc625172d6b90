package scale

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// FormationOptions configure Formation.
type FormationOptions struct {
	// Sizes are the cluster sizes, each formed on a fresh cluster.
	Sizes []int
	// Views runs the signed-views scheme instead of the member list.
	Views   bool
	Profile string
	Tuning  MemberlistTuning
	// JoinSeeds is ClusterOptions.JoinSeeds.
	JoinSeeds int
	// Within bounds one formation (0: 30 s + 300 ms per node).
	Within time.Duration
	// Burn runs this many goroutines spinning on the CPU during the runs.
	Burn     int
	Progress io.Writer
}

// FormationSeries is one formation: a fresh cluster of N nodes started
// one after another, until every node sees every node and all hold one
// certificate whose leader knows it leads.
type FormationSeries struct {
	N      int     `json:"n"`
	Scheme string  `json:"scheme"`
	StartS float64 `json:"start_s"`
	// Calls are the runtime calls (elections and submissions) of all
	// nodes from the first start to agreement; CallsPerNode divides them
	// by N, Errors counts the failed ones (429s included).
	Calls        int64   `json:"calls"`
	CallsPerNode float64 `json:"calls_per_node"`
	Errors       int64   `json:"errors"`
	// FalsePositives are the departures of healthy members recorded
	// while the cluster formed.
	FalsePositives int    `json:"false_positives"`
	LoadAvg        string `json:"load_avg_end"`
	Error          string `json:"error,omitempty"`
}

// Formation forms a cluster of each size and reports how long it took
// and how many runtime calls it made.
func Formation(ctx context.Context, o FormationOptions) ([]FormationSeries, error) {
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Burn > 0 {
		stop := burnCPU(o.Burn)
		defer stop()
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	var out []FormationSeries
	for _, n := range o.Sizes {
		s := FormationSeries{N: n, Scheme: SchemeMembers}
		if o.Views {
			s.Scheme = SchemeViews
		}
		within := o.Within
		if within <= 0 {
			within = 30*time.Second + time.Duration(n)*300*time.Millisecond
		}
		// The operator mints the nodes' function tokens before they
		// start; minting them one by one inside the timed start-up made
		// the harness, not the nodes, the slow part at N = 100 and above.
		fn := "leader"
		if o.Views {
			fn = "election"
		}
		if _, _, _, err := rt.NodeRuntime(ctx, fn, n-1); err != nil {
			return out, err
		}
		start := time.Now()
		c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: o.Views, Name: fmt.Sprintf("f%d-%d", n, time.Now().UnixNano()%1e6), Profile: o.Profile, JoinSeeds: o.JoinSeeds,
			Tune: func(i int, cfg *node.Config) { o.Tuning.apply(cfg) }})
		if err == nil {
			_, _, err = c.WaitStable(ctx, within)
		}
		s.StartS = round3(time.Since(start).Seconds())
		if c != nil {
			s.Calls = c.Elects.Load() + c.Submits.Load()
			s.CallsPerNode = round3(float64(s.Calls) / float64(n))
			s.Errors = c.Errors.Load()
			s.FalsePositives = c.Departures()
			c.Close()
		}
		s.LoadAvg = LoadAvg()
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			s.Error = err.Error()
		}
		fmt.Fprintf(o.Progress, "  %s N=%-3d formed in %.2f s, %d runtime calls (%.2f per node, %d failed), %d false positives (load %s)%s\n",
			s.Scheme, n, s.StartS, s.Calls, s.CallsPerNode, s.Errors, s.FalsePositives, s.LoadAvg, errSuffix(s.Error))
		out = append(out, s)
	}
	return out, nil
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": FAILED: " + e
}

// burnCPU starts k goroutines, each spinning on an OS thread of its own
// (a CPU hog per core), and returns the function that stops them.
func burnCPU(k int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for x := 0; ; x++ {
				if x%(1<<16) == 0 {
					select {
					case <-done:
						return
					default:
					}
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}
