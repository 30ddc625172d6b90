package nodecore

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/members"
)

// refreshView sets the election view: memberlist's members less those the
// leader watch finds unreachable, plus the suspects not yet confirmed.
func (m *Machine) refreshView(now time.Time) {
	ids := make([]string, 0, len(m.order)+len(m.suspects))
	for _, name := range m.order {
		if m.held(name, now) {
			continue // resigned: out of the election for a while
		}
		if !m.unreachable(name) { // the leader watch: our own pings fail
			ids = append(ids, name)
		}
	}
	for _, name := range sortedKeys(m.suspects) {
		if !m.members[name] && !m.unreachable(name) && !m.held(name, now) {
			ids = append(ids, name) // reported dead, not yet confirmed by us
		}
	}
	before := m.core.View()
	a := m.core.SetView(ids, now)
	m.noteIgnored(a.Ignored)
	m.handle(a, "view", now)
	if after := m.core.View(); !slices.Equal(before, after) {
		m.viewChanges++
		m.gauge(MetricMembers, float64(len(after)))
		m.viewDirty = true
		m.logf(slog.LevelDebug, "membership view changed", "members", after)
		if m.term == nil && m.attempt == 0 && !m.cfg.Observer {
			if w := m.coalesceWindow(len(after)); w > 0 && m.calm() {
				m.coalesceCall(now, w)
			} else {
				m.staggerCall(now, m.watchLost)
			}
		}
	}
}

// staggerCall schedules the runtime call for a new view (member list):
// rank × CallStagger, rank 0 being the member the policy names leader of
// this view, plus up to CallStagger/2 of jitter. By the time a node's turn
// comes, the likely new leader has usually certified the view and its
// certificate has arrived, so the node does not call at all. When the
// change is the leader watch losing the leader, every other node waits one
// LeaderPingInterval more: by then the likely new leader has found the
// leader unreachable as well, and called.
func (m *Machine) staggerCall(now time.Time, watchLost bool) {
	rank := max(m.core.Rank(m.cfg.Self), 0)
	delay := time.Duration(rank) * m.cfg.CallStagger
	if watchLost && rank > 0 {
		delay += m.cfg.LeaderPingInterval
	}
	if j := m.cfg.CallStagger / 2; j > 0 {
		delay += time.Duration(m.cfg.Rand.Int64N(int64(j) + 1))
	}
	m.nextCall, m.callPlanned, m.calmPlan = now.Add(delay), true, false
}

// calm reports whether a view change can wait (member list): the held
// certificate's leader is still in the view, so it keeps leading until
// the next certificate. Joins, even of a member that outranks it, and
// departures of other members are calm; the leader's departure (dead,
// unreachable, left or resigned) is not.
func (m *Machine) calm() bool {
	leader, _ := m.core.Leader()
	return leader != "" && slices.Contains(m.core.View(), leader)
}

// coalesceWindow is how long calm changes are gathered before a call:
// ChangeCoalesce × max(1, log10 n) for a view of n members, growing with
// the cluster as memberlist's suspicion timeout does, since a larger
// cluster sees more changes (joins while it forms, false deaths that are
// refuted) in the same time.
func (m *Machine) coalesceWindow(n int) time.Duration {
	if m.cfg.ChangeCoalesce <= 0 {
		return 0
	}
	return time.Duration(float64(m.cfg.ChangeCoalesce) * max(1, math.Log10(float64(n))))
}

// coalesceCall plans the call for a calm change: the window from the
// first calm change since the last call, then the usual rank stagger. A
// later calm change within the window does not move the call, so a burst
// of joins (a forming cluster) or a false death and its refutation costs
// one call, or none when the view is back to the certified one by then.
func (m *Machine) coalesceCall(now time.Time, window time.Duration) {
	switch {
	case m.callPlanned && m.calmPlan:
		return
	case m.callPlanned:
		m.staggerCall(now, false) // an urgent call is planned: keep its pace
		return
	}
	m.staggerCall(now.Add(window), false)
	m.calmPlan = true
}

// noteIgnored logs, once per name, the members whose names are not valid
// member IDs: they stay out of the election view.
func (m *Machine) noteIgnored(names []string) {
	for _, name := range names {
		if m.ignored[name] {
			continue
		}
		if m.ignored == nil || len(m.ignored) >= 1024 {
			m.ignored = map[string]bool{}
		}
		m.ignored[name] = true
		m.count(MetricDrop, "invalid_member_id")
		m.logf(slog.LevelWarn, "ignoring a gossip member whose name is not a valid member ID; it stays out of the election view",
			"member", fmt.Sprintf("%.40q", name), "err", members.ValidID(name))
	}
}

