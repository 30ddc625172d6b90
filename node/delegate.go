package node

import (
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/election"
)

// Messages on the wire (memberlist user messages and push/pull state) are
// one type byte followed by the body (docs/FORMATS.md, "Node messages").
const (
	msgCert byte = 1
	// msgGoodbye announces a graceful leave; the body is the member ID.
	// It labels the departure in status ("left" rather than "dead"), and
	// the node stops trying to reconnect to a member that left.
	msgGoodbye byte = 2
	// msgResign announces that the sender resigned its leadership; the
	// body is its member ID. Receivers leave it out of their election
	// view for the hold (docs/ELECTION.md, "Resigning").
	msgResign byte = 3
	// maxGoodbyeName bounds the member ID a goodbye may carry.
	maxGoodbyeName = 128
	// maxMessage bounds any message a node accepts.
	maxMessage = election.MaxCertSize + 1
)

// delegate turns memberlist callbacks into inputs for the loop. memberlist
// calls it from its own goroutines; NotifyMsg must not block, so it only
// decodes and posts.
type delegate struct{ n *Node }

// NodeMeta returns Config.Meta, encoded and checked against limit by New.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.n.meta) > limit {
		return nil
	}
	return d.n.meta
}

func (d *delegate) NotifyMsg(b []byte) { d.n.receive(b, "gossip") }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends the held certificate in push/pull exchanges, so a node
// that joins late gets it at once.
func (d *delegate) LocalState(join bool) []byte {
	if d.n.cfg.Observer {
		return nil // an observer spreads nothing
	}
	if st := d.n.status.Load(); st != nil && st.cert != nil {
		return append([]byte{msgCert}, st.cert.Encode()...)
	}
	return nil
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) > 0 {
		d.n.receive(buf, "push-pull")
	}
}

// receive decodes a message from a peer. Malformed, oversized or foreign
// messages are dropped and counted.
func (n *Node) receive(b []byte, via string) {
	switch {
	case len(b) == 0:
		n.metrics.drop("empty")
		return
	case len(b) > maxMessage:
		n.metrics.drop("oversized")
		return
	case b[0] == msgGoodbye || b[0] == msgResign:
		if name := string(b[1:]); n.members.isObserver(name) {
			n.metrics.drop("observer") // not a member of the election
		} else if name != "" && len(name) <= maxGoodbyeName {
			kind := inGoodbye
			if b[0] == msgResign {
				kind = inResigned
			}
			n.post(input{kind: kind, from: name})
		} else {
			n.metrics.drop("malformed")
		}
		return
	case b[0] != msgCert:
		n.metrics.drop("unknown_type")
		return
	}
	cert, err := election.DecodeCertificate(b[1:])
	if err != nil {
		n.metrics.drop("malformed")
		n.metrics.malformedCerts.Add(1)
		n.metrics.rejected.WithLabelValues(string(election.ReasonMalformed)).Inc()
		n.log.Debug("malformed certificate dropped", "via", via, "err", err)
		return
	}
	n.post(input{kind: inCert, cert: cert, from: via})
}

// events turns memberlist's membership events into view refreshes.
type events struct{ n *Node }

// They are called with memberlist's lock held: the only safe moment to read
// the *Node, so they copy it. Observers stop here: they never reach the
// loop, so they cause no view change and no runtime call.
func (e *events) NotifyJoin(m *memberlist.Node) {
	if e.n.members.join(m) {
		e.n.post(input{kind: inView})
	}
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	if m.Name == e.n.cfg.Name {
		return // this node leaving: not a departure to report
	}
	// memberlist does not say whether m left or failed (it keeps the
	// state in a field it does not hand out); a goodbye message (or its
	// absence) tells, and the loop sorts it out.
	if e.n.members.leave(m, true, time.Now()) {
		e.n.post(input{kind: inView, from: m.Name, departed: "dead"})
	}
}

func (e *events) NotifyUpdate(m *memberlist.Node) {
	if e.n.members.join(m) {
		e.n.post(input{kind: inView})
	}
}

// certBroadcast is a certificate in memberlist's broadcast queue. A queued
// certificate is replaced only by one that supersedes it: the same scheme
// and a higher seq (member list) or a higher term, or the same term with a
// later receipt (signed views). It must not be a memberlist
// NamedBroadcast: the queue replaces those by name, whatever Invalidates
// says.
type certBroadcast struct {
	msg   []byte
	views bool   // a term certificate (signed views)
	term  uint64 // signed views only
	seq   uint64 // the receipt's seq
}

func newCertBroadcast(cert *election.Certificate, views bool, term uint64) *certBroadcast {
	return &certBroadcast{msg: append([]byte{msgCert}, cert.Encode()...), views: views, term: term, seq: cert.Seq()}
}

// Invalidates implements memberlist.Broadcast.
func (b *certBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*certBroadcast)
	if !ok || o.views != b.views {
		return false
	}
	if b.views {
		return b.term > o.term || (b.term == o.term && b.seq > o.seq)
	}
	return b.seq > o.seq
}
func (b *certBroadcast) Message() []byte { return b.msg }
func (b *certBroadcast) Finished()       {}

// relay spreads an accepted certificate: piggybacked on gossip when it fits
// a packet, otherwise over TCP to a few random members, who relay it in
// turn. With direct (a failover certificate this node got from the
// runtime) it also goes straight to every member (UDP when it fits a
// packet, TCP otherwise): one message per member, once per failover, so
// that the failover does not wait for gossip rounds to reach everyone
// (about log3 N rounds of GossipInterval); gossip repairs what is lost.
// Only failovers: while a cluster forms, the leader changes with every
// join, and sending every such certificate to every member (each copy
// verified by its receiver) saturated 100 nodes sharing two cores.
func (n *Node) relay(cert *election.Certificate, term uint64, fromRuntime bool) {
	b := newCertBroadcast(cert, n.term != nil, term)
	msg := b.msg
	fits := len(msg) <= n.cfg.Memberlist.UDPBufferSize-64
	if fits {
		n.queue.QueueBroadcast(b)
		if !fromRuntime {
			return // gossip alone: the common case needs no peer list
		}
	}
	var peers []peer
	for _, p := range n.members.list() {
		if out, _ := n.sm.Unreachable(p.name); p.name != n.cfg.Name && !out && !n.sm.Ignored(p.name) {
			peers = append(peers, p)
		}
	}
	if fits {
		// Observers too: `vouch status --watch` shows a failover at once.
		for _, p := range append(peers, n.members.observerList()...) {
			n.ml.SendBestEffort(p.node(), msg)
		}
		return
	}
	n.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	if !fromRuntime && len(peers) > 3 {
		peers = peers[:3] // relays: observers relay nothing
	} else if fromRuntime {
		peers = append(peers, n.members.observerList()...)
	}
	for _, p := range peers {
		go n.ml.SendReliable(p.node(), msg)
	}
}
