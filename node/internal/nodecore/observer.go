package nodecore

import (
	"log/slog"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// An observer (Config.Observer) holds and verifies certificates as a
// node does, and that is all: it never asks the runtime for a
// certificate, never signs or submits a view, never relays a
// certificate and never leads. Its only runtime traffic is attestation:
// once at start, and again (at most every RetryMax) after a certificate
// failed to verify under the attested key, which a runtime that restarted
// with a new key causes.

// maybeAttest asks the driver to attest the runtime when the machine has
// no key yet, or should check it again; one attempt at a time, with the
// calls' backoff.
func (m *Machine) maybeAttest(now time.Time) {
	if m.calling || m.leaving || now.Before(m.nextCall) {
		return
	}
	if m.trustKey != nil && !m.reattest {
		return
	}
	m.calling, m.reattest = true, false
	m.emit(Effect{Kind: Attest})
}

// attested handles the answer to an Attest effect.
func (m *Machine) attested(in Input, now time.Time) {
	m.calling = false
	if in.Err != nil {
		m.failed(now, in.Err, false, 0, "cannot attest the runtime; retrying")
		return
	}
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
	m.answered(now)
	m.nextCall = now.Add(m.cfg.RetryMax) // the earliest next attestation
}

// noteRejected makes an observer attest again after a certificate that
// does not verify under the key it holds.
func (m *Machine) noteRejected(r election.Reason) {
	if m.cfg.Observer && (r == election.ReasonBadSignature || r == election.ReasonUnknownKey) {
		m.reattest = true
	}
}

// relay emits a Relay effect, except on an observer, which spreads
// nothing: the nodes do not need it, and it stays out of their traffic.
func (m *Machine) relay(e Effect) {
	if !m.cfg.Observer {
		m.emit(e)
	}
}
