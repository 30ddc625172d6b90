package replica

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
	apply      prometheus.Histogram
	tampered   prometheus.Counter
}

func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vouch_replica_apply_seconds",
			Help:    "Time from Apply to the command applied on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		tampered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_replica_tampered_total",
			Help: "Raft store values or snapshots that failed authentication.",
		}),
	}
	m.collectors = append(m.collectors, m.apply, m.tampered,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vouch_replica_commit_index",
			Help: "The last log index this replica knows committed.",
		}, func() float64 { return float64(n.raft.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vouch_replica_applied_index",
			Help: "The last log index applied to the state machine.",
		}, func() float64 { return float64(n.raft.AppliedIndex()) }),
	)
	for _, st := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vouch_replica_state",
			Help:        "1 for this replica's raft state, 0 for the others.",
			ConstLabels: prometheus.Labels{"state": st.String()},
		}, func() float64 {
			if n.raft.State() == st {
				return 1
			}
			return 0
		}))
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, d := range m.collectors[:i] {
				reg.Unregister(d)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
