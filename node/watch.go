package node

import (
	"net"
	"sort"
	"strconv"
	"time"
)

// The leader watch. memberlist declares a member dead only after its
// suspicion timeout, which grows with log10 N (0.6 s at N ≤ 10, 0.84 s at
// 25, 1.2 s at 100 with the local profile) on top of the probe that must
// first pick the member. A failover cannot be faster than that. So every
// node that holds a certificate naming another member L pings L directly,
// with memberlist's Ping: the ack must echo the ping's sequence number,
// which an off-path liar cannot forge (the evidence memberlist's own
// probes rely on). When L has not acked for LeaderTimeout and at least two
// pings in a row failed, L is unreachable for this node and leaves its
// election view, in both schemes. With signed views that is the
// first-hand evidence a view must rest on (see confirm.go): the node's own
// pings failed. L keeps being pinged while memberlist lists it, and its
// first ack brings it back into the view.

// watched is a member the leader watch pings.
type watched struct {
	stop          chan struct{}
	lastAck       time.Time // or when the watch started
	fails         int       // failed pings in a row
	pings         int       // answered and failed, since the watch started
	firstFailSent time.Time // send time of the first failed ping in a row
	unreachable   bool
	since         time.Time // when it became unreachable
	armed         bool      // a check is scheduled at lastAck + timeout
}

// WatchStatus is one member the leader watch pings, in /status.
type WatchStatus struct {
	Member      string     `json:"member"`
	LastAck     time.Time  `json:"last_ack"`
	FailedPings int        `json:"failed_pings"`
	Unreachable bool       `json:"unreachable"`
	Since       *time.Time `json:"since,omitempty"`
}

func (n *Node) watchOn() bool { return n.cfg.LeaderPingInterval > 0 && n.cfg.LeaderTimeout > 0 }

// unreachable reports whether the leader watch found name unreachable.
func (n *Node) unreachable(name string) bool {
	w := n.watch[name]
	return w != nil && w.unreachable
}

// updateWatch starts and stops pingers: the held certificate's leader, if
// it is another current member, and every member found unreachable that
// memberlist still lists. Called by the loop after every input.
func (n *Node) updateWatch(now time.Time) {
	if !n.watchOn() || n.ml == nil {
		return
	}
	_, leader, _ := n.held()
	for name, w := range n.watch {
		if name == leader && n.members.has(name) {
			continue
		}
		if w.unreachable && n.members.has(name) {
			continue // keep pinging: its first ack brings it back
		}
		close(w.stop)
		delete(n.watch, name)
	}
	if leader == "" || leader == n.cfg.Name || n.watch[leader] != nil {
		return
	}
	addr := n.members.addr(leader)
	if addr == nil {
		return
	}
	if n.watch == nil {
		n.watch = map[string]*watched{}
	}
	n.pingMu.Lock()
	defer n.pingMu.Unlock()
	if n.pingClosed {
		return
	}
	w := &watched{stop: make(chan struct{}), lastAck: now}
	n.watch[leader] = w
	n.pingers.Add(1)
	go n.pinger(leader, addr, w.stop)
}

// pinger pings one member until stopped: one ping in flight, the next at
// max(previous send + LeaderPingInterval, previous completion).
func (n *Node) pinger(name string, addr net.Addr, stop chan struct{}) {
	defer n.pingers.Done()
	for {
		select {
		case <-n.pingQuit:
			return
		default:
		}
		sent := time.Now()
		_, err := n.ml.Ping(name, addr)
		select {
		case n.inbox <- input{kind: inWatch, from: name, err: err, sentAt: sent}:
		case <-stop:
			return
		case <-n.pingQuit:
			return
		}
		if d := time.Until(sent.Add(n.cfg.LeaderPingInterval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			case <-n.pingQuit:
				t.Stop()
				return
			}
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// watchResult handles one ping's outcome.
func (n *Node) watchResult(name string, err error, sent, now time.Time) {
	w := n.watch[name]
	if w == nil {
		return
	}
	w.pings++
	if err == nil {
		w.lastAck, w.fails = now, 0
		if w.unreachable {
			w.unreachable = false
			n.verdicts++
			n.log.Info("leader "+name+" reachable again: back in this node's election view", "member", name, "unreachable_for", now.Sub(w.since).Round(time.Millisecond))
			n.refreshView(now)
		}
		return
	}
	if w.fails == 0 {
		w.firstFailSent = sent
	}
	w.fails++
	n.checkWatch(name, now)
}

// checkWatch declares name unreachable when no ack arrived for the
// timeout and two pings in a row failed; otherwise, once a ping failed, it
// schedules a check for when the timeout runs out, so the verdict does not
// wait for the next ping to time out.
func (n *Node) checkWatch(name string, now time.Time) {
	w := n.watch[name]
	if w == nil || w.unreachable || w.fails == 0 {
		return
	}
	// LeaderTimeout, not stretched by this node's Lifeguard health score
	// as memberlist stretches its probe timeouts: on a host too loaded for
	// memberlist's own timeouts the watch reacts first (docs/ELECTION.md,
	// "The false-positive trade-off"); and with no relays left to send
	// nacks (a two-node cluster whose leader died) the score rises with
	// every failed probe of the dead leader, exactly when the watch must
	// not slow down.
	timeout := n.cfg.LeaderTimeout
	deadline := w.lastAck.Add(timeout)
	if w.fails < 2 || now.Before(deadline) {
		if !w.armed && now.Before(deadline) {
			w.armed = true
			n.postAt(deadline, input{kind: inWatchCheck, from: name})
		}
		return
	}
	w.unreachable, w.since = true, now
	n.verdicts++
	n.metrics.leaderLost.Inc()
	n.setDeparture(name, "unreachable", now)
	n.log.Warn("leader "+name+" unreachable: no answer to "+strconv.Itoa(w.fails)+" direct pings in a row for "+now.Sub(w.lastAck).Round(time.Millisecond).String()+
		"; leaving it out of this node's election view (memberlist still lists it; it comes back at its first answer)",
		"member", name, "failed_pings", w.fails, "timeout", timeout)
	n.watchLost = true
	n.refreshView(now)
	n.watchLost = false
	if n.term != nil {
		n.viewDirty = true
	}
}

// watchChecked handles a scheduled check.
func (n *Node) watchChecked(name string, now time.Time) {
	if w := n.watch[name]; w != nil {
		w.armed = false
		n.checkWatch(name, now)
	}
}

// leaderLostRecently reports whether the held certificate's leader is
// unreachable to this node, for at most two leases: then a node submits
// its view more often, so that the next term starts soon after the old
// lease runs out on the runtime's side.
func (n *Node) leaderLostRecently(now time.Time, lease time.Duration) bool {
	if n.term == nil {
		return false
	}
	leader, _ := n.term.Leader()
	w := n.watch[leader]
	return w != nil && w.unreachable && now.Sub(w.since) < 2*lease
}

func (n *Node) watchStatus() []WatchStatus {
	var out []WatchStatus
	for name, w := range n.watch {
		ws := WatchStatus{Member: name, LastAck: w.lastAck.UTC(), FailedPings: w.fails, Unreachable: w.unreachable}
		if w.unreachable {
			ws.Since = timePtr(w.since)
		}
		out = append(out, ws)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	return out
}
