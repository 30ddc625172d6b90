package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"sort"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// Leadership is what a node knows about the current leader.
type Leadership struct {
	// Leader is the leader's member ID; "" when no certificate is held.
	Leader string `json:"leader"`
	// Seq is the held certificate's receipt seq, or its term with signed
	// views. With the member list it grows every time the leader's
	// leadership is certified again (every RefreshInterval and on every
	// membership change), so it is NOT a fencing token: an old leader cut
	// off from the others keeps certifying itself and its Seq keeps
	// growing. Use Token.
	Seq uint64 `json:"seq"`
	// Self reports whether this node is the leader (with signed views:
	// and holds a valid lease).
	Self bool `json:"self"`
	// Token is the fencing token of this node's current leadership, the
	// value OnStartedLeading received: the seq (signed views: the term)
	// of the certificate that made it leader. It changes only when a new
	// leadership starts. 0 when this node does not lead.
	Token uint64 `json:"token"`
	// LeaseUntil is the lease end of this node's current or latest
	// leadership (signed views): the deadline of the context
	// OnStartedLeading received. While Self, the leadership ends then
	// unless the runtime renews it; once it has passed, Self is false.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// Status is a snapshot of a node, served at GET /status. Every field is
// documented in docs/API.md, "Node status and metrics".
type Status struct {
	Name     string `json:"name"`
	Cluster  string `json:"cluster"`
	State    string `json:"state"`
	Addr     string `json:"addr"`
	Leader   string `json:"leader"`
	Seq      uint64 `json:"seq"`
	IsLeader bool   `json:"is_leader"`
	// FencingToken is Leadership.Token: 0 unless this node leads.
	FencingToken uint64         `json:"fencing_token"`
	View         []string       `json:"view"`
	Members      []MemberStatus `json:"members"`
	// Departed maps members that left this node's view to how: "left",
	// "dead" or "unreachable" (the leader watch).
	Departed    map[string]string  `json:"departed,omitempty"`
	Certificate *CertificateStatus `json:"certificate,omitempty"`
	Runtime     RuntimeStatus      `json:"runtime"`
	// Rejections counts refused certificates by reason, malformed ones
	// (refused by the decoder before the core) included.
	Rejections map[election.Reason]uint64 `json:"rejections"`
	// Dropped counts messages dropped before the election core, by reason.
	Dropped  map[string]uint64 `json:"dropped"`
	Pending  int               `json:"pending_certificates"`
	Accepted uint64            `json:"certificates_accepted"`
	Health   int               `json:"health_score"`
	// LeaderWatch lists the members the leader watch pings.
	LeaderWatch []WatchStatus `json:"leader_watch,omitempty"`
	Time        time.Time     `json:"time"`
	// Mode is "member list (seq)" or "signed views (terms)"; in the
	// latter Seq is the term and LeaseUntil when this node's leadership
	// lapses unless the runtime renews it.
	Mode       string `json:"mode"`
	LeaseUntil string `json:"lease_until,omitempty"`
	// Observer reports that this node is an observer (Config.Observer);
	// Observers lists the observers gossiping with it, which are in no
	// election view.
	Observer  bool     `json:"observer,omitempty"`
	Observers []string `json:"observers,omitempty"`

	cert *election.Certificate
	key  ed25519.PublicKey // the attested receipt key, for GET /cluster
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"`
	// State is "alive"; "unreachable" when memberlist lists it but the
	// leader watch gets no answer from it; "suspect" (signed views) when
	// memberlist reported it dead and this node's own ping has not yet
	// confirmed it; "ignored" when its name is not a valid member ID;
	// "dead" or "left" after it departed. memberlist's own suspicion is
	// not visible through its API, so members it merely suspects show as
	// alive.
	State string `json:"state"`
	// Since is when it entered that state, for departed and unreachable
	// members.
	Since *time.Time `json:"since,omitempty"`
	// InView reports whether it is in this node's election view.
	InView bool `json:"in_view"`
	// Meta is the metadata it gossips (vouch node --meta k=v).
	Meta map[string]string `json:"meta,omitempty"`
}

// CertificateStatus shows the held certificate.
type CertificateStatus struct {
	// From is where this node got it: "runtime" (its own call) or "peer
	// gossip" / "peer push-pull"; At is when it accepted it.
	From          string          `json:"from"`
	At            time.Time       `json:"accepted_at"`
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
	// State is "reachable" (the last call's answer was accepted),
	// "unreachable" (the last call failed and the node is retrying),
	// "refused" (the runtime answered, but this node refused the answer
	// and is retrying; Detail says why and what to do), "unknown" (the
	// last call failed, but the node has not needed the runtime since:
	// its certificate came from a peer) or "not attested".
	State string `json:"state"`
	// Detail says the same in a sentence, with times.
	Detail      string     `json:"detail"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastFailure *time.Time `json:"last_failure,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	RetryAt     string     `json:"retry_at,omitempty"`
}

// publishEvery bounds how stale /status may be when nothing that matters
// changed: the loop handles an input for every leader-watch ping and
// memberlist event (tens a second), and a full snapshot lists every
// member, so building one after each would cost O(N) per input, O(N²) a
// second across a cluster of N nodes in one process.
const publishEvery = 100 * time.Millisecond

// publishKey is what, when it changes, is published at once: the
// leadership (for Leader and the subscribers), the held certificate, the
// watch's verdicts and the node's state. A change of the view alone waits
// for publishEvery: while a large cluster forms it changes with every
// join.
type publishKey struct {
	leader        string
	seq, token    uint64
	leading       bool
	held          *election.Certificate
	view, verdict uint64 // changes of the view, leader-watch verdicts
	stopping      bool
}

func (n *Node) publishKey() publishKey {
	k := publishKey{token: n.token, leading: n.leading, view: n.viewChanges, verdict: n.verdicts}
	k.held, k.leader, k.seq = n.held()
	select {
	case <-n.stop:
		k.stopping = true
	default:
	}
	return k
}

// held returns the held certificate, its leader and its seq (signed
// views: its term), in whichever scheme the node runs.
func (n *Node) held() (*election.Certificate, string, uint64) {
	if n.term != nil {
		cert, _ := n.term.Held()
		leader, term := n.term.Leader()
		return cert, leader, term
	}
	cert, _ := n.core.Held()
	leader, seq := n.core.Leader()
	return cert, leader, seq
}

// publishDue refreshes the snapshot when its key changed or it is
// publishEvery old. Called by the loop after every input.
func (n *Node) publishDue(now time.Time) {
	if !n.publishKey().due(n.pubKey, now.Sub(n.pubAt)) {
		return
	}
	n.publishMembers(false)
}

// due reports whether a snapshot whose key is k is published now, the
// last one having key last and being age old.
func (k publishKey) due(last publishKey, age time.Duration) bool {
	k.view = last.view // a change of the view alone waits for publishEvery
	return k != last || age >= publishEvery
}

// memberStatusEvery bounds how stale the member list in a snapshot that
// publishDue refreshes may be when the membership, the view and the
// leader watch's verdicts did not change: rebuilding it cost O(N) ten
// times a second per node, O(N²) across N nodes in one process at rest.
const memberStatusEvery = time.Second

// memberStatusMin is how often at most publishDue rebuilds the member
// list when the membership or the view change: while a cluster of N forms
// they change N times per node, and each rebuild is O(N). A reader that
// asks for a current snapshot (Sync, GET /status) gets a fresh one.
const memberStatusMin = 500 * time.Millisecond

// memberStatusDue reports whether the member list, last built with key
// last and age old, is rebuilt for key k: fresh; a leader-watch verdict
// (rare, and what an operator looks for) at once; a change of the
// membership or the view memberStatusMin after the last rebuild; and
// anything once memberStatusEvery old.
func memberStatusDue(fresh bool, k, last memberStatusKey, age time.Duration) bool {
	return fresh || k.verdict != last.verdict || k != last && age >= memberStatusMin || age >= memberStatusEvery
}

// memberStatusKey is what, when it changes, rebuilds the member list.
type memberStatusKey struct{ members, view, verdict uint64 }

// publish refreshes the snapshot that Status and Leader return.
func (n *Node) publish() { n.publishMembers(true) }

// publishMembers is publish; with fresh, the member list is rebuilt even
// if nothing it depends on changed (a reader waits for a current one).
func (n *Node) publishMembers(fresh bool) {
	k := n.publishKey()
	n.pubKey, n.pubAt = k, time.Now()
	st := &Status{Name: n.cfg.Name, Cluster: n.cfg.Cluster, State: "running", Addr: n.Addr(), Time: n.pubAt.UTC()}
	if k.stopping {
		st.State = "stopped"
	}
	leader, seq := k.leader, k.seq
	if n.term != nil {
		st.Mode = "signed views (terms)"
		if until := n.sm.LeaseUntil(); !until.IsZero() {
			st.LeaseUntil = until.UTC().Format(time.RFC3339Nano)
		}
	} else {
		st.Mode = "member list (seq)"
	}
	st.Leader, st.Seq, st.IsLeader = leader, seq, leader != "" && leader == n.cfg.Name
	if n.term != nil {
		st.IsLeader = n.leading
	}
	st.FencingToken = n.token
	st.View = n.core.View()
	if deps := n.sm.Departures(); len(deps) > 0 {
		st.Departed = make(map[string]string, len(deps))
		for k, v := range deps {
			st.Departed[k] = v.How
		}
	}
	st.Rejections = n.core.Rejections()
	st.Pending = n.core.PendingCount()
	st.Accepted = n.core.Accepted()
	if n.term != nil {
		st.Rejections = n.term.Rejections()
		st.Accepted = n.term.Accepted()
	}
	if k := n.metrics.malformedCerts.Load(); k > 0 {
		st.Rejections[election.ReasonMalformed] += k
	}
	st.Dropped = n.metrics.droppedCounts.snapshot()
	st.Runtime = n.runtimeStatus(time.Now())
	st.key = n.sm.TrustKey()
	var held *election.Certificate
	if n.term != nil {
		if cert, o := n.term.Held(); cert != nil {
			held = cert
			st.Certificate = &CertificateStatus{Seq: o.Term, Leader: o.Leader, MembersDigest: o.MembersDigest,
				Output: json.RawMessage(cert.Output), Receipt: cert.Receipt, Wire: cert.Encode()}
		}
	} else if cert, o := n.core.Held(); cert != nil {
		held = cert
		st.Certificate = &CertificateStatus{Seq: cert.Seq(), Leader: o.Leader, Members: o.Members, MembersDigest: o.MembersDigest,
			Output: json.RawMessage(cert.Output), Receipt: cert.Receipt, Wire: cert.Encode()}
	}
	if st.Certificate != nil {
		st.cert = held
		from, at := n.sm.CertSource()
		st.Certificate.From, st.Certificate.At = from, at.UTC()
	}
	if n.ml != nil {
		st.Health = n.ml.GetHealthScore()
		n.metrics.health.Set(float64(st.Health))
	}
	mk := memberStatusKey{members: n.members.version(), view: n.viewChanges, verdict: n.verdicts}
	rebuilt := false
	if memberStatusDue(fresh, mk, n.memStatKey, n.pubAt.Sub(n.memStatAt)) {
		n.memStat, n.memStatKey, n.memStatAt = n.memberStatus(st.View), mk, n.pubAt
		rebuilt = true
	}
	st.Members = n.memStat
	st.Observer = n.cfg.Observer
	for _, p := range n.members.observerList() {
		if p.name != n.cfg.Name {
			st.Observers = append(st.Observers, p.name)
		}
	}
	st.LeaderWatch = n.watchStatus()
	if rebuilt {
		byState := map[string]int{}
		for _, m := range st.Members {
			byState[m.State]++
		}
		for _, s := range memberStates {
			n.metrics.membersByState.WithLabelValues(s).Set(float64(byState[s]))
		}
	}
	n.metrics.pending.Set(float64(st.Pending))
	n.status.Store(st)
}

// memberStatus lists the members this node knows of: memberlist's current
// members, the suspects it is still confirming and the departed ones.
func (n *Node) memberStatus(view []string) []MemberStatus {
	inView := make(map[string]bool, len(view))
	for _, id := range view {
		inView[id] = true
	}
	var out []MemberStatus
	listed := map[string]bool{}
	for _, m := range n.members.list() {
		listed[m.name] = true
		ms := MemberStatus{Name: m.name, Addr: m.address(), State: "alive", InView: inView[m.name], Meta: m.meta}
		switch out, since := n.sm.Unreachable(m.name); {
		case n.sm.Ignored(m.name):
			ms.State = "ignored"
		case out:
			ms.State, ms.Since = "unreachable", timePtr(since)
		}
		out = append(out, ms)
	}
	for _, name := range n.sm.Suspects() {
		if !listed[name] {
			listed[name] = true
			out = append(out, MemberStatus{Name: name, State: "suspect", InView: inView[name]})
		}
	}
	for name, d := range n.sm.Departures() {
		if !listed[name] {
			out = append(out, MemberStatus{Name: name, State: d.How, Since: timePtr(d.At)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// runtimeStatus says what the node knows of the runtime. A node stops
// calling once it holds a certificate that covers its view, so an old
// failure says nothing about the runtime now: then the state is "unknown",
// not "unreachable".
func (n *Node) runtimeStatus(now time.Time) RuntimeStatus {
	info := n.cfg.Runtime.Describe()
	rs := RuntimeStatus{RuntimeInfo: info, Attestation: info.Platform}
	if info.Simulated {
		rs.Attestation = "SIMULATED (development only)"
	}
	t, attested, nextCall := n.sm.Runtime()
	if !t.LastOK.IsZero() {
		rs.LastSuccess = timePtr(t.LastOK)
	}
	if !t.LastFail.IsZero() {
		rs.LastFailure = timePtr(t.LastFail)
		rs.LastError = t.Err.Error()
	}
	ago := func(at time.Time) string {
		return at.UTC().Format(time.RFC3339) + ", " + now.Sub(at).Round(time.Second).String() + " ago"
	}
	failedLast := !t.LastFail.IsZero() && !t.LastFail.Before(t.LastOK)
	retrying := n.sm.NeedsRuntime()
	if failedLast && retrying && !nextCall.IsZero() {
		rs.RetryAt = nextCall.UTC().Format(time.RFC3339Nano)
	}
	from, at := n.sm.CertSource()
	switch {
	case !attested:
		rs.State = "not attested"
		rs.Detail = "the runtime has not been attested yet; retrying"
		if failedLast {
			rs.Detail = "attestation failed at " + ago(t.LastFail) + ": " + rs.LastError + "; retrying"
		}
	case failedLast && t.Refused && retrying:
		rs.State = "refused"
		rs.Detail = "the runtime answers, but this node refused its last answer (" + ago(t.LastFail) + "): " + rs.LastError
	case failedLast && retrying:
		rs.State = "unreachable"
		rs.Detail = "the last call failed at " + ago(t.LastFail) + "; retrying with backoff and keeping the last valid leader"
	case failedLast:
		rs.State = "unknown"
		rs.Detail = "the last call failed at " + ago(t.LastFail) + "; this node has not needed the runtime since"
		if from != "" && at.After(t.LastFail) {
			rs.Detail += ": its current certificate came from " + from + " at " + ago(at)
		}
	default:
		rs.State = "reachable"
		rs.Detail = "the last call succeeded at " + ago(t.LastOK)
	}
	return rs
}

// Status returns the latest snapshot without waiting: current in its
// leadership, certificate and view, and at most publishEvery (100 ms) old
// in the rest (counters, runtime state). CurrentStatus waits for one that
// includes everything the node has handled.
func (n *Node) Status() *Status { return n.status.Load() }

// CurrentStatus asks the node's loop for a fresh snapshot, one that
// includes every input handled before the call, and returns it; when the
// loop does not answer within ctx or a second (or has stopped), it
// returns the latest snapshot. /status and /metrics use it.
func (n *Node) CurrentStatus(ctx context.Context) *Status {
	if n.started.Load() {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = n.sync(ctx) // the loop publishes before it replies
		cancel()
	}
	return n.Status()
}

// Leader returns the current leadership as this node has verified it.
// Self and Token come from the leadership's context at the time of the
// call: once the lease end has passed, Self is false even if the node's
// loop has not run since (a process that resumes from a pause).
func (n *Node) Leader() Leadership {
	st := n.status.Load()
	l := Leadership{Leader: st.Leader, Seq: st.Seq, Self: st.IsLeader, Token: st.FencingToken}
	ctx := n.leadPub.Load()
	if ctx != nil {
		l.LeaseUntil, _ = ctx.Deadline()
	}
	if l.Self && (ctx == nil || ctx.token != l.Token || ctx.Err() != nil) {
		l.Self, l.Token = false, 0
	}
	return l
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

// notify marks the leadership for the subscribers. The loop calls it
// while it handles an input; deliver sends the leadership once the input
// is handled and the snapshot published, so subscribers get the state the
// whole input left, not a half-updated one.
func (n *Node) notify() { n.notifyDue = true }

// deliver sends the current leadership to subscribers if notify was called
// since the last delivery. Called by the loop after publishDue.
func (n *Node) deliver() {
	if !n.notifyDue {
		return
	}
	n.notifyDue = false
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
