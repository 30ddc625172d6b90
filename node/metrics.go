package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"vouch/election"
)

type metrics struct {
	gatherer       prometheus.Gatherer
	elections      prometheus.Counter
	views          prometheus.Counter
	electionErrors prometheus.Counter
	leaderChanges  prometheus.Counter
	rejected       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	callSeconds    prometheus.Histogram
	members        prometheus.Gauge
	isLeader       prometheus.Gauge
	seq            prometheus.Gauge
	health         prometheus.Gauge
	pending        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
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
		elections:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_elections_total", Help: "Certificates obtained from the runtime."}),
		views:          prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_views_submitted_total", Help: "Signed views submitted to the runtime."}),
		electionErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_election_errors_total", Help: "Runtime calls that failed."}),
		leaderChanges:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_node_leader_changes_total", Help: "Accepted certificates that named a new leader (failovers and handovers)."}),
		rejected:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_node_certificates_rejected_total", Help: "Certificates refused, by reason."}, []string{"reason"}),
		dropped:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_node_messages_dropped_total", Help: "Messages dropped before reaching the election core, by reason."}, []string{"reason"}),
		callSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vouch_node_runtime_call_seconds", Help: "Latency of election calls to the runtime.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		members:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_members", Help: "Members in this node's view."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_is_leader", Help: "1 when this node leads."}),
		seq:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_certificate_seq", Help: "Sequence number of the held certificate."}),
		health:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_memberlist_health_score", Help: "memberlist's Lifeguard awareness score (0 is healthy)."}),
		pending:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_pending_certificates", Help: "Valid certificates waiting for the view to converge."}),
	}
	for _, r := range election.Reasons {
		m.rejected.WithLabelValues(string(r))
	}
	for _, c := range []prometheus.Collector{m.elections, m.views, m.electionErrors, m.leaderChanges, m.rejected, m.dropped, m.callSeconds, m.members, m.isLeader, m.seq, m.health, m.pending} {
		reg.Register(c)
	}
	return m
}
