package node

import (
	"net"
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
	// sorted caches list(): the loop reads the members after every
	// input, and they change far less often.
	sorted []peer
}

type peer struct {
	name string
	addr net.IP
	port uint16
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

func (p peer) address() string {
	return net.JoinHostPort(p.addr.String(), strconv.Itoa(int(p.port)))
}

func copyPeer(m *memberlist.Node) peer {
	return peer{name: m.Name, addr: append(net.IP(nil), m.Addr...), port: m.Port}
}

func (s *memberSet) join(m *memberlist.Node) {
	p := copyPeer(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alive == nil {
		s.alive, s.gone = map[string]peer{}, map[string]gonePeer{}
	}
	s.alive[p.name] = p
	s.sorted = nil
	delete(s.gone, p.name)
}

// leave records a departure; failed members are remembered for reconnects.
func (s *memberSet) leave(m *memberlist.Node, failed bool, now time.Time) {
	p := copyPeer(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alive == nil {
		s.alive, s.gone = map[string]peer{}, map[string]gonePeer{}
	}
	delete(s.alive, p.name)
	s.sorted = nil
	if failed && s.gone != nil {
		if len(s.gone) >= 1024 {
			clear(s.gone)
		}
		s.gone[p.name] = gonePeer{peer: p, since: now}
	}
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

// failed returns the addresses of members that failed within maxAge.
func (s *memberSet) failed(now time.Time, maxAge time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, g := range s.gone {
		if now.Sub(g.since) > maxAge {
			delete(s.gone, name)
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
