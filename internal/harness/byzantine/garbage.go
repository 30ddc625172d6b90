package byzantine

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlist's message types (its wire protocol; only appended to).
const (
	mlDead     byte = 5
	mlCompound byte = 7
	mlUser     byte = 8
)

// deadMessage encodes memberlist's dead message {Incarnation, Node, From}
// as memberlist does: the type byte, then a MessagePack map.
func deadMessage(incarnation uint32, node, from string) []byte {
	str := func(b []byte, s string) []byte {
		if len(s) < 32 {
			b = append(b, 0xa0|byte(len(s)))
		} else {
			b = append(b, 0xd9, byte(len(s)))
		}
		return append(b, s...)
	}
	b := []byte{mlDead, 0x83}
	b = str(b, "Incarnation")
	b = append(b, 0xce, byte(incarnation>>24), byte(incarnation>>16), byte(incarnation>>8), byte(incarnation))
	b = str(b, "Node")
	b = str(b, node)
	b = str(b, "From")
	return str(b, from)
}

// poisonLoop tells every honest node but the victim, over UDP every 30 ms,
// that the victim is dead, each time with a higher incarnation than the
// victim's last refutation can have reached.
func (l *liar) poisonLoop(ctx context.Context, g *group, victim string) {
	h := l.h
	label := "vouch/" + clusterName
	var conns []net.Conn
	var witness string
	for _, hn := range h.live() {
		if hn.name == victim {
			continue
		}
		if c, err := net.Dial("udp", hn.n.Addr()); err == nil {
			conns = append(conns, c)
			witness = hn.name
		}
	}
	inc := uint32(1 << 20)
	g.loop(ctx, 30*time.Millisecond, func() {
		inc += 1 << 10
		pkt, _ := memberlist.AddLabelHeaderToPacket(deadMessage(inc, victim, witness), label)
		for _, c := range conns {
			if _, err := c.Write(pkt); err == nil {
				h.rep.count(Poison, "attempt", 1)
			}
		}
	})
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		<-g.stop
		for _, c := range conns {
			c.Close()
		}
	}()
}

// garbage sends random and malformed packets and streams to every live
// honest node's gossip port. It returns how many it sent and how many of
// them reach the node's decoder (memberlist user messages), which the node
// must count as dropped or refused.
func (l *liar) garbage() (sent uint64) {
	h := l.h
	label := "vouch/" + clusterName
	labelled := func(b []byte) []byte {
		out, err := memberlist.AddLabelHeaderToPacket(b, label)
		if err != nil {
			panic(err)
		}
		return out
	}
	size := func(maxN int) int { return 1 + h.intN(maxN) }
	nodes := h.live()
	var wg sync.WaitGroup
	var mu sync.Mutex
	add := func(n uint64) {
		mu.Lock()
		sent += n
		mu.Unlock()
	}
	for _, hn := range nodes {
		addr := hn.n.Addr()
		// UDP.
		if conn, err := net.Dial("udp", addr); err == nil {
			var pkts [][]byte
			for range 10 {
				pkts = append(pkts, h.random(size(1400))) // no label
				pkts = append(pkts, labelled(h.random(size(1400))))
				// A user message of an unknown type, and a malformed
				// certificate, both reaching the node's decoder.
				pkts = append(pkts, labelled(append([]byte{mlUser, byte(3 + h.intN(250))}, h.random(size(1000))...)))
				pkts = append(pkts, labelled(append([]byte{mlUser, 1}, h.random(size(1000))...)))
			}
			for range 5 {
				pkts = append(pkts, labelled([]byte{mlUser}))                                   // empty user message
				pkts = append(pkts, labelled(append([]byte{mlCompound, 255}, h.random(64)...))) // lengths past the end
			}
			// A goodbye in the name of the leader: it only labels a
			// departure "left" rather than "dead" in status pages.
			_, rl := h.runtimeHeld()
			pkts = append(pkts, labelled(append([]byte{mlUser, 2}, rl...)))
			for _, p := range pkts {
				if _, err := conn.Write(p); err == nil {
					add(1)
				}
			}
			conn.Close()
		}
		// TCP: random bytes, labelled random bytes, connections that
		// say nothing.
		for i := range 9 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					return
				}
				defer conn.Close()
				add(1)
				switch i % 3 {
				case 0:
					conn.Write(h.random(size(4096)))
				case 1:
					if memberlist.AddLabelHeaderToStream(conn, label) == nil {
						conn.Write(h.random(size(4096)))
					}
				case 2:
					// Silent: held past memberlist's TCP timeout (1 s).
					time.Sleep(1200 * time.Millisecond)
				}
			}()
		}
		// TCP user messages that reach the node's decoder: unknown type,
		// garbage, and one over the size limit (1 MiB + 1).
		for range 5 {
			if l.send(hn, append([]byte{byte(3 + h.intN(250))}, h.random(size(2048))...)) {
				add(1)
			}
		}
		if l.send(hn, append([]byte{1}, make([]byte, 1<<20+8)...)) {
			add(1)
		}
	}
	wg.Wait()
	h.rep.count(Garbage, "attempt", sent)
	h.rep.note(Garbage, "per honest node: 51 UDP packets (random, labelled random, user messages of unknown type, malformed certificates, empty, compound with lengths past the end, a goodbye in the leader's name); 9 TCP streams (random, labelled random, silent for 1.2 s); 6 TCP user messages (unknown type, one of 1 MiB + 9 bytes)")
	return sent
}
