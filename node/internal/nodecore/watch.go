package nodecore

import (
	"cmp"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The leader watch. memberlist declares a member dead only after its
// suspicion timeout, which grows with log10 N. So every node that holds a
// certificate naming another member L pings L directly (the driver uses
// memberlist's Ping, whose ack must echo the ping's sequence number).
// When L has not acked for LeaderTimeout and at least two pings in a row
// failed, L is unreachable for this node and leaves its election view, in
// both schemes. L keeps being pinged while memberlist lists it, and its
// first ack brings it back.

// watched is a member the leader watch pings.
type watched struct {
	lastAck       time.Time // or when the watch started
	fails         int       // failed pings in a row
	firstFailSent time.Time // send time of the first failed ping in a row
	unreachable   bool
	since         time.Time // when it became unreachable
	armed         bool      // a check is due at lastAck + LeaderTimeout
}

// WatchState is one member the leader watch pings, for status.
type WatchState struct {
	Member      string
	LastAck     time.Time
	FailedPings int
	Unreachable bool
	Since       time.Time
}

// watchOn reports whether the leader watch runs: never on an observer,
// which sends the leader no pings.
func (m *Machine) watchOn() bool {
	return m.cfg.LeaderPingInterval > 0 && m.cfg.LeaderTimeout > 0 && !m.cfg.Observer
}

// unreachable reports whether the leader watch found name unreachable.
func (m *Machine) unreachable(name string) bool {
	w := m.watch[name]
	return w != nil && w.unreachable
}

// updateWatch starts and stops watching: the held certificate's leader,
// if it is another current member, and every member found unreachable
// that memberlist still lists.
func (m *Machine) updateWatch(now time.Time) {
	if !m.watchOn() {
		return
	}
	leader := m.heldLeader()
	for _, name := range sortedKeys(m.watch) {
		w := m.watch[name]
		if name == leader && m.members[name] {
			continue
		}
		if w.unreachable && m.members[name] {
			continue // keep pinging: its first ack brings it back
		}
		delete(m.watch, name)
		m.emit(Effect{Kind: Unwatch, Member: name})
	}
	if leader == "" || leader == m.cfg.Self || m.watch[leader] != nil || !m.members[leader] {
		return
	}
	if m.watch == nil {
		m.watch = map[string]*watched{}
	}
	m.watch[leader] = &watched{lastAck: now}
	m.emit(Effect{Kind: Watch, Member: leader})
}

func (m *Machine) heldLeader() string {
	if m.term != nil {
		l, _ := m.term.Leader()
		return l
	}
	l, _ := m.core.Leader()
	return l
}

// watchResult handles one ping's outcome.
func (m *Machine) watchResult(name string, err error, sent, now time.Time) {
	w := m.watch[name]
	if w == nil {
		return
	}
	if err == nil {
		w.lastAck, w.fails = now, 0
		if w.unreachable {
			w.unreachable = false
			m.verdicts++
			m.logf(slog.LevelInfo, "leader "+name+" reachable again: back in this node's election view", "member", name, "unreachable_for", now.Sub(w.since).Round(time.Millisecond))
			m.refreshView(now)
		}
		return
	}
	if w.fails == 0 {
		w.firstFailSent = sent
	}
	w.fails++
	m.checkWatch(name, now)
}

// checkWatch declares name unreachable when no ack arrived for the timeout
// and two pings in a row failed; otherwise, once a ping failed, it arms a
// check for when the timeout runs out, so the verdict does not wait for
// the next ping to time out. The timeout is not stretched by Lifeguard's
// health score (docs/ELECTION.md, "The false-positive trade-off").
func (m *Machine) checkWatch(name string, now time.Time) {
	w := m.watch[name]
	if w == nil || w.unreachable || w.fails == 0 {
		return
	}
	timeout := m.cfg.LeaderTimeout
	deadline := w.lastAck.Add(timeout)
	if w.fails < 2 || now.Before(deadline) {
		if !w.armed && now.Before(deadline) {
			w.armed = true
		}
		return
	}
	w.unreachable, w.since = true, now
	m.verdicts++
	m.count(MetricLeaderLost, "")
	m.setDeparture(name, "unreachable", now)
	m.logf(slog.LevelWarn, "leader "+name+" unreachable: no answer to "+strconv.Itoa(w.fails)+" direct pings in a row for "+now.Sub(w.lastAck).Round(time.Millisecond).String()+
		"; leaving it out of this node's election view (memberlist still lists it; it comes back at its first answer)",
		"member", name, "failed_pings", w.fails, "timeout", timeout)
	m.watchLost = true
	m.refreshView(now)
	m.watchLost = false
	if m.term != nil {
		m.viewDirty = true
	}
}

// watchDeadlines runs the armed checks whose deadline has come.
func (m *Machine) watchDeadlines(now time.Time) {
	for _, name := range sortedKeys(m.watch) {
		if w := m.watch[name]; w != nil && w.armed && !now.Before(w.lastAck.Add(m.cfg.LeaderTimeout)) {
			w.armed = false
			m.checkWatch(name, now)
		}
	}
}

// leaderLostRecently reports whether the held term's leader has been
// unreachable for at most two leases.
func (m *Machine) leaderLostRecently(now time.Time, lease time.Duration) bool {
	if m.term == nil {
		return false
	}
	leader, _ := m.term.Leader()
	w := m.watch[leader]
	return w != nil && w.unreachable && now.Sub(w.since) < 2*lease
}

// WatchStates lists the watched members, sorted.
func (m *Machine) WatchStates() []WatchState {
	var out []WatchState
	for _, name := range sortedKeys(m.watch) {
		w := m.watch[name]
		out = append(out, WatchState{Member: name, LastAck: w.lastAck, FailedPings: w.fails, Unreachable: w.unreachable, Since: w.since})
	}
	return out
}

// Unreachable reports whether the watch found name unreachable, and since.
func (m *Machine) Unreachable(name string) (bool, time.Time) {
	w := m.watch[name]
	if w == nil || !w.unreachable {
		return false, time.Time{}
	}
	return true, w.since
}

func sortedKeys[V any](mp map[string]V) []string {
	return slices.SortedFunc(maps.Keys(mp), cmp.Compare[string])
}
