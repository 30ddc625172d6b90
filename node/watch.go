package node

import (
	"net"
	"time"
)

// The leader watch's decisions (when a leader is unreachable, when it is
// back) are the machine's (package nodecore); here are its pingers: one
// goroutine per watched member, with memberlist's Ping, whose ack must
// echo the ping's sequence number, which an off-path liar cannot forge.

// WatchStatus is one member the leader watch pings, in /status.
type WatchStatus struct {
	Member      string     `json:"member"`
	LastAck     time.Time  `json:"last_ack"`
	FailedPings int        `json:"failed_pings"`
	Unreachable bool       `json:"unreachable"`
	Since       *time.Time `json:"since,omitempty"`
}

// startPinger starts pinging name, a current member, until Unwatch.
func (n *Node) startPinger(name string) {
	addr := n.members.addr(name)
	if addr == nil {
		return
	}
	n.pingMu.Lock()
	defer n.pingMu.Unlock()
	if n.pingClosed {
		return
	}
	if n.watchStop == nil {
		n.watchStop = map[string]chan struct{}{}
	}
	stop := make(chan struct{})
	n.watchStop[name] = stop
	n.pingers.Add(1)
	go n.pinger(name, addr, stop)
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

func (n *Node) watchStatus() []WatchStatus {
	var out []WatchStatus
	for _, w := range n.sm.WatchStates() {
		ws := WatchStatus{Member: w.Member, LastAck: w.LastAck.UTC(), FailedPings: w.FailedPings, Unreachable: w.Unreachable}
		if w.Unreachable {
			ws.Since = timePtr(w.Since)
		}
		out = append(out, ws)
	}
	return out
}
