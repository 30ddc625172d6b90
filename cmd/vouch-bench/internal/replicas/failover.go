package replicas

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node"
)

// FailoverOptions configure Failover.
type FailoverOptions struct {
	// Bin is the vouch binary; Dir a scratch directory.
	Bin, Dir string
	// Sizes are the cluster sizes; Trials the trials per size.
	Sizes  []int
	Trials int
	// RaftTimeout is the replicas' --raft-timeout (0: the default).
	RaftTimeout time.Duration
	// Bound censors a trial that has not recovered within it.
	Bound time.Duration
	// Progress receives a line per trial; nil discards.
	Progress io.Writer
}

// FailoverResult is one cluster size's trials.
type FailoverResult struct {
	Nodes  int `json:"nodes"`
	Trials int `json:"trials"`
	// Raft is SIGKILL to the survivors naming a new raft leader (polled
	// every 20 ms over GET /v1/replicas).
	Raft scale.Quantiles `json:"raft_leader"`
	// Lead is SIGKILL to a node acting as leader again: the leader's
	// first lease renewal (a submission begun after the kill, answered
	// without error: only the new raft leader replica serves stateful
	// runs), or, when a later term began, its leader accepting that
	// term's certificate if that came after its first such submission.
	Lead scale.CensoredQuantiles `json:"leader_renewed"`
	// All is SIGKILL to the last node's first submission, begun after the
	// kill, answered with a certificate of the current term or later.
	All scale.CensoredQuantiles `json:"all_nodes"`
	// Lapses counts trials in which the cluster leader stopped acting
	// (its lease ran out) at a 5 ms sample; TermChanges those whose term
	// moved on (a new leader, or the same one re-elected).
	Lapses      int `json:"leader_lapses"`
	TermChanges int `json:"term_changes"`
}

// FailoverReport is the whole benchmark.
type FailoverReport struct {
	Benchmark   string           `json:"benchmark"`
	Command     string           `json:"command"`
	Machine     scale.Machine    `json:"machine"`
	Replicas    int              `json:"replicas"`
	RaftTimeout string           `json:"raft_timeout"`
	Bound       string           `json:"bound"`
	Results     []FailoverResult `json:"results"`
}

// RaftTimingNote describes --raft-timeout d as replica.Timing.
func RaftTimingNote(d time.Duration) string {
	if d == 0 {
		return "default: heartbeat 300ms, election 300ms, leader lease 150ms, commit 20ms"
	}
	return fmt.Sprintf("--raft-timeout %s: heartbeat %s, election %s, leader lease %s, commit 20ms", d, d, d, d/2)
}

// recorder wraps a node's runtime and keeps the start and end of its
// latest successful submission.
type recorder struct {
	node.Runtime
	mu     sync.Mutex
	okFrom time.Time // the start of the first success that began at or after since
	okAt   time.Time // its end
	since  time.Time
}

func (r *recorder) Submit(ctx context.Context, in []byte) (*election.Certificate, error) {
	start := time.Now()
	cert, err := r.Runtime.Submit(ctx, in)
	if err == nil {
		end := time.Now()
		r.mu.Lock()
		if !r.since.IsZero() && !start.Before(r.since) && r.okAt.IsZero() {
			r.okFrom, r.okAt = start, end
		}
		r.mu.Unlock()
	}
	return cert, err
}

// arm starts watching for the first success begun at or after t.
func (r *recorder) arm(t time.Time) {
	r.mu.Lock()
	r.since, r.okFrom, r.okAt = t, time.Time{}, time.Time{}
	r.mu.Unlock()
}

func (r *recorder) done() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.okAt, !r.okAt.IsZero()
}

// actingSince returns when a node began acting as leader of the term in
// force at the kill or a later one, through the new raft leader replica,
// or zero if none acts yet: the end of its first submission begun after
// the kill, or, when it leads a later term, when it accepted that term's
// certificate if that is later.
func actingSince(c *scale.Cluster, recs []*recorder, term uint64) time.Time {
	for j, r := range recs {
		l := c.Nodes[j].Leader()
		if !l.Self || l.Seq < term {
			continue
		}
		at, ok := r.done()
		if !ok {
			continue
		}
		if l.Seq > term {
			if cs := c.Nodes[j].Status().Certificate; cs != nil && cs.At.After(at) {
				at = cs.At
			}
		}
		return at
	}
	return time.Time{}
}