// handle carries out the member-list core's actions.
func (m *Machine) handle(a election.Actions, source string, now time.Time) {
	if a.Rejected != nil {
		m.count(MetricRejected, string(a.Rejected.Reason))
		level := slog.LevelWarn
		if a.Rejected.Reason == election.ReasonStale {
			level = slog.LevelDebug
		}
		m.logf(level, "certificate rejected", "reason", a.Rejected.Reason, "from", source, "detail", a.Rejected.Detail)
		m.noteRejected(a.Rejected.Reason)
	}
	for _, r := range a.Expired {
		m.count(MetricRejected, string(r.Reason))
		m.logf(slog.LevelWarn, "certificate rejected", "reason", r.Reason, "detail", r.Detail)
	}
	if a.Accepted == nil {
		return
	}
	cert := a.Accepted
	_, o := m.core.Held()
	m.gauge(MetricSeq, float64(cert.Seq()))
	m.certFrom, m.certAt = source, now
	m.emit(Effect{Kind: Accepted, Cert: cert, Outcome: o, Source: source})
	m.emit(Effect{Kind: Persist, Seq: cert.Seq(), Cert: cert})
	if a.LeaderChanged == nil {
		m.relay(Effect{Kind: Relay, Cert: cert, Source: source})
		m.logf(slog.LevelDebug, "leader is "+o.Leader+" (seq "+strconv.FormatUint(cert.Seq(), 10)+")", "leader", o.Leader, "seq", cert.Seq(), "from", source)
		return
	}
	lc := a.LeaderChanged
	cause := m.leaderChanged(lc.Previous)
	m.relay(Effect{Kind: Relay, Cert: cert, Source: source, Direct: source == "runtime" && (cause == CauseFailed || cause == CauseResigned)})
	m.logf(slog.LevelInfo, "leader is "+lc.Leader+" (seq "+strconv.FormatUint(lc.Seq, 10)+")", "leader", lc.Leader, "seq", lc.Seq, "previous", lc.Previous, "cause", cause, "members", o.Members, "from", source)
	if lc.WasSelf && !lc.Self {
		m.stopLeading()
	}
	if lc.Self && m.unanchored {
		m.logf(slog.LevelInfo, "named leader, but this node has no floor yet: it leads once it holds its peers' certificates", "seq", lc.Seq)
	} else if lc.Self && m.mayLead(now) {
		m.startLeading(lc.Seq)
	}
	m.notify()
}

// leaderChanged counts a change of leader away from prev and returns why
// prev lost office: it failed (dead, unreachable, or out of this node's
// view; with signed views, not alive by majority), it left gracefully, or
// it was outranked (member list: still a member, but the policy prefers
// another).
func (m *Machine) leaderChanged(prev string) string {
	if prev == "" {
		return ""
	}
	m.count(MetricLeaderChanges, "")
	cause := CauseFailed
	_, resigned := m.holds[prev]
	switch d, ok := m.departures[prev]; {
	case resigned:
		cause = CauseResigned
	case ok && d.How == "left":
		cause = CauseLeft
	case ok:
		cause = CauseFailed
	case m.term == nil && m.core.Rank(prev) >= 0:
		cause = CauseOutranked
	}
	m.count(MetricFailovers, cause)
	return cause
}

// maybeElect asks for a call to the runtime when the held certificate
// does not cover the view, or when the leader's refresh is due.
func (m *Machine) maybeElect(now time.Time) {
	if m.calling || m.leaving || now.Before(m.nextCall) {
		return
	}
	view := m.core.Wanted()
	if view == nil && m.callPlanned {
		m.count(MetricCalmSkipped, "") // a peer's certificate covered the view first
	}
	m.callPlanned, m.calmPlan = false, false
	leader, _ := m.core.Leader()
	if view == nil && leader == m.cfg.Self && now.Sub(m.lastRefresh) >= m.cfg.RefreshInterval {
		view = m.core.View()
	}
	if view == nil && (m.trustKey == nil || m.recall) {
		view = m.core.View() // attest, then certify; or the runtime moved past our floor: certify anew
	}
	if view == nil {
		return
	}
	m.calling, m.recall = true, false
	m.lastRefresh = now
	m.emit(Effect{Kind: Call, View: view})
}

