package election

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/receipt"
)

// Config configures a Core.
type Config struct {
	// Self is this node's member ID.
	Self string
	// Trust is what certificates are checked against.
	Trust Trust
	// PendingFor is how long a valid certificate whose members differ from
	// the node's view may wait for the view to converge before it is
	// rejected. Zero means 3 s.
	PendingFor time.Duration
	// MaxPending bounds the certificates waiting; zero means 16.
	MaxPending int
	// MinSeq refuses certificates below this seq as stale: the highest seq
	// the node accepted before it restarted, so that an old certificate
	// cannot be replayed to it.
	MinSeq uint64
	// MinSeqSig is the signature of the certificate at MinSeq, when the
	// node kept it: another certificate with that seq is refused as
	// stale, since a runtime signs each seq once unless its state was
	// rolled back.
	MinSeqSig []byte
}

// Core is a node's election state. It is not safe for concurrent use: one
// goroutine owns it (see package node).
type Core struct {
	cfg Config

	view       *members.Set
	viewDigest string // view's members digest, computed once per view
	// The last list SetView was given and the IDs it dropped: the same
	// list again (most refreshes while a cluster forms) changes nothing.
	lastIDs, lastIgnored []string
	keyID                string // receipt.KeyID of the trusted key
	held                 *Certificate
	outcome              *Outcome
	leader               string
	pending              []pendingCert

	rejections map[Reason]uint64
	accepted   uint64

	// verified remembers the outcomes of certificates that passed Verify,
	// by the SHA-256 of their whole encoding: gossip hands a node each
	// certificate many times, and while a large cluster forms most of
	// them are stale or wait for the view, so verifying every copy again
	// (an Ed25519 verification and a decoding each) made the work grow
	// with N².
	verified map[[32]byte]*Outcome
}

// maxVerified bounds Core.verified; it is emptied when full.
const maxVerified = 256

type pendingCert struct {
	cert    *Certificate
	outcome *Outcome
	digest  string
	until   time.Time
}

// LeaderChange reports a new leader.
type LeaderChange struct {
	// Previous and Leader are member IDs; Previous is "" for the first.
	Previous, Leader string
	// Seq is the accepted certificate's sequence number.
	Seq uint64
	// Self reports whether this node is the new leader; WasSelf whether it
	// was the previous one.
	Self, WasSelf bool
}

// Actions are what the node must do after an input.
type Actions struct {
	// Accepted is a certificate the node now holds: broadcast it.
	Accepted *Certificate
	// LeaderChanged is set when the accepted certificate names a new
	// leader.
	LeaderChanged *LeaderChange
	// Rejected is set when the input certificate was refused; Pending when
	// it waits for the view to converge.
	Rejected *RejectError
	Pending  bool
	// Expired lists pending certificates rejected because the view never
	// converged to them, or dropped because too many were waiting.
	Expired []*RejectError
	// Ignored lists the IDs SetView dropped because they are not valid
	// member IDs (members.ValidID).
	Ignored []string
}

// New returns a Core with an empty view and no certificate.
func New(cfg Config) *Core {
	if cfg.PendingFor == 0 {
		cfg.PendingFor = 3 * time.Second
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 16
	}
	return &Core{cfg: cfg, rejections: map[Reason]uint64{}, keyID: receipt.KeyID(cfg.Trust.Key)}
}

// SetTrust replaces the trusted runtime identity, for example after the
// runtime's key changed and the node attested it again.
func (c *Core) SetTrust(t Trust) {
	c.cfg.Trust, c.verified, c.keyID = t, nil, receipt.KeyID(t.Key)
}

// Verify is the package's Verify against the core's trust, remembering the
// certificates that pass: the same certificate again costs a hash.
func (c *Core) Verify(cert *Certificate) (*Outcome, *RejectError) {
	sum := sha256.Sum256(cert.Encode())
	if o, ok := c.verified[sum]; ok {
		return o, nil
	}
	o, rej := Verify(cert, c.cfg.Trust)
	if rej == nil {
		if c.verified == nil || len(c.verified) >= maxVerified {
			c.verified = make(map[[32]byte]*Outcome)
		}
		c.verified[sum] = o
	}
	return o, rej
}

