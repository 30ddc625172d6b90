package election

import (
	"bytes"

	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// Term certificates come from the stateful election function (built-in
// "election"): the runtime tallies signed views and issues exactly one
// certificate per (cluster, term). A node accepts only the highest term;
// within a term, a certificate with a later receipt renews the leader's
// lease. The term is the fencing token.

// TermOutcome is a term certificate's output: the election function
// writes it and nodes parse it. It is defined in package outcome, which the
// function shares with the nodes.
type TermOutcome = outcome.Term

// Rejection reasons for term certificates only.
const (
	// ReasonNoLeader: the certificate is the runtime's answer before any
	// term started (term 0). It is not an error, but nothing to accept.
	ReasonNoLeader Reason = "no_leader"
	// ReasonEquivocation: two different certificates for one term. An
	// honest runtime never issues them; a node that sees one keeps the
	// first and raises the alarm.
	ReasonEquivocation Reason = "equivocation"
)

// VerifyTerm checks a term certificate against t and returns its outcome.
// The receipt's input is another node's view, so unlike Verify it does not
// check input_sha256.
func VerifyTerm(c *Certificate, t Trust) (*TermOutcome, *RejectError) {
	if rej := verifyReceipt(c, t); rej != nil {
		return nil, rej
	}
	var o TermOutcome
	if err := strictjson.Unmarshal(c.Output, &o); err != nil {
		return nil, reject(ReasonBadOutcome, "output is not a term certificate: %v", err)
	}
	if o.Cluster != t.Cluster {
		return nil, reject(ReasonWrongCluster, "certificate is for cluster %q, this node is in %q", o.Cluster, t.Cluster)
	}
	if t.ConfigDigest != "" && o.ConfigDigest != t.ConfigDigest {
		return nil, reject(ReasonWrongConfig, "certificate is for cluster configuration %.16s…, this node's is %.16s… (if the owner changed the configuration, give this node the new one)", o.ConfigDigest, t.ConfigDigest)
	}
	if o.Term == 0 || o.Leader == "" {
		return nil, reject(ReasonNoLeader, "no leader has been elected yet")
	}
	if o.LeaseMs <= 0 {
		return nil, reject(ReasonBadOutcome, "lease_ms %d is not positive", o.LeaseMs)
	}
	return &o, nil
}

// TermCore is a node's state for term certificates. Like Core, it does no
// I/O and is owned by one goroutine.
type TermCore struct {
	self       string
	trust      Trust
	minTerm    uint64
	minOutput  []byte // the output of the certificate at minTerm, when kept
	held       *Certificate
	outcome    *TermOutcome
	rejections map[Reason]uint64
	accepted   uint64
}

// TermActions are what the node must do after an input.
type TermActions struct {
	// Accepted is set for a certificate of a new, higher term: broadcast
	// it. Renewed is set for a later certificate of the held term.
	Accepted *Certificate
	Renewed  *Certificate
	// Outcome is the accepted or renewed certificate's outcome.
	Outcome       *TermOutcome
	LeaderChanged *LeaderChange
	Rejected      *RejectError
}

// NewTermCore returns a TermCore. minTerm refuses terms below it: the
// highest term the node accepted before it restarted.
func NewTermCore(self string, trust Trust, minTerm uint64) *TermCore {
	return &TermCore{self: self, trust: trust, minTerm: minTerm, rejections: map[Reason]uint64{}}
}

// SetMinOutput gives the output of the certificate for the minimum term
// the node kept before it restarted: another certificate for that term is
// refused as equivocation.
func (c *TermCore) SetMinOutput(out []byte) { c.minOutput = bytes.Clone(out) }

// SetTrust replaces the trusted runtime identity.
func (c *TermCore) SetTrust(t Trust) { c.trust = t }

// Receive handles a term certificate from a peer or from the runtime.
func (c *TermCore) Receive(cert *Certificate) TermActions {
	var a TermActions
	if c.held != nil && bytes.Equal(cert.Receipt.Signature, c.held.Receipt.Signature) {
		return a // the one we hold, again
	}
	o, rej := VerifyTerm(cert, c.trust)
	if rej == nil {
		switch {
		case o.Term < c.minTerm:
			rej = reject(ReasonStale, "term %d is below %d, the highest this node accepted before it restarted", o.Term, c.minTerm)
		case c.outcome == nil && c.minOutput != nil && o.Term == c.minTerm && !bytes.Equal(cert.Output, c.minOutput):
			rej = reject(ReasonEquivocation, "two different certificates for term %d (this node kept the other before it restarted): the runtime is not behaving", o.Term)
		case c.outcome != nil && o.Term < c.outcome.Term:
			rej = reject(ReasonStale, "term %d is below the held term %d", o.Term, c.outcome.Term)
		case c.outcome != nil && o.Term == c.outcome.Term && !bytes.Equal(cert.Output, c.held.Output):
			rej = reject(ReasonEquivocation, "two different certificates for term %d (leaders %q and %q): the runtime is not behaving", o.Term, c.outcome.Leader, o.Leader)
		case c.outcome != nil && o.Term == c.outcome.Term && !cert.Receipt.Time.After(c.held.Receipt.Time):
			return a // an older copy of the held term: gossip redundancy
		}
	}
	if rej != nil {
		if rej.Reason != ReasonNoLeader {
			c.rejections[rej.Reason]++
		}
		a.Rejected = rej
		return a
	}
	a.Outcome = o
	if c.outcome != nil && o.Term == c.outcome.Term {
		c.held = cert
		a.Renewed = cert
		return a
	}
	prev := ""
	if c.outcome != nil {
		prev = c.outcome.Leader
	}
	c.held, c.outcome = cert, o
	c.accepted++
	a.Accepted = cert
	if o.Leader != prev {
		a.LeaderChanged = &LeaderChange{Previous: prev, Leader: o.Leader, Seq: o.Term, Self: o.Leader == c.self, WasSelf: prev != "" && prev == c.self}
	}
	return a
}

// Held returns the held certificate and its outcome, or nils.
func (c *TermCore) Held() (*Certificate, *TermOutcome) { return c.held, c.outcome }

// Leader returns the held leader and term.
func (c *TermCore) Leader() (string, uint64) {
	if c.outcome == nil {
		return "", 0
	}
	return c.outcome.Leader, c.outcome.Term
}

// Rejections returns the refused certificates by reason.
func (c *TermCore) Rejections() map[Reason]uint64 {
	out := make(map[Reason]uint64, len(c.rejections))
	for k, v := range c.rejections {
		out[k] = v
	}
	return out
}

// Accepted returns how many new terms the node has accepted.
func (c *TermCore) Accepted() uint64 { return c.accepted }
