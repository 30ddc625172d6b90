package nodecore

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/outcome"
)

// submission is the election function's input.
type submission struct {
	Config *cluster.Signed     `json:"config,omitempty"`
	View   *cluster.SignedView `json:"view"`
}

// maybeSubmit signs and submits the node's view when it changed or the
// interval passed, one submission at a time.
func (m *Machine) maybeSubmit(now time.Time) {
	// Runs after every input: a lease that ran out since the last tick
	// ends here, not at the next tick.
	m.checkLease(now)
	if m.calling || m.leaving || now.Before(m.nextCall) {
		return
	}
	leader, _ := m.term.Leader()
	alive := m.core.View()
	if now.Before(m.nextView) && !(m.viewDirty && m.urgentView(leader, alive)) {
		return
	}
	if leader == m.cfg.Self && !m.mayLead(now) {
		return // a renewal would only make its successor wait longer
	}
	if len(alive) == 0 {
		return
	}
	m.viewSeq = max(m.viewSeq+1, uint64(now.UnixMicro()))
	sv, err := cluster.SignView(cluster.View{Cluster: m.cfg.Cluster, Node: m.cfg.Self, Seq: m.viewSeq, TimeMillis: now.UnixMilli(), Alive: alive}, m.cfg.Identity)
	if err != nil {
		m.logf(slog.LevelError, "cannot sign view", "err", err)
		return
	}
	sub := submission{View: sv}
	// Send the configuration until the runtime's certificates name it.
	if m.configAck != m.cfg.ClusterConfig.Config.Digest() {
		sub.Config = m.cfg.ClusterConfig
	}
	body, err := json.Marshal(sub)
	if err != nil {
		m.logf(slog.LevelError, "cannot encode view", "err", err)
		return
	}
	m.calling, m.viewDirty, m.sentAlive = true, false, alive
	m.nextView = now.Add(m.viewInterval(now))
	m.count(MetricViews, "")
	m.emit(Effect{Kind: Submit, Body: body, View: alive, SentAt: now})
}

// urgentView reports whether a changed view goes out before the next
// periodic submission: before the first term, when this node leads, and
// when the change adds or drops the held term's leader (the runtime
// decides its lease and the next term on it). Other changes wait for the
// next periodic view, which follows soon enough, so that a burst of
// membership changes does not send every member's view at once.
func (m *Machine) urgentView(leader string, alive []string) bool {
	return leader == "" || leader == m.cfg.Self || slices.Contains(alive, leader) != slices.Contains(m.sentAlive, leader)
}

// pace schedules a member's next periodic view from the answer to its
// last one, not from when it was sent, and waits at least as long as
// that answer took. The runtime runs the election function one call at
// a time, so every view waiting there delays the leader's renewal, whose
// lease counts from when it was sent: with each member resubmitting as
// soon as a slow answer came back, a saturated runtime kept a view of
// every member queued, and a renewal took longer than the lease, so the
// leader never acted (docs/ELECTION.md, "Pacing"). Waiting as long as the
// answer took halves that queue, and while the runtime is saturated
// costs no freshness: each member's view is then counted as often as the
// runtime can take it either way. The leader keeps its own pace.
func (m *Machine) pace(sentAt, now time.Time) {
	if leader, _ := m.term.Leader(); leader == m.cfg.Self || sentAt.IsZero() {
		return
	}
	if next := now.Add(max(m.viewInterval(now), now.Sub(sentAt))); next.After(m.nextView) {
		m.nextView = next
	}
}

// viewInterval is how long until the next submission. The leader renews
// every min(ViewInterval, lease/4), so that a successor waits about the
// lease, not the lease plus a ViewInterval, after its death. A node whose
// leader the watch found unreachable submits every min(ViewInterval,
// lease/8) for up to two leases: the runtime starts the next term at the
// first submission after the old lease ran out on its side.
func (m *Machine) viewInterval(now time.Time) time.Duration {
	d := m.cfg.ViewInterval
	_, o := m.term.Held()
	if o == nil || o.Lease() <= 0 {
		return d
	}
	switch {
	case o.Leader == m.cfg.Self:
		d = min(d, o.Lease()/4)
	case m.leaderLostRecently(now, o.Lease()):
		d = min(d, o.Lease()/8)
	}
	return max(d, 10*time.Millisecond)
}

// submitted handles the runtime's answer to a view.
func (m *Machine) submitted(in Input, now time.Time) {
	defer m.pace(in.SentAt, now)
	if in.Err != nil && IsLeaseRefusal(in.Err) {
		// The runtime answered, but will not renew our lease: a majority
		// does not see us. Not a runtime failure.
		m.calling = false
		m.answered(now)
		m.logf(slog.LevelWarn, "lease not renewed", "detail", in.Err.Error())
		return
	}
	if !m.callDone(in, now) {
		return
	}
	a := m.term.Receive(in.Cert)
	var got election.TermOutcome
	json.Unmarshal(in.Cert.Output, &got)
	if a.Rejected != nil && a.Rejected.Reason == election.ReasonNoLeader {
		m.logf(slog.LevelDebug, "no leader yet: waiting for a majority of views")
		m.configAck = got.ConfigDigest
		m.answered(now)
		return
	}
	m.handleTerm(a, "runtime", now)
	if why := m.refusal(a.Rejected, got.Term, "term"); why != nil {
		m.refused(now, why)
		return
	}
	m.answered(now)
	if _, o := m.term.Held(); o != nil {
		m.configAck = o.ConfigDigest
		// Our own submission came back naming us: the lease runs from
		// when we sent it, which is before the runtime confirmed it.
		if o.Leader == m.cfg.Self && (a.Accepted != nil || a.Renewed != nil || a.Rejected == nil) {
			m.leaseUntil = in.SentAt.Add(o.Lease() - m.cfg.LeaseMargin)
		}
	}
	m.checkLease(now)
}