func (m *Machine) elected(in Input, now time.Time) {
	if !m.callDone(in, now) {
		return
	}
	a := m.core.Receive(in.Cert, now)
	m.handle(a, "runtime", now)
	if why := m.refusal(a.Rejected, in.Cert.Seq(), "seq"); why != nil {
		m.refused(now, why)
		return
	}
	m.answered(now)
}

// refusal explains why the runtime's own answer was refused, or returns
// nil when it was not or the refusal is routine (a peer's newer
// certificate arrived while the call was under way). got is the answer's
// seq (or term, named by unit).
func (m *Machine) refusal(rej *election.RejectError, got uint64, unit string) error {
	switch {
	case rej == nil || rej.Reason == election.ReasonNoLeader:
		return nil
	case rej.Reason == election.ReasonStale && got <= m.floor && m.proof() != nil:
		return fmt.Errorf("the runtime's %s %d is not above this node's floor %d (the highest it accepted before it restarted, kept in %s): the runtime's state was rolled back, so this node refuses its certificates until they pass %d and presents its floor certificate, which moves the runtime past it",
			unit, got, m.floor, m.cfg.FloorFile, m.floor)
	case rej.Reason == election.ReasonStale && got < m.floor:
		return fmt.Errorf("the runtime's %s %d is below this node's floor %d (the highest it accepted before it restarted, kept in %s): the runtime's state was reset or replaced, so this node refuses its certificates until they pass %d; if the reset was deliberate, stop this node, delete that file and start it again",
			unit, got, m.floor, m.cfg.FloorFile, m.floor)
	case rej.Reason == election.ReasonStale:
		return nil
	}
	return fmt.Errorf("the runtime's answer was refused (%s): %s", rej.Reason, rej.Detail)
}

// callDone records the outcome of a runtime call: on failure it schedules
// a retry with backoff and keeps the last valid leader; on success, if the
// runtime's attested key changed, it trusts the new one. The backoff is
// reset only once the answer was accepted (answered): an answer the node
// refuses counts as a failed attempt.
func (m *Machine) callDone(in Input, now time.Time) bool {
	m.calling = false
	if in.Err != nil {
		m.count(MetricErrors, "")
		msg := "runtime call failed; keeping the last valid leader"
		var wait time.Duration
		var ae *api.Error
		if errors.As(in.Err, &ae) && ae.Status == http.StatusTooManyRequests {
			msg = "the runtime is rate-limiting this node's function token (HTTP 429); backing off and keeping the last valid leader"
			wait = ae.RetryAfter
		}
		m.failed(now, in.Err, false, wait, msg)
		return false
	}
	m.count(MetricElections, "")
	if !in.Key.Equal(m.trustKey) {
		if m.trustKey != nil {
			m.logf(slog.LevelWarn, "runtime receipt key changed; trusting the newly attested key")
		}
		m.trustKey = in.Key
		m.core.SetTrust(m.trust())
		if m.term != nil {
			m.term.SetTrust(m.trust())
		}
	}
	return true
}

// failed schedules the next attempt after a failed call or a refused
// answer: capped exponential backoff with equal jitter, and at least
// atLeast (a 429's Retry-After, capped at RetryMax).
func (m *Machine) failed(now time.Time, err error, refused bool, atLeast time.Duration, msg string) {
	m.rt.LastFail, m.rt.Err, m.rt.Refused = now, err, refused
	m.gauge(MetricRuntimeFail, float64(now.UnixMilli())/1000)
	d := min(m.cfg.RetryMax, m.cfg.RetryMin<<min(m.attempt, 20))
	m.attempt++
	d = d/2 + time.Duration(m.cfg.Rand.Int64N(int64(d/2)+1))
	d = max(d, min(atLeast, m.cfg.RetryMax))
	m.nextCall = now.Add(d)
	m.lastRefresh = time.Time{} // a leader's failed refresh is retried with the backoff too
	m.logf(slog.LevelWarn, msg, "err", err, "attempt", m.attempt, "retry_in", d.Round(time.Millisecond))
}

// refused backs off from an answer the node refused, as from a failure.
func (m *Machine) refused(now time.Time, why error) {
	m.count(MetricRefused, "")
	m.failed(now, why, true, 0, "refused the runtime's answer; keeping the last valid leader")
}

// answered records an accepted answer: the backoff is reset.
func (m *Machine) answered(now time.Time) {
	if m.attempt > 0 {
		m.logf(slog.LevelInfo, "runtime reachable again", "after_attempts", m.attempt)
	}
	m.attempt, m.nextCall = 0, time.Time{}
	m.rt.LastOK = now
	m.gauge(MetricRuntimeOK, float64(now.UnixMilli())/1000)
}
