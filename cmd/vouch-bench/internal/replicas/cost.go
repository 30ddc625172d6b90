package replicas

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/bench"
	"github.com/vouch-dev/vouch/node"
)

// CostOptions configure Cost.
type CostOptions struct {
	Bin, Dir string
	// Rounds each measure every configuration once, in turn.
	Rounds int
	// Runs and Concurrency shape each stateless measurement (the leader
	// function, sealed inputs, as `vouch-bench run`).
	Runs, Concurrency int
	// Submissions per stateful measurement, spread over Members workers,
	// each one member of a signed-views cluster submitting signed views
	// to the election function in a loop.
	Submissions, Members int
	RaftTimeout          time.Duration
	Progress             io.Writer
}

// Config names the configurations compared, in the order they are
// measured in each round.
var Configs = []string{"single runtime", "1 replica", "3 replicas"}

// CostResult is one configuration's measurements, one per round.
type CostResult struct {
	Config string `json:"config"`
	// Stateless is runs per second of the leader function, Stateful
	// submissions per second to the election function.
	Stateless []float64 `json:"stateless_runs_per_s"`
	Stateful  []float64 `json:"stateful_submissions_per_s"`
	// Medians and the ratio of each median to the single runtime's.
	StatelessMedian float64 `json:"stateless_median"`
	StatefulMedian  float64 `json:"stateful_median"`
	StatelessRatio  float64 `json:"stateless_ratio"`
	StatefulRatio   float64 `json:"stateful_ratio"`
	// StatefulErrors counts failed submissions (retried, not counted in
	// the rate); FirstError is the first one's message.
	StatefulErrors int    `json:"stateful_errors"`
	FirstError     string `json:"first_error,omitempty"`
	// Refusals counts the election function's refusals by code (the
	// api.Error's refusal, which sealed inputs carry too). Lease refusals
	// are answers, counted in the rate; the others are failures.
	Refusals map[string]int `json:"refusals,omitempty"`
	// RaftTermChanges counts raft elections during the rounds (a
	// replicated configuration; a change of leader interrupts the load).
	RaftTermChanges uint64 `json:"raft_term_changes"`
	// StatelessP50Micros is the median over rounds of each round's p50
	// latency.
	StatelessP50Micros float64 `json:"stateless_p50_us"`
}

// CostReport is the whole benchmark.
type CostReport struct {
	Benchmark   string        `json:"benchmark"`
	Command     string        `json:"command"`
	Machine     scale.Machine `json:"machine"`
	RaftTimeout string        `json:"raft_timeout"`
	Rounds      int           `json:"rounds"`
	Runs        int           `json:"stateless_runs"`
	Concurrency int           `json:"concurrency"`
	Submissions int           `json:"submissions"`
	Members     int           `json:"members"`
	Results     []CostResult  `json:"results"`
	// SetupRetries lists the setups that failed and were started again.
	SetupRetries []string `json:"setup_retries,omitempty"`
}

// costTarget is one configuration, set up for both workloads.
type costTarget struct {
	svc       *Service
	stateless *bench.Target
	workers   []*submitter
}

// submitter is one cluster member submitting views.
type submitter struct {
	rt   *node.ClientRuntime
	c    *client.Client
	key  ed25519.PrivateKey
	name string
	cfg  *cluster.Signed
	seq  uint64
	all  []string
}

