// Package chaos injects faults into a vouch cluster and checks what the
// nodes did under them.
//
// Transport wraps memberlist's NetTransport and drops, delays and
// duplicates packets, drops TCP streams, and partitions the cluster, all
// decided by a seeded random generator. Hand one to a node through its
// memberlist configuration:
//
//	cfg := node.DefaultLocalConfig()
//	t, _ := chaos.NewTransport(net, "127.0.0.1", port, seed)
//	cfg.Memberlist.Transport = t
//
// The checker (Check, CheckFiles) reads the nodes' JSON-lines event logs
// (node.Config.EventLog, `vouch node --event-log`) and reports every
// violation of the election's safety rules. The chaos and soak tests of
// this package drive a runtime and ten nodes with both; see
// docs/BENCHMARKS.md, "Chaos and soak".
package chaos

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Faults are the packet-level fault rates, probabilities from 0 to 1. Each
// transport rolls them independently for every packet it sends and every
// packet it receives, so a packet between two lossy transports crosses two
// filters.
type Faults struct {
	// Drop loses a packet.
	Drop float64
	// Dup delivers a packet twice.
	Dup float64
	// Delay holds a packet back for up to MaxDelay (uniformly), which also
	// reorders it.
	Delay    float64
	MaxDelay time.Duration
	// StreamDrop refuses an outgoing TCP stream, or closes an incoming
	// one before memberlist reads it.
	StreamDrop float64
}

// Zero reports whether f injects nothing.
func (f Faults) Zero() bool {
	return f.Drop <= 0 && f.Dup <= 0 && f.Delay <= 0 && f.StreamDrop <= 0
}

func (f Faults) String() string {
	return fmt.Sprintf("drop %.0f%%, dup %.0f%%, delay %.0f%% (≤%v), stream drop %.0f%%",
		100*f.Drop, 100*f.Dup, 100*f.Delay, f.MaxDelay, 100*f.StreamDrop)
}

// Stats counts what the transports of a network did.
type Stats struct {
	Packets        uint64 // packets seen, sent and received
	Dropped        uint64 // lost to Faults.Drop
	Duplicated     uint64
	Delayed        uint64
	Partitioned    uint64 // packets and streams refused by a partition
	StreamsDropped uint64 // lost to Faults.StreamDrop
}

// ErrPartitioned is returned when a stream is refused by a partition or
// dropped.
var ErrPartitioned = errors.New("chaos: connection refused by fault injection")

// Network is the fault state shared by the transports of one process: the
// packet fault rates, the partition, and which transport dialled each TCP
// stream (so that the accepting side knows whom a stream comes from).
//
// A partition names two sets of gossip addresses ("host:port"). Traffic
// between the sets is refused in both directions; traffic with addresses in
// neither set passes. Addresses that no Transport of this Network serves
// (nodes in other processes) are "external": their UDP packets carry their
// gossip address and are filtered by it, but their TCP streams come from
// ephemeral ports, so a stream from an unknown port is attributed to the
// side holding the external addresses. All external addresses must
// therefore be on one side.
type Network struct {
	faults atomic.Pointer[Faults]

	mu       sync.Mutex
	side     map[string]int  // address -> 1 or 2 while partitioned
	external int             // the side of the external addresses, or 0
	known    map[string]bool // addresses ever served by a Transport here
	dialers  map[string]string

	packets, dropped, duplicated, delayed, partitioned, streamsDropped atomic.Uint64
}

// NewNetwork returns a network with no faults and no partition.
func NewNetwork() *Network {
	n := &Network{known: map[string]bool{}, dialers: map[string]string{}}
	n.faults.Store(&Faults{})
	return n
}

// SetFaults replaces the packet fault rates of every transport.
func (n *Network) SetFaults(f Faults) { n.faults.Store(&f) }

// Faults returns the current fault rates.
func (n *Network) Faults() Faults { return *n.faults.Load() }

