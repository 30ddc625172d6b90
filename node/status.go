package node

import (
	"encoding/json"
	"time"

	"vouch/election"
)

// Leadership is what a node knows about the current leader.
type Leadership struct {
	// Leader is the leader's member ID; "" when no certificate is held.
	Leader string `json:"leader"`
	// Seq is the fencing token: the certificate's receipt seq, or its
	// term with signed views.
	Seq uint64 `json:"seq"`
	// Self reports whether this node is the leader.
	Self bool `json:"self"`
}

// Status is a snapshot of a node, served at GET /status.
type Status struct {
	Name        string                     `json:"name"`
	Cluster     string                     `json:"cluster"`
	State       string                     `json:"state"`
	Addr        string                     `json:"addr"`
	Leader      string                     `json:"leader"`
	Seq         uint64                     `json:"seq"`
	IsLeader    bool                       `json:"is_leader"`
	View        []string                   `json:"view"`
	Members     []MemberStatus             `json:"members"`
	Departed    map[string]string          `json:"departed,omitempty"`
	Certificate *CertificateStatus         `json:"certificate,omitempty"`
	Runtime     RuntimeStatus              `json:"runtime"`
	Rejections  map[election.Reason]uint64 `json:"rejections"`
	Pending     int                        `json:"pending_certificates"`
	Accepted    uint64                     `json:"certificates_accepted"`
	Health      int                        `json:"health_score"`
	Time        time.Time                  `json:"time"`
	// Mode is "member list (seq)" or "signed views (terms)"; in the
	// latter Seq is the term and LeaseUntil when this node's leadership
	// lapses unless the runtime renews it.
	Mode       string `json:"mode"`
	LeaseUntil string `json:"lease_until,omitempty"`

	cert *election.Certificate
}

// MemberStatus is one member as memberlist sees it.
type MemberStatus struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`
	State string `json:"state"`
}

// CertificateStatus shows the held certificate.
type CertificateStatus struct {
	Seq           uint64          `json:"seq"`
	Leader        string          `json:"leader"`
	Members       []string        `json:"members"`
	MembersDigest string          `json:"members_digest"`
	Output        json.RawMessage `json:"output"`
	Receipt       any             `json:"receipt"`
	// Wire is the certificate's wire form (docs/FORMATS.md), to check it
	// offline.
	Wire []byte `json:"wire"`
}

// RuntimeStatus shows the runtime's state as this node sees it.
type RuntimeStatus struct {
	RuntimeInfo
	Attestation string `json:"attestation"`
	State       string `json:"state"` // "ok", "unreachable" or "not attested"
	LastError   string `json:"last_error,omitempty"`
	RetryAt     string `json:"retry_at,omitempty"`
}

// publish refreshes the snapshot readers see. Called by the loop.
func (n *Node) publish() {
	st := &Status{Name: n.cfg.Name, Cluster: n.cfg.Cluster, State: "running", Addr: n.Addr(), Time: time.Now().UTC()}
	select {
	case <-n.stop:
		st.State = "stopped"
	default:
	}
	leader, seq := n.core.Leader()
	if n.term != nil {
		leader, seq = n.term.Leader()
		st.Mode = "signed views (terms)"
		if !n.leaseUntil.IsZero() {
			st.LeaseUntil = n.leaseUntil.UTC().Format(time.RFC3339Nano)
		}
	} else {
		st.Mode = "member list (seq)"
	}
	st.Leader, st.Seq, st.IsLeader = leader, seq, leader != "" && leader == n.cfg.Name
	if n.term != nil {
		st.IsLeader = n.leading
	}
	st.View = n.core.View()
	if len(n.departures) > 0 {
		st.Departed = make(map[string]string, len(n.departures))
		for k, v := range n.departures {
			st.Departed[k] = v
		}
	}
	st.Rejections = n.core.Rejections()
	st.Pending = n.core.PendingCount()
	st.Accepted = n.core.Accepted()
	if n.term != nil {
		st.Rejections = n.term.Rejections()
		st.Accepted = n.term.Accepted()
	}
	info := n.cfg.Runtime.Describe()
	st.Runtime = RuntimeStatus{RuntimeInfo: info, State: "ok", Attestation: info.Platform}
	if info.Simulated {
		st.Runtime.Attestation = "SIMULATED (development only)"
	}
	if n.trustKey == nil {
		st.Runtime.State = "not attested"
	}
	if n.runtimeErr != nil {
		st.Runtime.State = "unreachable"
		st.Runtime.LastError = n.runtimeErr.Error()
		if !n.nextCall.IsZero() {
			st.Runtime.RetryAt = n.nextCall.UTC().Format(time.RFC3339Nano)
		}
	}
	if n.term != nil {
		if cert, o := n.term.Held(); cert != nil {
			st.cert = cert
			st.Certificate = &CertificateStatus{Seq: o.Term, Leader: o.Leader, MembersDigest: o.MembersDigest,
				Output: json.RawMessage(cert.Output), Receipt: cert.Receipt, Wire: cert.Encode()}
		}
	} else if cert, o := n.core.Held(); cert != nil {
		st.cert = cert
		st.Certificate = &CertificateStatus{Seq: cert.Seq(), Leader: o.Leader, Members: o.Members, MembersDigest: o.MembersDigest,
			Output: json.RawMessage(cert.Output), Receipt: cert.Receipt, Wire: cert.Encode()}
	}
	if n.ml != nil {
		st.Health = n.ml.GetHealthScore()
		n.metrics.health.Set(float64(st.Health))
		for _, m := range n.members.list() {
			st.Members = append(st.Members, MemberStatus{Name: m.name, Addr: m.address(), State: "alive"})
		}
	}
	n.metrics.pending.Set(float64(st.Pending))
	n.status.Store(st)
}

// Status returns the latest snapshot.
func (n *Node) Status() *Status { return n.status.Load() }

// Leader returns the current leadership as this node has verified it.
func (n *Node) Leader() Leadership {
	st := n.status.Load()
	return Leadership{Leader: st.Leader, Seq: st.Seq, Self: st.IsLeader}
}

// Subscribe returns a channel that receives the leadership every time the
// leader changes, and a function that cancels the subscription. A slow
// reader misses intermediate changes, never the latest one. The channel is
// closed when the node stops.
func (n *Node) Subscribe() (<-chan Leadership, func()) {
	ch := make(chan Leadership, 1)
	n.subMu.Lock()
	if n.subs == nil {
		close(ch)
	} else {
		n.subs[ch] = struct{}{}
	}
	n.subMu.Unlock()
	return ch, func() {
		n.subMu.Lock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
		n.subMu.Unlock()
	}
}

// notify sends the current leadership to subscribers. Called by the loop
// after the snapshot is refreshed.
func (n *Node) notify() {
	n.publish()
	l := n.Leader()
	n.subMu.Lock()
	defer n.subMu.Unlock()
	for ch := range n.subs {
		select {
		case <-ch: // drop the stale value
		default:
		}
		select {
		case ch <- l:
		default:
		}
	}
}
