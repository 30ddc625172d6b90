package scale

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/election"
)

// Counters count what one node sends: UDP packets and their bytes (as on
// the wire, label included), TCP streams opened and bytes written on any
// stream, and, when the transport classifies packets, the packets that
// carry a certificate newer than CertFloor.
type Counters struct {
	Packets     atomic.Int64
	Bytes       atomic.Int64
	Streams     atomic.Int64
	StreamBytes atomic.Int64
	// CertPackets counts UDP packets carrying at least one certificate
	// message (node message type 1) whose seq (term with signed views) is
	// above CertFloor; CertMsgs counts the certificate messages themselves.
	CertPackets atomic.Int64
	CertMsgs    atomic.Int64
	CertFloor   atomic.Uint64
}

// Snapshot is a copy of Counters.
type Snapshot struct {
	Packets, Bytes, Streams, StreamBytes, CertPackets, CertMsgs int64
}

// Snap copies the counters.
func (c *Counters) Snap() Snapshot {
	return Snapshot{c.Packets.Load(), c.Bytes.Load(), c.Streams.Load(), c.StreamBytes.Load(), c.CertPackets.Load(), c.CertMsgs.Load()}
}

// Sub returns s − o.
func (s Snapshot) Sub(o Snapshot) Snapshot {
	return Snapshot{s.Packets - o.Packets, s.Bytes - o.Bytes, s.Streams - o.Streams, s.StreamBytes - o.StreamBytes, s.CertPackets - o.CertPackets, s.CertMsgs - o.CertMsgs}
}

// Add returns s + o.
func (s Snapshot) Add(o Snapshot) Snapshot {
	return Snapshot{s.Packets + o.Packets, s.Bytes + o.Bytes, s.Streams + o.Streams, s.StreamBytes + o.StreamBytes, s.CertPackets + o.CertPackets, s.CertMsgs + o.CertMsgs}
}

// CountingTransport wraps memberlist's NetTransport and counts what the
// node sends. Give it to a node through node.Config.Memberlist.Transport.
type CountingTransport struct {
	inner    *memberlist.NetTransport
	c        *Counters
	classify bool
	streamCh chan net.Conn
	stop     chan struct{} // closed when Shutdown starts
	done     chan struct{} // closed when the NetTransport has shut down
	stopped  atomic.Bool
}

var _ memberlist.NodeAwareTransport = (*CountingTransport)(nil)

// NewCountingTransport binds a NetTransport on addr with a free port. When
// classify is set, every UDP packet sent is decoded (label, CRC,
// compression, compound messages) to count the certificates it carries;
// that costs CPU, so only the message-count benchmark turns it on.
func NewCountingTransport(addr string, c *Counters, classify bool) (*CountingTransport, error) {
	var nt *memberlist.NetTransport
	var err error
	for range 10 { // binding UDP and TCP on one free port can race
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{addr}, BindPort: 0, Logger: nil})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	t := &CountingTransport{inner: nt, c: c, classify: classify, streamCh: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
	go t.forwardStreams()
	return t, nil
}

// forwardStreams hands accepted connections to memberlist. It drains the
// NetTransport's (unbuffered) stream channel until that has shut down:
// its listener blocks on the channel, and its Shutdown waits for it.
func (t *CountingTransport) forwardStreams() {
	for {
		select {
		case conn := <-t.inner.StreamCh():
			select {
			case t.streamCh <- &countingConn{Conn: conn, c: t.c}:
			case <-t.stop:
				conn.Close()
			}
		case <-t.done:
			return
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *CountingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *CountingTransport) count(b []byte) {
	t.c.Packets.Add(1)
	t.c.Bytes.Add(int64(len(b)))
	if t.classify {
		if msgs := certsIn(b, t.c.CertFloor.Load()); msgs > 0 {
			t.c.CertPackets.Add(1)
			t.c.CertMsgs.Add(int64(msgs))
		}
	}
}

// WriteTo implements memberlist.Transport.
func (t *CountingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.count(b)
	return t.inner.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *CountingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	t.count(b)
	return t.inner.WriteToAddress(b, addr)
}

// PacketCh implements memberlist.Transport.
func (t *CountingTransport) PacketCh() <-chan *memberlist.Packet { return t.inner.PacketCh() }

// DialTimeout implements memberlist.Transport.
func (t *CountingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	t.c.Streams.Add(1)
	return &countingConn{Conn: conn, c: t.c}, nil
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *CountingTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.inner.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	t.c.Streams.Add(1)
	return &countingConn{Conn: conn, c: t.c}, nil
}

// StreamCh implements memberlist.Transport.
func (t *CountingTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport.
func (t *CountingTransport) Shutdown() error {
	if !t.stopped.CompareAndSwap(false, true) {
		return nil
	}
	close(t.stop)
	err := t.inner.Shutdown()
	close(t.done)
	return err
}

type countingConn struct {
	net.Conn
	c *Counters
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.StreamBytes.Add(int64(n))
	return n, err
}

// memberlist's message types (memberlist/net.go; the numbers are part of
// its protocol).
const (
	mlCompound = 7
	mlUser     = 8
	mlCompress = 9
	mlHasCRC   = 12
	mlHasLabel = 244
	nodeCert   = 1 // node's msgCert
)

// certsIn counts the certificate messages with a seq above floor in one
// memberlist packet as sent.
func certsIn(b []byte, floor uint64) int {
	if len(b) >= 2 && b[0] == mlHasLabel {
		n := int(b[1])
		if len(b) < 2+n {
			return 0
		}
		b = b[2+n:]
	}
	return certsInMsg(b, floor, 0)
}

func certsInMsg(b []byte, floor uint64, depth int) int {
	if len(b) == 0 || depth > 4 {
		return 0
	}
	switch b[0] {
	case mlHasCRC:
		if len(b) < 5 {
			return 0
		}
		return certsInMsg(b[5:], floor, depth+1)
	case mlCompress:
		var c struct {
			Algo uint8
			Buf  []byte
		}
		if err := codec.NewDecoder(bytes.NewReader(b[1:]), &codec.MsgpackHandle{}).Decode(&c); err != nil || c.Algo != 0 {
			return 0
		}
		r := lzw.NewReader(bytes.NewReader(c.Buf), lzw.LSB, 8)
		plain, err := io.ReadAll(io.LimitReader(r, 1<<20))
		r.Close()
		if err != nil {
			return 0
		}
		return certsInMsg(plain, floor, depth+1)
	case mlCompound:
		b = b[1:]
		if len(b) < 1 {
			return 0
		}
		parts := int(b[0])
		b = b[1:]
		if len(b) < 2*parts {
			return 0
		}
		lens := make([]int, parts)
		for i := range lens {
			lens[i] = int(binary.BigEndian.Uint16(b[2*i:]))
		}
		b = b[2*parts:]
		total := 0
		for _, l := range lens {
			if len(b) < l {
				break
			}
			total += certsInMsg(b[:l], floor, depth+1)
			b = b[l:]
		}
		return total
	case mlUser:
		if len(b) < 2 || b[1] != nodeCert {
			return 0
		}
		cert, err := election.DecodeCertificate(b[2:])
		if err != nil {
			return 0
		}
		if certNumber(cert) > floor {
			return 1
		}
	}
	return 0
}

// certNumber is what orders a certificate: its term with signed views,
// else its receipt seq.
func certNumber(c *election.Certificate) uint64 {
	var o struct {
		Term *uint64 `json:"term"`
	}
	if json.Unmarshal(c.Output, &o) == nil && o.Term != nil {
		return *o.Term
	}
	return c.Seq()
}
