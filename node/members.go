package node

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberSet is the node's own copy of the membership, filled from
// memberlist's join, update and leave callbacks. memberlist rewrites the
// *Node values it hands out as messages arrive, so reading them later would
// race; the callbacks are the one place where reading them is safe.
type memberSet struct {
	mu    sync.Mutex
	alive map[string]peer // current members, this node included
	gone  map[string]gonePeer
	// observers are the memberlist members that advertise
	// ObserverMetaKey: kept apart from alive, so that the election never
	// sees them, and not reconnected to when they fail.
	observers map[string]peer
	// sorted caches list(): the loop reads the members after every
	// input, and they change far less often.
	sorted []peer
	ver    uint64 // counts changes of alive
}

type peer struct {
	name     string
	addr     net.IP
	port     uint16
	meta     map[string]string // its Config.Meta; nil when none or malformed
	hostPort string            // addr and port, formatted once by copyPeer
}

// gonePeer is a member that failed (not one that left): the node keeps
// trying to reach it, so that two halves of a healed partition merge again.
type gonePeer struct {
	peer
	since time.Time
}

func (p peer) node() *memberlist.Node {
	return &memberlist.Node{Name: p.name, Addr: p.addr, Port: p.port}
}

func (p peer) address() string { return p.hostPort }

func copyPeer(m *memberlist.Node) peer {
	meta, _ := DecodeMeta(m.Meta) // malformed meta is shown as none
	p := peer{name: m.Name, addr: append(net.IP(nil), m.Addr...), port: m.Port, meta: meta}
	p.hostPort = net.JoinHostPort(p.addr.String(), strconv.Itoa(int(p.port)))
	return p
}

func (s *memberSet) init() {
	if s.alive == nil {
		s.alive, s.gone, s.observers = map[string]peer{}, map[string]gonePeer{}, map[string]peer{}
	}
}

// join records a member that joined or updated its meta. It returns
// false for an observer that was not a member: the current members did
// not change.
func (s *memberSet) join(m *memberlist.Node) bool {
	p := copyPeer(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if IsObserver(p.meta) {
		s.observers[p.name] = p
		if _, was := s.alive[p.name]; !was {
			return false
		}
		delete(s.alive, p.name)
	} else {
		delete(s.observers, p.name)
		s.alive[p.name] = p
	}
	s.sorted = nil
	s.ver++
	delete(s.gone, p.name)
	return true
}

// leave records a departure; failed members are remembered for reconnects.
// It returns false for an observer: the current members did not change.
func (s *memberSet) leave(m *memberlist.Node, failed bool, now time.Time) bool {
	p := copyPeer(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if _, ok := s.observers[p.name]; ok {
		delete(s.observers, p.name)
		return false
	}
	delete(s.alive, p.name)
	s.sorted = nil
	s.ver++
	if failed && s.gone != nil {
		if len(s.gone) >= 1024 {
			clear(s.gone)
		}
		s.gone[p.name] = gonePeer{peer: p, since: now}
	}
	return true
}

// observerList returns the current observers, sorted by name.
func (s *memberSet) observerList() []peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer, 0, len(s.observers))
	for _, p := range s.observers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// isObserver reports whether name is a current observer.
func (s *memberSet) isObserver(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.observers[name]
	return ok
}

// forget stops reconnecting to a member that left gracefully.
func (s *memberSet) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.gone, name)
}

// list returns the current members, sorted by name. The slice is shared:
// callers must not modify it.
func (s *memberSet) list() []peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sorted == nil {
		out := make([]peer, 0, len(s.alive))
		for _, p := range s.alive {
			out = append(out, p)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		s.sorted = out
	}
	return s.sorted
}

// names returns the current members' names, sorted, and the version of
// the set they come from.
func (s *memberSet) names() ([]string, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.alive))
	for name := range s.alive {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, s.ver
}

// version counts the changes of the current members.
func (s *memberSet) version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ver
}

