package enclave

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg         prometheus.Registerer
	gatherer    prometheus.Gatherer
	runs        prometheus.Counter
	deploys     prometheus.Counter
	failures    *prometheus.CounterVec
	refused     *prometheus.CounterVec
	runSeconds  prometheus.Histogram
	wasmSeconds prometheus.Histogram
	rollbacks   *prometheus.CounterVec
}

// newMetrics registers the server's metrics, among them vouch_runtime_info,
// a gauge of 1 whose labels say the attestation platform (SIMULATED shows as
// platform="SIMULATED", simulated="true") and the version.
func newMetrics(reg prometheus.Registerer, platform, version string) *metrics {
	var gatherer prometheus.Gatherer = prometheus.DefaultGatherer
	if reg == nil {
		// A private registry, with the Go runtime's and the process's own
		// metrics (go_goroutines, process_resident_memory_bytes, …), as
		// the default registry would have.
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}
	buckets := prometheus.ExponentialBuckets(50e-6, 2, 16)
	m := &metrics{
		reg:      reg,
		gatherer: gatherer,
		runs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_enclave_runs_total", Help: "Successful function runs."}),
		deploys:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_enclave_deploys_total", Help: "Functions deployed."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_enclave_function_failures_total", Help: "Function runs that failed, by kind."}, []string{"kind"}),
		refused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_enclave_runs_refused_total", Help: "Run requests refused before running, by reason."}, []string{"reason"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vouch_enclave_run_seconds", Help: "Time to serve a successful run request.",
			Buckets: buckets}),
		wasmSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vouch_enclave_wasm_seconds", Help: "Time spent in the function itself.",
			Buckets: buckets}),
	}
	m.rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vouch_rollback_detected_total",
		Help: "Proofs of rollback that moved the runtime past its state: kind seq (a receipt seq at or above the next) or term (a term certificate above the stored term)."}, []string{"kind"})
	m.rollbacks.WithLabelValues("seq")
	m.rollbacks.WithLabelValues("term")
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vouch_runtime_info",
		Help: "Always 1; the labels describe the runtime: its attestation platform (SIMULATED for development, aws-nitro), whether that is simulated, and its version."},
		[]string{"platform", "simulated", "version"})
	simulated := "false"
	if platform == "SIMULATED" {
		simulated = "true"
	}
	info.WithLabelValues(platform, simulated, version).Set(1)
	for _, c := range []prometheus.Collector{m.runs, m.deploys, m.failures, m.refused, m.runSeconds, m.wasmSeconds, m.rollbacks, info} {
		reg.Register(c)
	}
	return m
}

// register adds a collector to the server's registry.
func (m *metrics) register(c prometheus.Collector) { m.reg.Register(c) }
