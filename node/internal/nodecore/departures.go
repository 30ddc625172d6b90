package nodecore

import (
	"log/slog"
	"time"
)

// With signed views, a node's view is its testimony to the runtime, so it
// drops a member only on first-hand evidence. memberlist's "dead" messages
// are gossip that any member can send about anyone. So when memberlist
// reports a member dead, the node keeps it in its view as a suspect and
// pings it directly; only after confirmFails direct pings in a row go
// unanswered does it leave the view. A member that answers is kept and
// joined again.

// confirmFails is how many direct pings in a row must fail. memberlist has
// already failed its own direct and indirect probes by then; one more
// first-hand failure is the evidence that was missing.
const confirmFails = 1

// suspect is a member memberlist reports dead that this node has not yet
// confirmed dead itself.
type suspect struct {
	fails    int
	inFlight bool
	answered bool
	lastJoin time.Time
}

// noteDeparture remembers how a member left: "left" after it said goodbye
// within the last 10 s, "dead" after failure detection. known says whether
// the driver can still reach the member's address to confirm a death.
func (m *Machine) noteDeparture(name, how string, known bool, now time.Time) {
	if t, ok := m.goodbyes[name]; ok {
		delete(m.goodbyes, name)
		if now.Sub(t) < 10*time.Second {
			how = "left"
			m.emit(Effect{Kind: Forget, Member: name})
		}
	}
	if len(m.goodbyes) > 1024 {
		m.goodbyes = map[string]time.Time{}
	}
	m.setDeparture(name, how, now)
	m.logf(slog.LevelInfo, "member departed", "member", name, "how", how)
	if how == "dead" && known {
		m.suspectDeparture(name)
	}
}

// setDeparture records how and when name left this node's view, in a map
// kept to about 1024 entries.
func (m *Machine) setDeparture(name, how string, at time.Time) {
	if m.departures == nil || len(m.departures) > 1024 {
		m.departures = map[string]Departure{}
	}
	m.departures[name] = Departure{How: how, At: at}
}

// goodbye records a member's goodbye. memberlist handles its own leave
// message before user messages, so a goodbye can arrive just after the
// departure was reported: then the departure is relabelled a leave.
func (m *Machine) goodbye(name string, now time.Time) {
	if d, ok := m.departures[name]; ok && d.How == "dead" && now.Sub(d.At) < 2*time.Second && !m.members[name] {
		m.setDeparture(name, "left", d.At)
		m.emit(Effect{Kind: Forget, Member: name})
		m.logf(slog.LevelInfo, "member departed", "member", name, "how", "left", "note", "its goodbye arrived after the departure")
		if _, ok := m.suspects[name]; ok {
			delete(m.suspects, name)
			m.refreshView(now)
		}
		return
	}
	m.goodbyes[name] = now
}

// suspectDeparture starts confirming a reported death (signed views).
func (m *Machine) suspectDeparture(name string) {
	if m.term == nil || name == m.cfg.Self || m.unreachable(name) {
		// Not needed when the leader watch's own pings already failed:
		// that is the first-hand evidence, and re-adding the member to
		// the view until one more ping fails would undo the watch.
		return
	}
	if m.suspects == nil {
		m.suspects = map[string]*suspect{}
	}
	m.suspects[name] = &suspect{}
}

// confirmSuspects pings every suspect that has no ping under way.
func (m *Machine) confirmSuspects() {
	for _, name := range sortedKeys(m.suspects) {
		s := m.suspects[name]
		if s.inFlight {
			continue
		}
		if m.members[name] {
			delete(m.suspects, name) // back in memberlist's view
			continue
		}
		s.inFlight = true
		m.emit(Effect{Kind: Ping, Member: name})
	}
}

// pinged handles a suspect ping's outcome; it reports whether the view
// must change.
func (m *Machine) pinged(name string, err error, now time.Time) bool {
	s := m.suspects[name]
	if s == nil {
		return false
	}
	s.inFlight = false
	if err == nil {
		s.fails = 0
		if !s.answered {
			s.answered = true
			m.count(MetricDropped, "dead_rumour")
			m.logf(slog.LevelWarn, "memberlist reports a member dead, but it answers our own pings: keeping it in this node's view", "member", name)
		}
		if now.Sub(s.lastJoin) > time.Second {
			s.lastJoin = now
			m.emit(Effect{Kind: Join, Member: name})
		}
		return false
	}
	s.fails++
	if s.fails < confirmFails {
		return false
	}
	delete(m.suspects, name)
	m.logf(slog.LevelDebug, "confirmed a member's death with our own pings", "member", name)
	return true
}
