package nodecore

import (
	"time"

	"github.com/vouch-dev/vouch/election"
)

// Cores returns the election cores (term is nil with the member list),
// for reading on the goroutine that owns the machine.
func (m *Machine) Cores() (*election.Core, *election.TermCore) { return m.core, m.term }

// Leading reports whether this node holds a renewed lease (signed views).
func (m *Machine) Leading() bool { return m.leading }

// LeaseUntil is the current lease end (signed views; zero: none).
func (m *Machine) LeaseUntil() time.Time { return m.leaseUntil }

// Counters returns how often the election view changed and how many
// verdicts the leader watch reached.
func (m *Machine) Counters() (viewChanges, verdicts uint64) { return m.viewChanges, m.verdicts }

// Departures returns the members that left this node's view. The map is
// the machine's: read it, do not keep it.
func (m *Machine) Departures() map[string]Departure { return m.departures }

// Suspects lists the members reported dead and not yet confirmed, sorted.
func (m *Machine) Suspects() []string { return sortedKeys(m.suspects) }

// Ignored reports whether name is a member whose ID is invalid.
func (m *Machine) Ignored(name string) bool { return m.ignored[name] }

// CertSource says where and when the held certificate was accepted.
func (m *Machine) CertSource() (string, time.Time) { return m.certFrom, m.certAt }

// Runtime returns what the machine knows of the runtime, whether it has
// attested it, and when it calls next (zero: no retry scheduled).
func (m *Machine) Runtime() (t RuntimeTrack, attested bool, nextCall time.Time) {
	return m.rt, m.trustKey != nil, m.nextCall
}

// NeedsRuntime reports whether the node is trying to reach the runtime: it
// has no certificate for its view, it leads (and must refresh), or it runs
// signed views (it submits its view every ViewInterval).
func (m *Machine) NeedsRuntime() bool {
	if m.term != nil || m.trustKey == nil || m.core == nil {
		return true
	}
	if m.core.Wanted() != nil {
		return true
	}
	leader, _ := m.core.Leader()
	return leader == m.cfg.Self
}
