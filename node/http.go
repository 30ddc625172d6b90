package node

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves GET /status (JSON: members and their states, leader, seq,
// certificate, runtime identity, rejection counts), GET /leader (whether
// this node may act as leader now, with its fencing token) and GET
// /metrics (Prometheus); GET /cluster and the dashboard at GET /
// (dashboard.go).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.CurrentStatus(r.Context()))
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		// Answered from the leadership's context at this moment, not
		// from the loop's snapshot: 200 while this node may act as
		// leader, 503 otherwise (a lease that ran out during a pause
		// answers 503 at once).
		l := n.Leader()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !l.Self {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(leaderAnswer{Leadership: l, Time: time.Now().UTC()})
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
	n.dashboardRoutes(mux)
	return mux
}

// leaderAnswer is GET /leader's body: the leadership and when it was
// checked, on this node's clock.
type leaderAnswer struct {
	Leadership
	Time time.Time `json:"time"`
}