// Failover runs the benchmark: one service of 3 replica processes, and
// for each size a signed-views cluster of in-process nodes whose runtime
// is client.NewReplicas over every replica.
func Failover(ctx context.Context, o FailoverOptions) (*FailoverReport, error) {
	rep := &FailoverReport{Benchmark: "replica-failover", Machine: scale.ThisMachine(), Replicas: 3,
		RaftTimeout: RaftTimingNote(o.RaftTimeout), Bound: o.Bound.String()}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	svc, err := StartService(ctx, ServiceOptions{Bin: o.Bin, Dir: o.Dir, Replicas: 3, RaftTimeout: o.RaftTimeout})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	rt, err := scale.AttachReplicas(svc.URLs(), svc.Trust, svc.Owner)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	for _, n := range o.Sizes {
		res, err := failoverSize(ctx, svc, rt, n, o, progress)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, *res)
	}
	rep.Machine.Finish()
	return rep, nil
}

func failoverSize(ctx context.Context, svc *Service, rt *scale.Runtime, n int, o FailoverOptions, progress io.Writer) (*FailoverResult, error) {
	recs := make([]*recorder, n)
	c, err := scale.StartCluster(ctx, rt, scale.ClusterOptions{N: n, Views: true, Name: fmt.Sprintf("rf%d-%d", n, time.Now().UnixNano()%1e6), JoinSeeds: 4,
		Tune: func(i int, cfg *node.Config) {
			recs[i] = &recorder{Runtime: cfg.Runtime}
			cfg.Runtime = recs[i]
		}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &FailoverResult{Nodes: n, Trials: o.Trials}
	var raft []time.Duration
	var lead, all, leadCut, allCut []time.Duration
	for k := range o.Trials {
		if err := svc.WaitHealthy(ctx, 60*time.Second); err != nil {
			return nil, fmt.Errorf("replicas: before trial %d: %w", k+1, err)
		}
		leader, term, err := c.WaitStable(ctx, 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("replicas: before trial %d: %w", k+1, err)
		}
		// Let every node submit at least once against the healthy service.
		time.Sleep(time.Second)
		li := svc.Leader(ctx)
		if li < 0 {
			return nil, errNoLeader
		}
		killedID := svc.procs[li].id
		ln := c.Index(leader)
		t0 := time.Now()
		for _, r := range recs {
			r.arm(t0)
		}
		svc.Kill(li)
		raftAt := make(chan time.Duration, 1)
		pollCtx, stopPoll := context.WithCancel(ctx)
		go func() {
			err := eventually(pollCtx, o.Bound, func() bool {
				for i, p := range svc.procs {
					if i == li {
						continue
					}
					if rs, ok := ReplicaSetOf(pollCtx, p.url); ok && rs.Leader != "" && rs.Leader != killedID {
						return true
					}
				}
				return false
			})
			if err == nil {
				raftAt <- time.Since(t0)
			}
			close(raftAt)
		}()
		lapsed := false
		deadline := t0.Add(o.Bound)
		var leadAt, allAt time.Time
		for time.Now().Before(deadline) {
			if !c.Nodes[ln].Leader().Self {
				lapsed = true
			}
			if leadAt.IsZero() {
				leadAt = actingSince(c, recs, term)
			}
			last, every := time.Time{}, true
			for i, r := range recs {
				at, ok := r.done()
				if !ok || c.Nodes[i].Leader().Seq < term {
					every = false
					break
				}
				if at.After(last) {
					last = at
				}
			}
			if every {
				allAt = last
			}
			if !leadAt.IsZero() && !allAt.IsZero() {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopPoll()
		d, ok := <-raftAt
		if ok {
			raft = append(raft, d)
		}
		line := fmt.Sprintf("replicas: %d nodes, trial %d/%d: killed %s;", n, k+1, o.Trials, killedID)
		if leadAt.IsZero() {
			leadCut = append(leadCut, o.Bound)
			line += fmt.Sprintf(" leader not renewed within %s;", o.Bound)
		} else {
			lead = append(lead, leadAt.Sub(t0))
			line += fmt.Sprintf(" raft leader %s, cluster leader renewed %s,", d.Round(time.Millisecond), leadAt.Sub(t0).Round(time.Millisecond))
		}
		if allAt.IsZero() {
			allCut = append(allCut, o.Bound)
			line += fmt.Sprintf(" not every node within %s", o.Bound)
		} else {
			all = append(all, allAt.Sub(t0))
			line += fmt.Sprintf(" every node %s", allAt.Sub(t0).Round(time.Millisecond))
		}
		if lapsed {
			res.Lapses++
			line += " (leader lapsed)"
		}
		if l := c.Nodes[ln].Leader(); l.Seq != term || l.Leader != leader {
			res.TermChanges++
			line += fmt.Sprintf(" (term %d -> %d)", term, l.Seq)
		}
		fmt.Fprintln(progress, line)
		if err := svc.Restart(ctx, li); err != nil {
			return nil, fmt.Errorf("replicas: restarting %s: %w", killedID, err)
		}
	}
	res.Raft = scale.Summarize(raft)
	res.Lead = scale.SummarizeCensored(lead, leadCut)
	res.All = scale.SummarizeCensored(all, allCut)
	return res, nil
}