func (s *submitter) submit(ctx context.Context, withConfig bool) error {
	s.seq = max(s.seq+1, uint64(time.Now().UnixMicro()))
	sv, err := cluster.SignView(cluster.View{Cluster: s.cfg.Config.Cluster, Node: s.name, Seq: s.seq, TimeMillis: time.Now().UnixMilli(), Alive: s.all}, s.key)
	if err != nil {
		return err
	}
	in := map[string]any{"view": sv}
	if withConfig {
		in["config"] = s.cfg
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, err = s.rt.Submit(ctx, body)
	return err
}

// Cost runs the benchmark.
func Cost(ctx context.Context, o CostOptions) (*CostReport, error) {
	rep := &CostReport{Benchmark: "replication-cost", Machine: scale.ThisMachine(), RaftTimeout: RaftTimingNote(o.RaftTimeout),
		Rounds: o.Rounds, Runs: o.Runs, Concurrency: o.Concurrency, Submissions: o.Submissions, Members: o.Members}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	targets := make([]*costTarget, len(Configs))
	defer func() {
		for _, t := range targets {
			if t != nil {
				t.close()
			}
		}
	}()
	for i, replicas := range []int{0, 1, 3} {
		// A raft election during the setup can make a step fail (see
		// SetupRetries); the setup starts again in a new directory.
		var err error
		for attempt := 1; ; attempt++ {
			targets[i], err = setupCost(ctx, o, filepath.Join(o.Dir, fmt.Sprintf("cfg%d-%d", i, attempt)), replicas)
			if err == nil || attempt == 3 || ctx.Err() != nil {
				break
			}
			rep.SetupRetries = append(rep.SetupRetries, fmt.Sprintf("%s: %v", Configs[i], err))
			fmt.Fprintf(progress, "replicas: setting up %s failed, starting again: %v\n", Configs[i], err)
		}
		if err != nil {
			return nil, fmt.Errorf("replicas: setting up %s: %w", Configs[i], err)
		}
	}
	input := bench.LeaderInput(bench.DefaultMembers)
	for i, t := range targets {
		if _, err := t.stateless.Load(ctx, input, o.Concurrency, max(o.Runs/10, o.Concurrency)); err != nil {
			return nil, fmt.Errorf("replicas: warming up %s: %w", Configs[i], err)
		}
	}
	res := make([]CostResult, len(Configs))
	terms := make([]uint64, len(Configs))
	for i, t := range targets {
		terms[i] = t.raftTerm(ctx)
	}
	p50s := make([][]float64, len(Configs))
	for r := range o.Rounds {
		for i, t := range targets {
			lv, err := t.stateless.Load(ctx, input, o.Concurrency, o.Runs)
			if err != nil {
				return nil, fmt.Errorf("replicas: %s, round %d: %w", Configs[i], r+1, err)
			}
			res[i].Stateless = append(res[i].Stateless, lv.RunsPerSec)
			p50s[i] = append(p50s[i], lv.P50Micros)
			fmt.Fprintf(progress, "replicas: round %d/%d: %s: stateless %.0f runs/s (p50 %.0f µs)\n", r+1, o.Rounds, Configs[i], lv.RunsPerSec, lv.P50Micros)
		}
		for i, t := range targets {
			rate, failed, first, refusals, err := t.submissions(ctx, o.Submissions)
			if err != nil {
				return nil, fmt.Errorf("replicas: %s, round %d: %w", Configs[i], r+1, err)
			}
			res[i].Stateful = append(res[i].Stateful, rate)
			res[i].StatefulErrors += failed
			for code, n := range refusals {
				if res[i].Refusals == nil {
					res[i].Refusals = map[string]int{}
				}
				res[i].Refusals[code] += n
			}
			if failed > 0 && res[i].FirstError == "" {
				res[i].FirstError = first
			}
			fmt.Fprintf(progress, "replicas: round %d/%d: %s: stateful %.0f submissions/s, %d failed\n", r+1, o.Rounds, Configs[i], rate, failed)
		}
	}
	for i := range res {
		if terms[i] > 0 {
			res[i].RaftTermChanges = targets[i].raftTerm(ctx) - terms[i]
		}
		res[i].Config = Configs[i]
		res[i].StatelessMedian = Median(res[i].Stateless)
		res[i].StatefulMedian = Median(res[i].Stateful)
		res[i].StatelessP50Micros = Median(p50s[i])
		res[i].StatelessRatio = Ratio(res[i].StatelessMedian, res[0].StatelessMedian)
		res[i].StatefulRatio = Ratio(res[i].StatefulMedian, res[0].StatefulMedian)
	}
	rep.Results = res
	rep.Machine.Finish()
	return rep, nil
}

// setupCost starts a configuration's processes, deploys both functions
// and signs the cluster configuration; a replicated service is loaded
// through its leader's URL.
func setupCost(ctx context.Context, o CostOptions, dir string, replicas int) (_ *costTarget, err error) {
	t := &costTarget{}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.svc, err = StartService(ctx, ServiceOptions{Bin: o.Bin, Dir: dir, Replicas: replicas, RaftTimeout: o.RaftTimeout}); err != nil {
		return nil, err
	}
	url := t.svc.URLs()[0]
	if replicas > 0 {
		if err := t.svc.WaitHealthy(ctx, 60*time.Second); err != nil {
			return nil, err
		}
		url = t.svc.URLs()[t.svc.Leader(ctx)]
	}
	opts := client.Options{Trust: t.svc.Trust, OwnerToken: t.svc.Owner}
	if t.stateless, err = bench.Setup(ctx, url, opts, false, false, o.Concurrency); err != nil {
		return nil, err
	}
	b, err := functions.Builtin("election")
	if err != nil {
		return nil, err
	}
	d, err := t.stateless.Client.Deploy(ctx, b, "")
	if err != nil {
		return nil, err
	}
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	cc := cluster.Config{Cluster: "cost", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: cluster.DefaultLease.Milliseconds(), ViewTTLMillis: cluster.DefaultViewTTL.Milliseconds()}
	keys := make([]ed25519.PrivateKey, o.Members)
	var names []string
	for i := range o.Members {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		names = append(names, scale.NodeName(i))
		cc.Members = append(cc.Members, cluster.Member{ID: scale.NodeName(i), Key: k.Public().(ed25519.PublicKey)})
	}
	sc, err := cluster.Sign(cc, owner)
	if err != nil {
		return nil, err
	}
	for i := range o.Members {
		tok, err := t.stateless.Client.MintToken(ctx, d.FunctionID, d.FunctionChecksum, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		c, err := client.New(url, client.Options{Trust: t.svc.Trust})
		if err != nil {
			return nil, err
		}
		w := &submitter{c: c, rt: node.NewClientRuntime(c, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}),
			key: keys[i], name: names[i], cfg: sc, all: names}
		t.workers = append(t.workers, w)
		// A follower may not have applied the deploy yet, and the client
		// reads the function's description from the replica it talks to,
		// which answers 404 until it has: retry for a while.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := w.submit(ctx, true)
			if err == nil || node.IsLeaseRefusal(err) {
				break
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeNotFound || time.Now().After(deadline) {
				return nil, fmt.Errorf("first submission: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return t, nil
}

// submissions has every worker submit views until n submissions are
// answered and returns answers per second and the failed submissions
// (not counted, and retried), with the first failure's message. It fails
// when more than half of the attempts fail.
func (t *costTarget) submissions(ctx context.Context, n int) (float64, int, string, map[string]int, error) {
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	var firstErr string
	var errOnce sync.Once
	var mu sync.Mutex
	refusals := map[string]int{}
	start := time.Now()
	for _, w := range t.workers {
		wg.Go(func() {
			for done.Load() < int64(n) && ctx.Err() == nil {
				if failed.Load() > int64(n)/2 {
					return
				}
				err := w.submit(ctx, false)
				if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Refusal != "" {
					mu.Lock()
					refusals[ae.Refusal]++
					mu.Unlock()
				}
				if err != nil && !node.IsLeaseRefusal(err) {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	rate := float64(done.Load()) / time.Since(start).Seconds()
	if f := int(failed.Load()); f > n/2 {
		return rate, f, firstErr, refusals, fmt.Errorf("%d of %d submissions failed; the first: %s", f, n, firstErr)
	}
	return rate, int(failed.Load()), firstErr, refusals, ctx.Err()
}

// raftTerm is the highest raft term the replicas report, 0 for a single
// runtime.
func (t *costTarget) raftTerm(ctx context.Context) uint64 {
	var term uint64
	if t.svc.o.Replicas == 0 {
		return 0
	}
	for _, u := range t.svc.URLs() {
		if rs, ok := ReplicaSetOf(ctx, u); ok {
			term = max(term, rs.Term)
		}
	}
	return term
}

func (t *costTarget) close() {
	for _, w := range t.workers {
		w.c.Close()
	}
	if t.stateless != nil {
		t.stateless.Close()
	}
	if t.svc != nil {
		t.svc.Close()
	}
}
