package nodecore

import (
	"log/slog"
	"time"
)

// A graceful handover (docs/ELECTION.md, "Resigning") has two steps, so
// that the leader stops acting before anyone else may start:
//
//  1. StepDown: the leadership ends at once (StopLeading) and the machine
//     leads no more; the driver waits for the leader's work to end (the
//     OnStartedLeading callback to return, the --exec command to exit).
//  2. Resign: the node leaves its own election view for ResignHold, tells
//     its peers (Announce), and they leave it out of theirs for as long.
//     With the member list, its next call certifies a view without it;
//     with signed views it stops renewing its lease, a majority soon
//     testifies it gone, and the runtime starts a new term without it
//     once the lease granted to it has run out. A certificate naming
//     another leader ends the hold (signed views: the new leader then
//     keeps its office while it lives, so the resigned node may come back
//     as a follower); with the member list the hold runs its full length,
//     after which the original policy may name it again.

// defaultResignHold is ResignHold's default.
const defaultResignHold = time.Minute

func (m *Machine) resignHold() time.Duration {
	if m.cfg.ResignHold > 0 {
		return m.cfg.ResignHold
	}
	return defaultResignHold
}

// mayLead reports whether the node may start or keep a leadership.
func (m *Machine) mayLead(now time.Time) bool {
	return !m.stepped && !m.leaving && !m.cfg.Observer && !now.Before(m.resignUntil)
}

// stepDown ends a leadership at once and keeps the node from leading.
func (m *Machine) stepDown(why string) {
	m.stepped = true
	if m.term != nil {
		m.leading = false
	}
	if m.led {
		m.logf(slog.LevelInfo, "stepping down: "+why)
		m.stopLeading()
		m.notify()
	}
}

// resign takes the node out of the election for the hold.
func (m *Machine) resign(now time.Time) {
	m.stepped = false
	m.resignUntil = now.Add(m.resignHold())
	m.holdLocked(m.cfg.Self, m.resignUntil)
	m.logf(slog.LevelInfo, "resigned: out of the election view", "until", m.resignUntil)
	m.emit(Effect{Kind: Announce})
	m.refreshView(now)
	if m.term == nil && m.attempt == 0 {
		m.nextCall, m.callPlanned = now, true // certify the view without us now
	}
}

// peerResigned holds a member that announced its resignation out of the
// view.
func (m *Machine) peerResigned(name string, now time.Time) {
	if name == m.cfg.Self || !m.members[name] {
		return
	}
	m.holdLocked(name, now.Add(m.resignHold()))
	m.logf(slog.LevelInfo, "member resigned: out of the election view", "member", name, "for", m.resignHold())
	m.refreshView(now)
}

func (m *Machine) holdLocked(name string, until time.Time) {
	if m.holds == nil || len(m.holds) > 1024 {
		m.holds = map[string]time.Time{}
	}
	m.holds[name] = until
}

// held reports whether name is held out of the election view.
func (m *Machine) held(name string, now time.Time) bool {
	until, ok := m.holds[name]
	return ok && now.Before(until)
}

// expireHolds drops the holds that ran out, and brings the members back
// into the view.
func (m *Machine) expireHolds(now time.Time) {
	changed := false
	for name, until := range m.holds {
		if !now.Before(until) {
			delete(m.holds, name)
			changed = true
		}
	}
	if changed {
		m.refreshView(now)
		m.maybeResume(now)
	}
}

// endHolds ends, with signed views, the holds of members other than
// leader: a certificate names another leader, so the handover is done.
func (m *Machine) endHolds(leader string, now time.Time) {
	changed := false
	for name := range m.holds {
		if name != leader {
			delete(m.holds, name)
			changed = true
		}
	}
	if leader != m.cfg.Self && now.Before(m.resignUntil) {
		m.resignUntil = time.Time{}
	}
	if changed {
		m.refreshView(now)
	}
}

// maybeResume starts leading (member list) when the hold is over and the
// certificate held still names this node.
func (m *Machine) maybeResume(now time.Time) {
	if m.term != nil || m.led || m.unanchored || !m.mayLead(now) {
		return
	}
	if leader, seq := m.core.Leader(); leader == m.cfg.Self {
		m.startLeading(seq)
		m.notify()
	}
}

// Resigned reports whether the node is out of the election (stepped down,
// or resigned and within the hold), and until when.
func (m *Machine) Resigned(now time.Time) (bool, time.Time) {
	return m.stepped || now.Before(m.resignUntil), m.resignUntil
}
