package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves GET /status (JSON: members and their states, leader, seq,
// certificate, runtime identity, rejection counts) and GET /metrics
// (Prometheus).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.CurrentStatus(r.Context()))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := n.Status()
		if st.State != "running" {
			http.Error(w, st.State, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	metrics := promhttp.HandlerFor(n.metrics.gatherer, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		n.CurrentStatus(r.Context()) // the gauges the snapshot sets, current
		metrics.ServeHTTP(w, r)
	})
	return mux
}