// Partition refuses traffic between the addresses of a and those of b
// until Heal. It replaces any earlier partition.
func (n *Network) Partition(a, b []string) error {
	side := map[string]int{}
	for i, set := range [][]string{a, b} {
		for _, addr := range set {
			c, err := canonAddr(addr)
			if err != nil {
				return err
			}
			if s, ok := side[c]; ok && s != i+1 {
				return fmt.Errorf("chaos: %s is on both sides of the partition", addr)
			}
			side[c] = i + 1
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	external := 0
	for addr, s := range side {
		if n.known[addr] {
			continue
		}
		if external != 0 && external != s {
			return fmt.Errorf("chaos: external addresses on both sides of the partition: their streams could not be attributed")
		}
		external = s
	}
	n.side, n.external = side, external
	return nil
}

// Heal ends the partition.
func (n *Network) Heal() {
	n.mu.Lock()
	n.side, n.external = nil, 0
	n.mu.Unlock()
}

// Partitioned reports whether a partition is in force.
func (n *Network) Partitioned() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.side != nil
}

// Stats returns the counters of every transport of the network.
func (n *Network) Stats() Stats {
	return Stats{Packets: n.packets.Load(), Dropped: n.dropped.Load(), Duplicated: n.duplicated.Load(),
		Delayed: n.delayed.Load(), Partitioned: n.partitioned.Load(), StreamsDropped: n.streamsDropped.Load()}
}

// blocked reports whether the partition refuses traffic between from and
// to (canonical addresses).
func (n *Network) blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.side == nil {
		return false
	}
	a, b := n.side[from], n.side[to]
	return a != 0 && b != 0 && a != b
}

// blockedStream reports whether the partition refuses a stream accepted by
// self from the remote address remote.
func (n *Network) blockedStream(remote, self string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.side == nil {
		return false
	}
	mine := n.side[self]
	if mine == 0 {
		return false
	}
	if from, ok := n.dialers[remote]; ok {
		s := n.side[from]
		return s != 0 && s != mine
	}
	return n.external != 0 && n.external != mine
}

func (n *Network) addDialer(local, owner string) {
	n.mu.Lock()
	n.dialers[local] = owner
	n.mu.Unlock()
}

func (n *Network) removeDialer(local string) {
	n.mu.Lock()
	delete(n.dialers, local)
	n.mu.Unlock()
}

func (n *Network) register(addr string) {
	n.mu.Lock()
	n.known[addr] = true
	n.mu.Unlock()
}

// Transport is a memberlist.NodeAwareTransport that injects the faults of
// its Network into a memberlist.NetTransport.
type Transport struct {
	inner *memberlist.NetTransport
	net   *Network
	self  string

	rngMu sync.Mutex
	rng   *rand.Rand

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	closing  chan struct{} // closed when Shutdown starts: deliver nothing more
	done     chan struct{} // closed when the inner transport is down
	pumps    sync.WaitGroup
	timers   sync.WaitGroup
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// NewTransport listens on bindAddr:port (UDP and TCP; port 0 picks one)
// and returns a lossy transport on network n. seed seeds its fault
// decisions.
func NewTransport(n *Network, bindAddr string, port int, seed uint64) (*Transport, error) {
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bindAddr},
		BindPort:  port,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, err
	}
	self, err := canonAddr(net.JoinHostPort(bindAddr, strconv.Itoa(inner.GetAutoBindPort())))
	if err != nil {
		inner.Shutdown()
		return nil, err
	}
	t := &Transport{
		inner:    inner,
		net:      n,
		self:     self,
		rng:      rand.New(rand.NewPCG(seed, uint64(inner.GetAutoBindPort()))),
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	n.register(self)
	t.pumps.Add(2)
	go t.pumpPackets()
	go t.pumpStreams()
	return t, nil
}

// Addr returns the transport's gossip address, host:port.
func (t *Transport) Addr() string { return t.self }

// Port returns the port the transport listens on.
func (t *Transport) Port() int { return t.inner.GetAutoBindPort() }

func (t *Transport) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	t.rngMu.Lock()
	defer t.rngMu.Unlock()
	return t.rng.Float64() < p
}

func (t *Transport) delay(max time.Duration) time.Duration {
	if max <= 0 {
		max = 50 * time.Millisecond
	}
	t.rngMu.Lock()
	defer t.rngMu.Unlock()
	return time.Duration(t.rng.Int64N(int64(max))) + 1
}

// fate decides what happens to one packet: how many copies go through
// (0, 1 or 2) and after how long.
func (t *Transport) fate() (copies int, after time.Duration) {
	n := t.net
	n.packets.Add(1)
	f := n.faults.Load()
	if t.roll(f.Drop) {
		n.dropped.Add(1)
		return 0, 0
	}
	copies = 1
	if t.roll(f.Dup) {
		n.duplicated.Add(1)
		copies = 2
	}
	if t.roll(f.Delay) {
		n.delayed.Add(1)
		after = t.delay(f.MaxDelay)
	}
	return copies, after
}

