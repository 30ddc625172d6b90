package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func newTestTransport(t *testing.T, n *Network, seed uint64) *Transport {
	t.Helper()
	tr, err := NewTransport(n, "127.0.0.1", 0, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown() })
	return tr
}

// receive collects packets from tr until quiet passes with none, or max
// arrive.
func receive(tr *Transport, max int, quiet time.Duration) []*memberlist.Packet {
	var got []*memberlist.Packet
	for len(got) < max {
		select {
		case p := <-tr.PacketCh():
			got = append(got, p)
		case <-time.After(quiet):
			return got
		}
	}
	return got
}

// send sends n numbered packets from a to b, pacing them so that loopback
// UDP loses none on its own.
func send(t *testing.T, a, b *Transport, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := a.WriteTo([]byte(strconv.Itoa(i)), b.Addr()); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
}

func TestTransportPassesEverythingWithoutFaults(t *testing.T) {
	n := NewNetwork()
	a, b := newTestTransport(t, n, 1), newTestTransport(t, n, 2)
	const count = 500
	done := make(chan []*memberlist.Packet)
	go func() { done <- receive(b, count, 2*time.Second) }()
	send(t, a, b, count)
	got := <-done
	if len(got) != count {
		t.Fatalf("got %d of %d packets", len(got), count)
	}
	if got[0].From.String() != a.Addr() {
		t.Fatalf("packet from %s, want %s", got[0].From, a.Addr())
	}
	if st := n.Stats(); st.Dropped+st.Duplicated+st.Delayed+st.Partitioned != 0 || st.Packets != 2*count {
		t.Fatalf("stats %+v", st)
	}
}

func TestTransportDrops(t *testing.T) {
	n := NewNetwork()
	n.SetFaults(Faults{Drop: 0.3})
	a, b := newTestTransport(t, n, 1), newTestTransport(t, n, 2)
	const count = 2000
	done := make(chan []*memberlist.Packet)
	go func() { done <- receive(b, count, time.Second) }()
	send(t, a, b, count)
	got := <-done
	st := n.Stats()
	// Every drop removes exactly one packet; a packet crosses two filters,
	// so about 1-0.7² = 51% are lost.
	if uint64(len(got)) != count-st.Dropped {
		t.Fatalf("got %d packets, sent %d, dropped %d", len(got), count, st.Dropped)
	}
	if lost := float64(st.Dropped) / count; lost < 0.45 || lost > 0.57 {
		t.Fatalf("lost %.2f of the packets, want about 0.51", lost)
	}
}

func TestTransportDuplicates(t *testing.T) {
	n := NewNetwork()
	n.SetFaults(Faults{Dup: 1})
	a, b := newTestTransport(t, n, 1), newTestTransport(t, n, 2)
	const count = 200
	done := make(chan []*memberlist.Packet)
	go func() { done <- receive(b, 4*count+1, time.Second) }()
	send(t, a, b, count)
	got := <-done
	// Doubled when sent and again when received.
	if len(got) != 4*count {
		t.Fatalf("got %d packets, want %d", len(got), 4*count)
	}
	seen := map[string]int{}
	for _, p := range got {
		seen[string(p.Buf)]++
	}
	for i := 0; i < count; i++ {
		if seen[strconv.Itoa(i)] != 4 {
			t.Fatalf("packet %d arrived %d times", i, seen[strconv.Itoa(i)])
		}
	}
}

func TestTransportDelaysAndReorders(t *testing.T) {
	n := NewNetwork()
	n.SetFaults(Faults{Delay: 0.5, MaxDelay: 40 * time.Millisecond})
	a, b := newTestTransport(t, n, 1), newTestTransport(t, n, 2)
	const count = 300
	done := make(chan []*memberlist.Packet)
	go func() { done <- receive(b, count, time.Second) }()
	send(t, a, b, count)
	got := <-done
	if len(got) != count {
		t.Fatalf("got %d of %d packets", len(got), count)
	}
	reordered := 0
	for i := 1; i < len(got); i++ {
		x, _ := strconv.Atoi(string(got[i-1].Buf))
		y, _ := strconv.Atoi(string(got[i].Buf))
		if y < x {
			reordered++
		}
	}
	if reordered == 0 || n.Stats().Delayed == 0 {
		t.Fatalf("no packet reordered (%d delayed)", n.Stats().Delayed)
	}
}