// SetView records the node's membership view (alive members, itself
// included) and re-examines pending certificates. IDs that are not valid
// member IDs are dropped and listed in Actions.Ignored, and repeated IDs
// count once: one bad name from the network must not freeze the view (and
// with it every failover). The view is left unchanged only when no valid
// ID remains or there are more than members.MaxMembers.
func (c *Core) SetView(ids []string, now time.Time) Actions {
	var a Actions
	if c.lastIDs != nil && slices.Equal(ids, c.lastIDs) {
		// The same view: no pending certificate matches it (each that did
		// was accepted or dropped when it arrived or the view was set).
		a.Ignored = slices.Clone(c.lastIgnored)
		return a
	}
	defer func() { c.lastIDs, c.lastIgnored = slices.Clone(ids), slices.Clone(a.Ignored) }()
	valid := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if members.ValidID(id) != nil {
			a.Ignored = append(a.Ignored, id)
			continue
		}
		if !seen[id] {
			seen[id] = true
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return a
	}
	set, err := members.New(valid)
	if err != nil {
		return a
	}
	c.view, c.viewDigest = set, set.Digest()
	// The best pending certificate that now matches the view wins.
	best := -1
	for i, p := range c.pending {
		if p.digest == c.viewDigest && (c.held == nil || p.cert.Seq() > c.held.Seq()) &&
			(best < 0 || p.cert.Seq() > c.pending[best].cert.Seq()) {
			best = i
		}
	}
	if best >= 0 {
		p := c.pending[best]
		c.pending = append(c.pending[:best], c.pending[best+1:]...)
		c.accept(p.cert, p.outcome, &a)
	}
	c.dropSuperseded()
	return a
}

// Receive handles a certificate from a peer or from the runtime.
func (c *Core) Receive(cert *Certificate, now time.Time) Actions {
	var a Actions
	if c.held != nil && cert.Seq() == c.held.Seq() && bytes.Equal(cert.Receipt.Signature, c.held.Receipt.Signature) {
		return a // the one we hold, again: gossip redundancy, not an attack
	}
	notAbove := c.held != nil && cert.Seq() <= c.held.Seq()
	var o *Outcome
	var rej *RejectError
	if notAbove && cert.Seq() < c.held.Seq() && cert.Receipt.KeyID == c.keyID {
		// Below the held seq: refused as stale whatever its signature, so
		// it is not verified (while a large cluster forms most gossiped
		// certificates are). One naming another key is verified, so that
		// an observer still learns that the runtime's key changed
		// (unknown_key).
	} else {
		o, rej = c.Verify(cert)
	}
	if rej == nil && notAbove {
		rej = reject(ReasonStale, "seq %d is not above the held seq %d", cert.Seq(), c.held.Seq())
	}
	if rej == nil && cert.Seq() < c.cfg.MinSeq {
		rej = reject(ReasonStale, "seq %d is below %d, the highest this node accepted before it restarted", cert.Seq(), c.cfg.MinSeq)
	}
	if rej == nil && c.held == nil && c.cfg.MinSeqSig != nil && cert.Seq() == c.cfg.MinSeq && !bytes.Equal(cert.Receipt.Signature, c.cfg.MinSeqSig) {
		rej = reject(ReasonStale, "seq %d was signed before for another certificate, the one this node accepted before it restarted: the runtime's state was rolled back", cert.Seq())
	}
	if rej != nil {
		c.rejections[rej.Reason]++
		a.Rejected = rej
		return a
	}
	if c.view != nil && o.MembersDigest == c.viewDigest {
		c.accept(cert, o, &a)
		c.dropSuperseded()
		return a
	}
	// Valid, newer, but for another view: wait for ours to converge.
	for _, p := range c.pending {
		if p.cert.Seq() == cert.Seq() {
			a.Pending = true
			return a
		}
	}
	c.pending = append(c.pending, pendingCert{cert: cert, outcome: o, digest: o.MembersDigest, until: now.Add(c.cfg.PendingFor)})
	if len(c.pending) > c.cfg.MaxPending {
		// Drop the lowest seq.
		low := 0
		for i, p := range c.pending {
			if p.cert.Seq() < c.pending[low].cert.Seq() {
				low = i
			}
		}
		a.Expired = append(a.Expired, reject(ReasonMembers, "seq %d dropped: more than %d certificates were waiting for the view to converge", c.pending[low].cert.Seq(), c.cfg.MaxPending))
		c.pending = append(c.pending[:low], c.pending[low+1:]...)
		c.rejections[ReasonMembers]++
	}
	a.Pending = true
	return a
}