// failed returns the addresses of members that failed between minAge
// and maxAge ago.
func (s *memberSet) failed(now time.Time, minAge, maxAge time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, g := range s.gone {
		if age := now.Sub(g.since); age > maxAge {
			delete(s.gone, name)
			continue
		} else if age < minAge {
			continue
		}
		out = append(out, g.address())
	}
	return out
}

// goneAddr returns the UDP address of a member that failed, or nil.
func (s *memberSet) goneAddr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gone[name]
	if !ok {
		return nil
	}
	return &net.UDPAddr{IP: g.addr, Port: int(g.port)}
}

// addr returns the UDP address of a current member, or nil.
func (s *memberSet) addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.alive[name]
	if !ok {
		return nil
	}
	return &net.UDPAddr{IP: p.addr, Port: int(p.port)}
}

// addresses returns the host:port of every current member.
func (s *memberSet) addresses() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.alive))
	for _, p := range s.alive {
		out[p.address()] = true
	}
	return out
}

// has reports whether name is a current member.
func (s *memberSet) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.alive[name]
	return ok
}

// joinLoop joins the configured peers, retrying until one answers (a node
// that starts before its peers runs alone meanwhile), then keeps
// reconnecting: memberlist never contacts a member it declared dead again,
// so without this the two halves of a healed partition would stay apart
// forever. Every ReconnectInterval it tries the configured peers that are
// not members and up to maxReconnects members that failed more than
// GossipToTheDeadTime and less than ReconnectFor ago. It stops when the
// node starts leaving.
func (n *Node) joinLoop() {
	delay := 200 * time.Millisecond
	joined := len(n.cfg.Peers) == 0
	for {
		if n.leaving.Load() {
			return
		}
		if !joined {
			if _, err := n.ml.Join(n.cfg.Peers); err == nil || n.ml.NumMembers() > 1 {
				joined, delay = true, n.cfg.ReconnectInterval
			} else {
				n.log.Debug("cannot join peers yet; retrying", "peers", n.cfg.Peers, "err", err)
				delay = min(2*delay, 5*time.Second)
			}
		} else if targets := n.reconnectTargets(time.Now()); len(targets) > 0 {
			before := n.ml.NumMembers()
			k, err := n.ml.Join(targets)
			if after := n.ml.NumMembers(); after > before {
				n.log.Info("reconnected to members", "contacted", k, "tried", targets, "members", after)
			} else {
				n.log.Debug("reconnect attempt found no new member", "contacted", k, "tried", targets, "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-n.leaveCh:
			return
		case <-time.After(delay):
		}
	}
}

// reconnectTargets lists addresses worth a join attempt: configured peers
// that are not members, and members that failed recently. A peer given by
// host name counts as a member when any address the name resolves to is
// one, so that it is not joined again every interval.
func (n *Node) reconnectTargets(now time.Time) []string {
	have := n.members.addresses()
	var out []string
	for _, a := range n.cfg.Peers {
		if !have[a] && !n.resolvesToMember(a, have) {
			out = append(out, a)
		}
	}
	// A member declared dead that is alive refutes its death itself
	// while memberlist still gossips to it (GossipToTheDeadTime): joining
	// it before then only adds a push/pull of the whole state, per node,
	// per false death, which is what starves a large forming cluster.
	// After that, a few of them per round, at random.
	failed := n.members.failed(now, n.cfg.Memberlist.GossipToTheDeadTime, n.cfg.ReconnectFor)
	rand.Shuffle(len(failed), func(i, j int) { failed[i], failed[j] = failed[j], failed[i] })
	k := 0
	for _, a := range failed {
		if k < maxReconnects && !have[a] && !slices.Contains(out, a) {
			out = append(out, a)
			k++
		}
	}
	return out
}

// maxReconnects bounds the failed members a node tries to join again in
// one ReconnectInterval; the others get their turn in later rounds.
const maxReconnects = 3

// resolvesToMember reports whether peer, a host:port whose host is a
// name, resolves to the address of a current member.
func (n *Node) resolvesToMember(peer string, have map[string]bool) bool {
	host, port, err := net.SplitHostPort(peer)
	if err != nil || net.ParseIP(host) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if have[net.JoinHostPort(ip, port)] {
			return true
		}
	}
	return false
}
