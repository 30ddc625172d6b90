package node

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves GET /status (JSON: members and their states, leader, seq,
// certificate, runtime identity, rejection counts), GET /leader (whether
// this node may act as leader now, with its fencing token), GET /metrics
// (Prometheus), GET /healthz (alive), GET /readyz (readyz.go) and POST /resign (Resign; from loopback only, and refused
// with an Origin header, so that no web page can make a browser send it);
// GET /cluster and the dashboard at GET /
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
	mux.HandleFunc("POST /resign", func(w http.ResponseWriter, r *http.Request) {
		// Loopback only, and never from a browser: a web page can send a
		// POST to 127.0.0.1, but its browser adds an Origin header.
		if !loopbackOnly(r.RemoteAddr) || r.Header.Get("Origin") != "" {
			http.Error(w, "resign is allowed from this host only (vouch node resign), not from a browser", http.StatusForbidden)
			return
		}
		err := n.Resign(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		ans := resignAnswer{Node: n.cfg.Name, Resigned: err == nil}
		switch {
		case errors.Is(err, ErrNotLeader):
			w.WriteHeader(http.StatusConflict)
			ans.Leader, ans.Error = n.Leader().Leader, err.Error()
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			ans.Error = err.Error()
		}
		json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := n.Status()
		if st.State != "running" {
			http.Error(w, st.State, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	metrics := promhttp.HandlerFor(n.metrics.gatherer, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		n.CurrentStatus(r.Context()) // the gauges the snapshot sets, current
		metrics.ServeHTTP(w, r)
	})
	n.dashboardRoutes(mux)
	return mux
}

// resignAnswer is POST /resign's body.
type resignAnswer struct {
	Node     string `json:"node"`
	Resigned bool   `json:"resigned"`
	Leader   string `json:"leader,omitempty"` // 409: who leads, as this node knows
	Error    string `json:"error,omitempty"`
}

// leaderAnswer is GET /leader's body: the leadership and when it was
// checked, on this node's clock.
type leaderAnswer struct {
	Leadership
	Time time.Time `json:"time"`
}