func TestTransportFatesFollowTheSeed(t *testing.T) {
	// The generator is seeded with the seed and the port: a transport
	// restarted on its port with its seed replays its fates.
	fates := func(seed uint64, port int) (string, int) {
		n := NewNetwork()
		n.SetFaults(Faults{Drop: 0.2, Dup: 0.2, Delay: 0.2, MaxDelay: time.Second})
		tr, err := NewTransport(n, "127.0.0.1", port, seed)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Shutdown()
		s := ""
		for i := 0; i < 200; i++ {
			c, d := tr.fate()
			s += fmt.Sprintf("%d/%d ", c, d)
		}
		return s, tr.Port()
	}
	first, port := fates(42, 0)
	if again, _ := fates(42, port); again != first {
		t.Fatal("one seed and port, two fate sequences")
	}
	if other, _ := fates(43, port); other == first {
		t.Fatal("two seeds, one fate sequence")
	}
}

func TestTransportPartition(t *testing.T) {
	n := NewNetwork()
	a, b, c := newTestTransport(t, n, 1), newTestTransport(t, n, 2), newTestTransport(t, n, 3)
	// ext stands for a node in another process: a plain UDP socket and
	// TCP dialler that no Transport of n serves.
	ext, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	if err := n.Partition([]string{a.Addr(), ext.LocalAddr().String()}, []string{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	if !n.Partitioned() {
		t.Fatal("not partitioned")
	}
	// Packets: a and b cannot talk either way; c, on no side, talks to
	// both.
	a.WriteTo([]byte("a->b"), b.Addr())
	b.WriteTo([]byte("b->a"), a.Addr())
	ext.WriteTo([]byte("ext->b"), mustUDP(t, b.Addr()))
	c.WriteTo([]byte("c->b"), b.Addr())
	c.WriteTo([]byte("c->a"), a.Addr())
	ext.WriteTo([]byte("ext->a"), mustUDP(t, a.Addr()))
	wantOnly(t, b, "c->b")
	gotA := receive(a, 3, 300*time.Millisecond)
	if len(gotA) != 2 {
		t.Fatalf("a got %d packets, want c->a and ext->a", len(gotA))
	}

	// Streams: a cannot dial b; a stream from an unknown port reaching b
	// comes from the external side (a's) and is refused on first read;
	// c can dial b.
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("a dialled b across the partition: %v", err)
	}
	if got := streamFrom(t, b, func() (net.Conn, error) { return net.Dial("tcp", b.Addr()) }); got == nil || !errors.Is(got, ErrPartitioned) {
		t.Fatalf("external stream to b: read error %v, want a refusal", got)
	}
	if got := streamFrom(t, b, func() (net.Conn, error) { return c.DialTimeout(b.Addr(), time.Second) }); got != nil {
		t.Fatalf("c's stream to b: %v", got)
	}
	// A stream from b's side to a: b cannot dial, and a stream dialled by
	// a's side to a passes.
	if got := streamFrom(t, a, func() (net.Conn, error) { return net.Dial("tcp", a.Addr()) }); got != nil {
		t.Fatalf("external stream to a (same side): %v", got)
	}

	n.Heal()
	a.WriteTo([]byte("a->b healed"), b.Addr())
	wantOnly(t, b, "a->b healed")
	if got := streamFrom(t, b, func() (net.Conn, error) { return a.DialTimeout(b.Addr(), time.Second) }); got != nil {
		t.Fatalf("a's stream to b after healing: %v", got)
	}
	if n.Stats().Partitioned == 0 {
		t.Fatal("nothing counted as partitioned")
	}

	// External addresses on both sides cannot be attributed.
	if err := n.Partition([]string{"127.0.0.1:1"}, []string{"127.0.0.1:2"}); err == nil {
		t.Fatal("partition with external addresses on both sides accepted")
	}
}

func TestTransportDropsStreams(t *testing.T) {
	n := NewNetwork()
	a, b := newTestTransport(t, n, 1), newTestTransport(t, n, 2)
	n.SetFaults(Faults{StreamDrop: 1})
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial with StreamDrop 1: %v", err)
	}
	// An incoming stream is closed before memberlist sees it.
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dropped stream: read %v, want EOF or reset", err)
	}
	if n.Stats().StreamsDropped < 2 {
		t.Fatalf("stats %+v", n.Stats())
	}
}