// handleTerm carries out the term core's actions.
func (m *Machine) handleTerm(a election.TermActions, source string, now time.Time) {
	if a.Rejected != nil {
		if a.Rejected.Reason != election.ReasonNoLeader {
			m.count(MetricRejected, string(a.Rejected.Reason))
			level := slog.LevelWarn
			if a.Rejected.Reason == election.ReasonStale {
				level = slog.LevelDebug
			}
			m.logf(level, "certificate rejected", "reason", a.Rejected.Reason, "from", source, "detail", a.Rejected.Detail)
			m.noteRejected(a.Rejected.Reason)
		}
		return
	}
	if a.Accepted == nil {
		return
	}
	o := a.Outcome
	m.gauge(MetricSeq, float64(o.Term))
	m.certFrom, m.certAt = source, now
	m.emit(Effect{Kind: Accepted, Cert: a.Accepted, TermOut: o, Source: source})
	m.emit(Effect{Kind: Persist, Seq: o.Term, Cert: a.Accepted})
	cause := ""
	if a.LeaderChanged != nil {
		cause = m.leaderChanged(a.LeaderChanged.Previous)
	}
	m.relay(Effect{Kind: Relay, Cert: a.Accepted, Seq: o.Term, Source: source, Direct: source == "runtime" && (cause == CauseFailed || cause == CauseResigned)})
	m.logf(slog.LevelInfo, "leader is "+o.Leader+" (term "+strconv.FormatUint(o.Term, 10)+")", "leader", o.Leader, "term", o.Term, "policy", o.Policy, "mode", o.Mode, "cause", cause, "from", source)
	if m.leading && o.Leader == m.cfg.Self && m.token != o.Term {
		// A new term that keeps this node as leader (a configuration
		// change, or a runtime that restarted): restart the leadership
		// under the new term, so the token a leader hands to storage is
		// always current. It acts again once its next submission renews
		// its lease under the new term.
		m.logf(slog.LevelInfo, "new term with the same leader: restarting the leadership under it", "term", o.Term, "previous_token", m.token)
		m.leading, m.leaseUntil = false, time.Time{}
		m.stopLeading()
		m.viewDirty = true // renew now
	}
	if a.LeaderChanged != nil && o.Leader == m.cfg.Self && source != "runtime" {
		// Named by a term this node learned from a peer: it acts once its
		// own submission renews the lease, so submit now rather than at
		// the next periodic view.
		m.viewDirty = true
	}
	if o.Leader != "" {
		m.endHolds(o.Leader, now)
	}
	if a.LeaderChanged != nil {
		m.notify()
	}
}

// checkLease starts leading when this node holds a certificate naming it
// and a lease the runtime renewed, renews the leadership's lease end, and
// stops when the lease lapses or another leader takes over.
func (m *Machine) checkLease(now time.Time) {
	leader, term := m.term.Leader()
	should := leader == m.cfg.Self && now.Before(m.leaseUntil) && !m.unanchored && m.mayLead(now)
	if should && m.leading {
		if m.led && !now.Before(m.ledUntil) {
			// The lease ran out before this renewal was handled (the
			// process paused, or the loop ran late): that leadership's
			// context has ended for good, so a new one starts.
			m.logf(slog.LevelWarn, "lease ran out before its renewal was handled; starting a new leadership", "term", term)
			m.leading = false
			m.stopLeading()
		} else if m.led && !m.ledUntil.Equal(m.leaseUntil) {
			m.ledUntil = m.leaseUntil
			m.emit(Effect{Kind: Renew, Token: m.token, Until: m.leaseUntil})
		}
	}
	switch {
	case should && !m.leading:
		m.leading = true
		m.startLeading(term)
		m.notify()
	case !should && m.leading:
		m.leading = false
		if leader == m.cfg.Self {
			m.logf(slog.LevelWarn, "lease expired: the runtime did not renew it; stopping", "term", term)
		}
		m.stopLeading()
		m.notify()
	}
}

// startLeading starts a leadership whose fencing token is token. A running
// one is stopped first, so that each has its own context and token. With
// signed views the lease end is the context's deadline.
func (m *Machine) startLeading(token uint64) {
	if m.led {
		m.stopLeading()
	}
	var until time.Time
	if m.term != nil {
		until = m.leaseUntil
	}
	m.led, m.ledUntil, m.token = true, until, token
	m.emit(Effect{Kind: StartLeading, Token: token, Until: until})
}

func (m *Machine) stopLeading() {
	if !m.led {
		return
	}
	m.led, m.ledUntil, m.token = false, time.Time{}, 0
	m.emit(Effect{Kind: StopLeading})
}

// IsLeaseRefusal reports whether err is the election function's refusal
// to renew the caller's lease (code lease_not_renewed): a failed run whose
// refusal code, which the runtime passes even for a sealed input, is that
// code, or, from a runtime that does not list it, whose message (passed
// for plaintext inputs only) is that refusal.
func IsLeaseRefusal(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeFunctionFailed {
		return false
	}
	if ae.Refusal != "" {
		return ae.Refusal == string(outcome.LeaseNotRenewed)
	}
	r, perr := outcome.ParseRefusal(ae.Message)
	return perr == nil && r.Code == outcome.LeaseNotRenewed
}
