package node

import (
	"time"

	"github.com/hashicorp/memberlist"

	"vouch/election"
)

// Messages on the wire (memberlist user messages and push/pull state) are
// one type byte followed by the body (docs/FORMATS.md, "Node messages").
const (
	msgCert byte = 1
	// msgGoodbye announces a graceful leave; the body is the member ID.
	// It only labels the departure in status ("left" rather than "dead").
	msgGoodbye byte = 2
	// maxGoodbyeName bounds the member ID a goodbye may carry.
	maxGoodbyeName = 128
	// maxMessage bounds any message a node accepts.
	maxMessage = election.MaxCertSize + 1
)

// delegate turns memberlist callbacks into inputs for the loop. memberlist
// calls it from its own goroutines; NotifyMsg must not block, so it only
// decodes and posts.
type delegate struct{ n *Node }

func (d *delegate) NodeMeta(limit int) []byte { return nil }

func (d *delegate) NotifyMsg(b []byte) { d.n.receive(b, "gossip") }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends the held certificate in push/pull exchanges, so a node
// that joins late gets it at once.
func (d *delegate) LocalState(join bool) []byte {
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
		n.metrics.dropped.WithLabelValues("empty").Inc()
		return
	case len(b) > maxMessage:
		n.metrics.dropped.WithLabelValues("oversized").Inc()
		return
	case b[0] == msgGoodbye:
		if name := string(b[1:]); name != "" && len(name) <= maxGoodbyeName {
			n.post(input{kind: inGoodbye, from: name})
		} else {
			n.metrics.dropped.WithLabelValues("malformed").Inc()
		}
		return
	case b[0] != msgCert:
		n.metrics.dropped.WithLabelValues("unknown_type").Inc()
		return
	}
	cert, err := election.DecodeCertificate(b[1:])
	if err != nil {
		n.metrics.dropped.WithLabelValues("malformed").Inc()
		n.metrics.rejected.WithLabelValues(string(election.ReasonMalformed)).Inc()
		n.log.Debug("malformed certificate dropped", "via", via, "err", err)
		return
	}
	n.post(input{kind: inCert, cert: cert, from: via})
}

// events turns memberlist's membership events into view refreshes.
type events struct{ n *Node }

// They are called with memberlist's lock held: the only safe moment to read
// the *Node, so they copy it.
func (e *events) NotifyJoin(m *memberlist.Node) {
	e.n.members.join(m)
	e.n.post(input{kind: inView})
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	// memberlist does not say whether m left or failed; a goodbye
	// message (or its absence) tells, and the loop sorts it out.
	e.n.members.leave(m, true, time.Now())
	e.n.post(input{kind: inView, from: m.Name, departed: "dead"})
}

func (e *events) NotifyUpdate(m *memberlist.Node) {
	e.n.members.join(m)
	e.n.post(input{kind: inView})
}

// certBroadcast is a certificate in memberlist's broadcast queue. A newer
// one replaces an older one still queued.
type certBroadcast struct{ msg []byte }

func (b *certBroadcast) Invalidates(other memberlist.Broadcast) bool {
	_, ok := other.(*certBroadcast)
	return ok
}
func (b *certBroadcast) Message() []byte { return b.msg }
func (b *certBroadcast) Finished()       {}
func (b *certBroadcast) Name() string    { return "vouch-cert" }

// relay spreads an accepted certificate: piggybacked on gossip when it fits
// a packet, otherwise over TCP to a few random members (every member when
// it came from the runtime), who relay it in turn.
func (n *Node) relay(cert *election.Certificate) {
	msg := append([]byte{msgCert}, cert.Encode()...)
	if len(msg) <= n.cfg.Memberlist.UDPBufferSize-64 {
		n.queue.QueueBroadcast(&certBroadcast{msg: msg})
		return
	}
	peers := n.members.list()
	n.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	sent := 0
	for _, p := range peers {
		if p.name == n.cfg.Name {
			continue
		}
		if sent >= 3 {
			break
		}
		go n.ml.SendReliable(p.node(), msg)
		sent++
	}
}