// later runs f after d unless the transport shuts down first.
func (t *Transport) later(d time.Duration, f func()) {
	t.timers.Add(1)
	go func() {
		defer t.timers.Done()
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			f()
		case <-t.closing:
		}
	}()
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. A packet lost
// to a fault or a partition is reported as sent, as a real network would.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	to, err := canonAddr(a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	if t.net.blocked(t.self, to) {
		t.net.partitioned.Add(1)
		return time.Now(), nil
	}
	copies, after := t.fate()
	if copies == 0 {
		return time.Now(), nil
	}
	if after > 0 {
		buf := append([]byte(nil), b...)
		t.later(after, func() {
			for i := 0; i < copies; i++ {
				t.inner.WriteToAddress(buf, a)
			}
		})
		return time.Now(), nil
	}
	var at time.Time
	for i := 0; i < copies; i++ {
		if at, err = t.inner.WriteToAddress(b, a); err != nil {
			return at, err
		}
	}
	return at, nil
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// pumpPackets filters the inner transport's packets into packetCh.
func (t *Transport) pumpPackets() {
	defer t.pumps.Done()
	for {
		var p *memberlist.Packet
		select {
		case p = <-t.inner.PacketCh():
		case <-t.done:
			return
		}
		if from, err := canonAddr(p.From.String()); err == nil && t.net.blocked(from, t.self) {
			t.net.partitioned.Add(1)
			continue
		}
		copies, after := t.fate()
		deliver := func() {
			for i := 0; i < copies; i++ {
				q := *p
				if i > 0 {
					q.Buf = append([]byte(nil), p.Buf...)
				}
				q.Timestamp = time.Now()
				select {
				case t.packetCh <- &q:
				case <-t.closing:
					return
				}
			}
		}
		if copies == 0 {
			continue
		}
		if after > 0 {
			t.later(after, deliver)
		} else {
			deliver()
		}
	}
}

// DialTimeout implements memberlist.Transport.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport. It refuses
// streams across a partition and drops some at random; the streams it
// opens are registered so the accepting transport knows who dialled.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	to, err := canonAddr(a.Addr)
	if err != nil {
		return nil, err
	}
	if t.net.blocked(t.self, to) {
		t.net.partitioned.Add(1)
		return nil, fmt.Errorf("dial %s: %w (partition)", a.Addr, ErrPartitioned)
	}
	if t.roll(t.net.faults.Load().StreamDrop) {
		t.net.streamsDropped.Add(1)
		return nil, fmt.Errorf("dial %s: %w (stream drop)", a.Addr, ErrPartitioned)
	}
	c, err := t.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	local := c.LocalAddr().String()
	t.net.addDialer(local, t.self)
	return &dialedConn{Conn: c, release: func() { t.net.removeDialer(local) }}, nil
}

// dialedConn unregisters its local address when closed.
type dialedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *dialedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// StreamCh implements memberlist.Transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *Transport) pumpStreams() {
	defer t.pumps.Done()
	for {
		var c net.Conn
		select {
		case c = <-t.inner.StreamCh():
		case <-t.done:
			return
		}
		if t.roll(t.net.faults.Load().StreamDrop) {
			t.net.streamsDropped.Add(1)
			c.Close()
			continue
		}
		select {
		case t.streamCh <- &acceptedConn{Conn: c, t: t}:
		case <-t.closing:
			c.Close()
		}
	}
}

// acceptedConn checks the partition on its first read. By then the dialler
// has registered the stream (it registers before it writes), so the
// stream's origin is known.
type acceptedConn struct {
	net.Conn
	t       *Transport
	checked atomic.Bool
	refused atomic.Bool
}

func (c *acceptedConn) Read(p []byte) (int, error) {
	if c.refused.Load() {
		return 0, ErrPartitioned
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.checked.CompareAndSwap(false, true) {
		if c.t.net.blockedStream(c.Conn.RemoteAddr().String(), c.t.self) {
			c.t.net.partitioned.Add(1)
			c.refused.Store(true)
			c.Conn.Close()
			return 0, ErrPartitioned
		}
	}
	return n, err
}

// Shutdown implements memberlist.Transport: it closes the listeners and
// stops every pending delivery.
func (t *Transport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.closing)
		// The pumps keep draining the inner transport while it shuts
		// down: its listeners block until someone takes their packets.
		err = t.inner.Shutdown()
		close(t.done)
		t.pumps.Wait()
		t.timers.Wait()
	})
	return err
}

// canonAddr normalizes host:port so that addresses compare equal.
func canonAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("chaos: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		host = ip.String()
	}
	return net.JoinHostPort(host, port), nil
}
