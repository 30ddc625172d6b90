package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Readiness is GET /readyz's body: whether the node can serve now, and
// each check that decided it.
type Readiness struct {
	Ready  bool         `json:"ready"`
	Checks []ReadyCheck `json:"checks"`
	Time   time.Time    `json:"time"`
}

// ReadyCheck is one readiness check: "runtime", "membership" or, with
// signed views, "certificate".
type ReadyCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Ready reports whether the node is ready, from a current snapshot:
//   - runtime: the runtime is attested and its last call was accepted
//     (state "reachable"), or the last failure is older than a
//     certificate this node has not needed the runtime for since
//     ("unknown");
//   - membership: the node has started, runs its memberlist and has not
//     begun to leave;
//   - certificate (signed views only): the node holds a certificate.
func (n *Node) Ready(ctx context.Context) Readiness {
	st := n.CurrentStatus(ctx)
	rd := Readiness{Ready: true, Time: time.Now().UTC()}
	add := func(name string, ok bool, detail string) {
		rd.Checks = append(rd.Checks, ReadyCheck{Name: name, OK: ok, Detail: detail})
		rd.Ready = rd.Ready && ok
	}
	rs := st.Runtime
	switch rs.State {
	case "reachable", "unknown":
		add("runtime", true, rs.Detail)
	default:
		add("runtime", false, "runtime "+rs.State+": "+rs.Detail)
	}
	switch {
	case !n.started.Load() || n.ml == nil:
		add("membership", false, "the node has not started")
	case n.leaving.Load() || st.State != "running":
		add("membership", false, "the node is leaving the cluster")
	default:
		add("membership", true, "member of cluster "+n.cfg.Cluster+" as "+n.cfg.Name)
	}
	if n.cfg.ClusterConfig != nil {
		if c := st.Certificate; c == nil {
			add("certificate", false, "no certificate held yet (signed views): waiting for the runtime or a peer")
		} else {
			add("certificate", true, "holds term "+strconv.FormatUint(c.Seq, 10)+" (leader "+c.Leader+"), from "+c.From)
		}
	}
	return rd
}

// readyz serves GET /readyz: 200 when Ready, else 503, with Readiness as
// JSON either way.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	rd := n.Ready(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rd)
}