// TestTransportUnderMemberlist runs two memberlists on lossy transports:
// they join through 20% loss, and a partition makes them declare each
// other failed.
func TestTransportUnderMemberlist(t *testing.T) {
	n := NewNetwork()
	n.SetFaults(Faults{Drop: 0.2, Dup: 0.1, Delay: 0.2, MaxDelay: 20 * time.Millisecond})
	mk := func(name string, seed uint64) *memberlist.Memberlist {
		tr := newTestTransport(t, n, seed)
		cfg := memberlist.DefaultLocalConfig()
		cfg.Name, cfg.Transport, cfg.LogOutput = name, tr, io.Discard
		cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult = 100*time.Millisecond, 50*time.Millisecond, 2
		cfg.GossipInterval = 20 * time.Millisecond
		ml, err := memberlist.Create(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ml.Shutdown() })
		return ml
	}
	a, b := mk("a", 1), mk("b", 2)
	err := poll(context.Background(), 10*time.Second, func() error {
		if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
			return err
		}
		if a.NumMembers() != 2 || b.NumMembers() != 2 {
			return fmt.Errorf("%d and %d members", a.NumMembers(), b.NumMembers())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("join through loss: %v", err)
	}
	if err := n.Partition([]string{a.LocalNode().Address()}, []string{b.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	err = poll(context.Background(), 15*time.Second, func() error {
		for _, m := range a.Members() {
			if m.Name == "b" {
				return fmt.Errorf("a still lists b")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("partition: %v", err)
	}
}

// TestTransportShutdownDoesNotHang shuts a transport down while delayed
// packets are pending and nobody reads its channels.
func TestTransportShutdownDoesNotHang(t *testing.T) {
	n := NewNetwork()
	n.SetFaults(Faults{Delay: 1, MaxDelay: 5 * time.Second, Dup: 0.5})
	a := newTestTransport(t, n, 1)
	b, err := NewTransport(n, "127.0.0.1", 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		a.WriteTo([]byte("x"), b.Addr())
	}
	go net.Dial("tcp", b.Addr())
	done := make(chan struct{})
	go func() { b.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown hangs")
	}
	// The port is free again at once, for a restart.
	again, err := NewTransport(n, "127.0.0.1", b.Port(), 3)
	if err != nil {
		t.Fatalf("rebinding the port: %v", err)
	}
	again.Shutdown()
}

func mustUDP(t *testing.T, addr string) *net.UDPAddr {
	t.Helper()
	u, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// wantOnly checks that tr receives exactly one packet, body want.
func wantOnly(t *testing.T, tr *Transport, want string) {
	t.Helper()
	got := receive(tr, 2, 300*time.Millisecond)
	if len(got) != 1 || string(got[0].Buf) != want {
		var bodies []string
		for _, p := range got {
			bodies = append(bodies, string(p.Buf))
		}
		t.Fatalf("%s received %q, want only %q", tr.Addr(), bodies, want)
	}
}

// streamFrom opens a stream with dial, writes to it, and returns the error
// the accepting transport's reader gets (nil when the bytes arrive).
func streamFrom(t *testing.T, to *Transport, dial func() (net.Conn, error)) error {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var in net.Conn
	select {
	case in = <-to.StreamCh():
	case <-time.After(2 * time.Second):
		t.Fatal("no stream accepted")
	}
	defer in.Close()
	in.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 5)
	_, err = io.ReadFull(in, buf)
	return err
}
