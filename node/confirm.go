package node

import (
	"net"
	"time"
)

// With signed views, a node's view is its testimony to the runtime, so it
// drops a member only on first-hand evidence. memberlist's "dead" messages
// are gossip: any member can send one about anyone (the gossip key, shared
// by all members, does not say who). So when memberlist reports a member
// dead, the node keeps it in its view and pings it directly; only after
// confirmFails direct pings in a row go unanswered does it leave the view.
// A member that answers is kept and rejoined. A lying member can then no
// longer evict a live leader by gossiping that it died.

// confirmFails is how many direct pings in a row must fail. memberlist has
// already failed its own direct and indirect probes by then; one more
// first-hand failure is the evidence that was missing, and each ping costs
// up to a probe interval of failover time.
const confirmFails = 1

// suspect is a member memberlist reports dead that this node has not yet
// confirmed dead itself.
type suspect struct {
	addr     net.Addr
	fails    int
	inFlight bool
	answered bool
	lastJoin time.Time
}

// suspectDeparture starts confirming a reported death.
func (n *Node) suspectDeparture(name string, now time.Time) {
	if n.term == nil || name == n.cfg.Name || n.unreachable(name) {
		// Not needed when the leader watch's own pings already failed:
		// that is the first-hand evidence, and re-adding the member to
		// the view until one more ping fails would undo the watch.
		return
	}
	addr := n.members.goneAddr(name)
	if addr == nil {
		return
	}
	if n.suspects == nil {
		n.suspects = map[string]*suspect{}
	}
	n.suspects[name] = &suspect{addr: addr}
}

// confirmSuspects pings every suspect that has no ping under way.
func (n *Node) confirmSuspects() {
	for name, s := range n.suspects {
		if s.inFlight {
			continue
		}
		if n.members.has(name) {
			delete(n.suspects, name) // back in memberlist's view
			continue
		}
		s.inFlight = true
		go func(name string, addr net.Addr) {
			_, err := n.ml.Ping(name, addr)
			n.post(input{kind: inPing, from: name, err: err})
		}(name, s.addr)
	}
}

// pinged handles a direct ping's outcome; it reports whether the view
// changed.
func (n *Node) pinged(name string, err error, now time.Time) bool {
	s := n.suspects[name]
	if s == nil {
		return false
	}
	s.inFlight = false
	if err == nil {
		s.fails = 0
		if !s.answered {
			s.answered = true
			n.metrics.dropped.WithLabelValues("dead_rumour").Inc()
			n.log.Warn("memberlist reports a member dead, but it answers our own pings: keeping it in this node's view", "member", name)
		}
		if now.Sub(s.lastJoin) > time.Second {
			s.lastJoin = now
			go n.ml.Join([]string{s.addr.String()})
		}
		return false
	}
	s.fails++
	if s.fails < confirmFails {
		return false
	}
	delete(n.suspects, name)
	n.log.Debug("confirmed a member's death with our own pings", "member", name)
	return true
}
