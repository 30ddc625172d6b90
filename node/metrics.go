package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node/internal/nodecore"
)

// The metrics are documented in docs/API.md, "Node status and metrics".
type metrics struct {
	gatherer       prometheus.Gatherer
	elections      prometheus.Counter
	views          prometheus.Counter
	electionErrors prometheus.Counter
	refusedAnswers prometheus.Counter
	leaderChanges  prometheus.Counter
	failovers      *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	callSeconds    prometheus.Histogram
	runtimeOK      prometheus.Gauge
	runtimeFail    prometheus.Gauge
	members        prometheus.Gauge
	membersByState *prometheus.GaugeVec
	leaderLost     prometheus.Counter
	floorProofs    prometheus.Counter
	isLeader       prometheus.Gauge
	seq            prometheus.Gauge
	health         prometheus.Gauge
	pending        prometheus.Gauge
	calmSkipped    prometheus.Counter
	droppedCounts  counts
	// malformedCerts counts certificates the decoder refused, which never
	// reach the core; /status adds them to the core's rejections.
	malformedCerts atomic.Uint64
}

// Member states in /status and vouch_node_members_by_state.
var memberStates = []string{"alive", "unreachable", "suspect", "ignored", "dead", "left"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var g prometheus.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, g = r, r
	} else if gg, ok := reg.(prometheus.Gatherer); ok {
		g = gg
	} else {
		g = prometheus.DefaultGatherer
	}
	m := &metrics{
		gatherer:       g,
		elections:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_elections_total", Help: "Certificates obtained from the runtime (member-list scheme: election calls that succeeded; signed views: submissions answered)."}),
		views:          prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_views_submitted_total", Help: "Signed views submitted to the runtime."}),
		electionErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_election_errors_total", Help: "Runtime calls that failed (unreachable, timed out, HTTP error, rate limited)."}),
		refusedAnswers: prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_runtime_answers_refused_total", Help: "Runtime answers this node refused (stale seq below its floor, wrong key, bad certificate); each backs off like a failed call."}),
		leaderChanges:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_leader_changes_total", Help: "Accepted certificates that named a new leader (failovers and handovers)."}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_node_failovers_total",
			Help: "Leader changes by why the previous leader lost office: failed (dead or unreachable), left (graceful leave) or outranked (a member the policy prefers joined)."}, []string{"cause"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_node_certificates_rejected_total", Help: "Certificates refused, by reason."}, []string{"reason"}),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_node_messages_dropped_total", Help: "Messages dropped before reaching the election core, by reason."}, []string{"reason"}),
		callSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vouch_node_runtime_call_seconds", Help: "Latency of calls to the runtime (election calls and view submissions).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		runtimeOK:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_runtime_last_success_timestamp_seconds", Help: "Unix time of the last runtime call whose answer this node accepted (0: none yet)."}),
		runtimeFail: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_runtime_last_failure_timestamp_seconds", Help: "Unix time of the last runtime call that failed or whose answer was refused (0: none)."}),
		members:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_members", Help: "Members in this node's election view."}),
		membersByState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vouch_node_members_by_state",
			Help: "Members this node knows of, by state: alive, unreachable (leader watch), suspect (signed views: reported dead, not yet confirmed), ignored (invalid ID), dead, left."}, []string{"state"}),
		floorProofs: prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_floor_proofs_total", Help: "Proofs of rollback (this node's floor certificate) the runtime answered, after it answered below the node's floor."}),
		leaderLost:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_leader_unreachable_total", Help: "Times the leader watch found a leader unreachable and left it out of this node's view."}),
		isLeader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_is_leader", Help: "1 when this node leads."}),
		seq:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_certificate_seq", Help: "Sequence number (signed views: term) of the held certificate."}),
		health:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_memberlist_health_score", Help: "memberlist's Lifeguard awareness score (0 is healthy)."}),
		pending:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_pending_certificates", Help: "Valid certificates waiting for the view to converge."}),
		calmSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_election_calls_skipped_total", Help: "Runtime calls a node did not make because, while it waited its turn, a peer's certificate covered its view."}),
	}
	for _, r := range election.Reasons {
		m.rejected.WithLabelValues(string(r))
	}
	for _, c := range []string{nodecore.CauseFailed, nodecore.CauseLeft, nodecore.CauseOutranked, nodecore.CauseResigned} {
		m.failovers.WithLabelValues(c)
	}
	for _, s := range memberStates {
		m.membersByState.WithLabelValues(s)
	}
	for _, c := range []prometheus.Collector{m.elections, m.views, m.electionErrors, m.refusedAnswers, m.leaderChanges, m.failovers, m.rejected, m.dropped,
		m.callSeconds, m.runtimeOK, m.runtimeFail, m.members, m.membersByState, m.leaderLost, m.floorProofs, m.isLeader, m.seq, m.health, m.pending, m.calmSkipped} {
		if err := reg.Register(c); err != nil {
			if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				return nil, fmt.Errorf("node metrics: %w (two nodes share one Registerer: give each its own, or wrap it with prometheus.WrapRegistererWith and a node label)", err)
			}
			return nil, fmt.Errorf("node metrics: %w", err)
		}
	}
	return m, nil
}

// drop counts a message dropped before the election core, by reason.
func (m *metrics) drop(reason string) {
	m.dropped.WithLabelValues(reason).Inc()
	m.droppedCounts.add(reason)
}

// counts is a small concurrent counter map, for /status.
type counts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counts) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *counts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// count carries out a nodecore Count effect.
func (n *Node) count(metric, label string) {
	m := n.metrics
	switch metric {
	case nodecore.MetricRejected:
		m.rejected.WithLabelValues(label).Inc()
	case nodecore.MetricDropped:
		m.dropped.WithLabelValues(label).Inc()
	case nodecore.MetricDrop:
		m.drop(label)
	case nodecore.MetricLeaderChanges:
		m.leaderChanges.Inc()
	case nodecore.MetricFailovers:
		m.failovers.WithLabelValues(label).Inc()
	case nodecore.MetricCalmSkipped:
		m.calmSkipped.Inc()
	case nodecore.MetricErrors:
		m.electionErrors.Inc()
	case nodecore.MetricElections:
		m.elections.Inc()
	case nodecore.MetricRefused:
		m.refusedAnswers.Inc()
	case nodecore.MetricViews:
		m.views.Inc()
	case nodecore.MetricLeaderLost:
		m.leaderLost.Inc()
	case nodecore.MetricFloorPresented:
		m.floorProofs.Inc()
	}
}

// gauge carries out a nodecore Gauge effect.
func (n *Node) gauge(metric string, v float64) {
	m := n.metrics
	switch metric {
	case nodecore.MetricSeq:
		m.seq.Set(v)
	case nodecore.MetricMembers:
		m.members.Set(v)
	case nodecore.MetricRuntimeOK:
		m.runtimeOK.Set(v)
	case nodecore.MetricRuntimeFail:
		m.runtimeFail.Set(v)
	}
}