// Tick expires pending certificates whose time ran out.
func (c *Core) Tick(now time.Time) Actions {
	var a Actions
	kept := c.pending[:0]
	for _, p := range c.pending {
		if now.After(p.until) {
			r := reject(ReasonMembers, "members %v never matched this node's view", p.outcome.Members)
			c.rejections[ReasonMembers]++
			a.Expired = append(a.Expired, r)
			continue
		}
		kept = append(kept, p)
	}
	c.pending = kept
	return a
}

func (c *Core) accept(cert *Certificate, o *Outcome, a *Actions) {
	c.held, c.outcome = cert, o
	c.accepted++
	a.Accepted = cert
	if o.Leader != c.leader {
		a.LeaderChanged = &LeaderChange{Previous: c.leader, Leader: o.Leader, Seq: cert.Seq(),
			Self: o.Leader == c.cfg.Self, WasSelf: c.leader != "" && c.leader == c.cfg.Self}
		c.leader = o.Leader
	}
}

// dropSuperseded forgets pending certificates at or below the held seq.
func (c *Core) dropSuperseded() {
	if c.held == nil {
		return
	}
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.cert.Seq() > c.held.Seq() {
			kept = append(kept, p)
		}
	}
	c.pending = kept
}

// Wanted returns the view the node should ask the runtime to certify, or
// nil when the held certificate already covers the view.
func (c *Core) Wanted() []string {
	if c.view == nil {
		return nil
	}
	if c.outcome != nil && c.outcome.MembersDigest == c.viewDigest {
		return nil
	}
	return c.view.IDs()
}

// View returns the current view, sorted.
func (c *Core) View() []string {
	if c.view == nil {
		return nil
	}
	return c.view.IDs()
}

// Rank returns id's place in the view in the order the original policy
// picks leaders (the highest ID first): 0 for the member the runtime would
// name leader of this view, and -1 when id is not in the view.
func (c *Core) Rank(id string) int {
	if c.view == nil {
		return -1
	}
	ids := c.view.IDs()
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] == id {
			return len(ids) - 1 - i
		}
	}
	return -1
}

// MinSeq returns the floor below which certificates are refused as stale
// (Config.MinSeq).
func (c *Core) MinSeq() uint64 { return c.cfg.MinSeq }

// Held returns the held certificate and its outcome, or nils.
func (c *Core) Held() (*Certificate, *Outcome) { return c.held, c.outcome }

// Leader returns the leader of the held certificate and its seq.
func (c *Core) Leader() (string, uint64) {
	if c.held == nil {
		return "", 0
	}
	return c.leader, c.held.Seq()
}

// Rejections returns the count of refused certificates by reason.
func (c *Core) Rejections() map[Reason]uint64 {
	out := make(map[Reason]uint64, len(c.rejections))
	for k, v := range c.rejections {
		out[k] = v
	}
	return out
}

// PendingCount returns how many certificates wait for the view.
func (c *Core) PendingCount() int { return len(c.pending) }

// Accepted returns how many certificates the node has accepted.
func (c *Core) Accepted() uint64 { return c.accepted }
