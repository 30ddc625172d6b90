package nodecore

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// A node's floor is the highest certificate it knows the runtime signed:
// the one it holds, the one it persisted before a restart, or a higher one
// a peer sent that it could not accept yet (pending). When the runtime
// answers below it, or with another certificate for the same term, the
// runtime's state was rolled back: the node presents the floor
// certificate (a Present effect), and the runtime moves its seqs and
// terms past it (docs/ELECTION.md §5).
//
// A node that starts with no floor at all (first start, lost files) does
// not lead on a certificate until it holds one at least as high as every
// verified certificate its peers sent, and until it heard one or
// Config.FloorWait has passed: a runtime rolled back could otherwise make
// it act on a term or seq its peers already moved past.

// SetFloorCert gives the machine the certificate the driver persisted with
// the floor before a restart. Call it before Start.
func (m *Machine) SetFloorCert(c *election.Certificate) { m.floorCert = c }

// value is a certificate's place in the order: its term (signed views) or
// seq (member list). A term certificate whose output does not parse is 0.
func (m *Machine) value(c *election.Certificate) uint64 {
	if c == nil {
		return 0
	}
	if m.views() {
		var o struct {
			Term uint64 `json:"term"`
		}
		json.Unmarshal(c.Output, &o)
		return o.Term
	}
	return c.Seq()
}

// proof returns the highest certificate this node knows the runtime
// signed, or nil.
func (m *Machine) proof() *election.Certificate {
	best := m.floorCert
	consider := func(c *election.Certificate) {
		if c != nil && (best == nil || m.value(c) > m.value(best)) {
			best = c
		}
	}
	if m.term != nil {
		c, _ := m.term.Held()
		consider(c)
	} else if m.core != nil {
		c, _ := m.core.Held()
		consider(c)
	}
	consider(m.peerProof)
	return best
}

// notePeerCert keeps a verified peer certificate above what this node
// holds: it raises the floor that a node without one must reach before it
// leads, and it is a proof of rollback the node can present.
func (m *Machine) notePeerCert(c *election.Certificate, now time.Time) {
	if c == nil {
		return
	}
	v := m.value(c)
	higher := v > m.heldValue() && (m.peerProof == nil || v > m.value(m.peerProof))
	if !higher && !m.unanchored {
		return
	}
	// Only a certificate the runtime signed counts, for either use: a
	// member could gossip a forged one to end another's wait early.
	if m.views() {
		if _, rej := election.VerifyTerm(c, m.trust()); rej != nil {
			return
		}
	} else if _, rej := m.core.Verify(c); rej != nil { // remembered: Receive verified it just before
		return
	}
	if higher {
		m.peerProof = c
	}
	m.heardPeer = m.heardPeer || m.unanchored
	m.maybeAnchor(now)
}

func (m *Machine) heldValue() uint64 {
	if m.term != nil {
		_, t := m.term.Leader()
		return t
	}
	c, _ := m.core.Held()
	return m.value(c)
}

// maybeAnchor ends the wait of a node that started without a floor: it
// holds a certificate at least as high as every verified one its peers
// sent, and it heard one of them or FloorWait has passed.
func (m *Machine) maybeAnchor(now time.Time) {
	if !m.unanchored {
		return
	}
	if m.peerProof != nil && m.heldValue() < m.value(m.peerProof) {
		return // a peer knows a higher certificate: hold one at least as high first
	}
	if !m.heardPeer && now.Before(m.anchorBy) {
		return
	}
	m.unanchored = false
	how := "heard its peers' certificates"
	if !m.heardPeer {
		how = "heard no peer certificate within the floor wait"
	}
	m.logf(slog.LevelInfo, "floor taken: this node "+how+"; it may lead from now on", "floor", m.heldValue())
	if m.term != nil {
		m.checkLease(now)
		return
	}
	if leader, seq := m.core.Leader(); leader == m.cfg.Self && !m.led {
		m.startLeading(seq)
		m.notify()
	}
}

// checkAnswer presents the floor certificate when the runtime's answer is
// below it, or another certificate for its term: the runtime's state was
// rolled back. At most one presentation is in flight, and the same
// certificate is presented again only after RetryMax.
func (m *Machine) checkAnswer(answer *election.Certificate, now time.Time) {
	p := m.proof()
	if p == nil || answer == nil || m.presenting {
		return
	}
	pv, av := m.value(p), m.value(answer)
	below := av < pv
	if m.views() {
		below = below || (av == pv && !bytes.Equal(answer.Output, p.Output))
	} else {
		below = below || (av == pv && !bytes.Equal(answer.Receipt.Signature, p.Receipt.Signature))
	}
	if !below {
		return
	}
	if bytes.Equal(p.Receipt.Signature, m.presentedSig) && now.Sub(m.presentedAt) < m.cfg.RetryMax {
		return
	}
	m.presenting, m.presentedSig, m.presentedAt = true, p.Receipt.Signature, now
	m.logf(slog.LevelWarn, "the runtime answered below this node's floor: presenting the floor certificate as proof that its state was rolled back",
		"answer", av, "floor", pv, "floor_seq", p.Seq())
	m.emit(Effect{Kind: Present, Cert: p, Seq: pv})
}

// presented handles the runtime's answer to a Present effect: when it
// moved past the proof, the node asks again at once.
func (m *Machine) presented(in Input, now time.Time) {
	m.presenting = false
	if in.Err != nil {
		m.logf(slog.LevelWarn, "the runtime refused this node's proof of rollback", "err", in.Err)
		return
	}
	m.count(MetricFloorPresented, "")
	if !in.Moved {
		m.logf(slog.LevelInfo, "the runtime is already past this node's floor certificate")
		return
	}
	m.logf(slog.LevelWarn, "the runtime moved past this node's floor certificate; asking again")
	m.attempt, m.nextCall, m.recall = 0, time.Time{}, true
	m.viewDirty, m.nextView = true, time.Time{}
}
