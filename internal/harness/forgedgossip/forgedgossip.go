// Package forgedgossip builds memberlist packets that a sender outside the
// cluster forges, for tests of what a node accepts from the network.
package forgedgossip

import (
	"encoding/binary"
	"fmt"
	"net"
)

// memberlist v0.7.0 wire constants (net.go, label.go): a packet is an
// optional label header (244, length, label), a message type byte and a
// msgpack body.
const (
	labelHeader = 244
	deadMsg     = 5
)

// DeadPacket returns an unencrypted memberlist "dead" message about node,
// claimed to come from from, with the cluster's label. With from == node
// and incarnation 2^32-1 a receiver takes it as the node's own leave that
// no later message of the node can outrank.
func DeadPacket(label, node, from string, incarnation uint32) ([]byte, error) {
	if len(label) == 0 || len(label) > 255 {
		return nil, fmt.Errorf("label %q: want 1-255 bytes", label)
	}
	b := []byte{labelHeader, byte(len(label))}
	b = append(b, label...)
	b = append(b, deadMsg)
	// msgpack map of memberlist's dead struct, keyed by field name.
	b = append(b, 0x80|3)
	b = appendStr(b, "Incarnation")
	b = append(b, 0xce)
	b = binary.BigEndian.AppendUint32(b, incarnation)
	b = appendStr(b, "Node")
	b = appendStr(b, node)
	b = appendStr(b, "From")
	b = appendStr(b, from)
	return b, nil
}

// appendStr appends a msgpack string (fixstr or str8).
func appendStr(b []byte, s string) []byte {
	switch {
	case len(s) < 32:
		b = append(b, 0xa0|byte(len(s)))
	case len(s) < 256:
		b = append(b, 0xd9, byte(len(s)))
	default:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}

// Send sends packet to each addr (host:port) over UDP from a fresh socket
// that belongs to no member.
func Send(packet []byte, addrs ...string) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, a := range addrs {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		if _, err := c.WriteToUDP(packet, ua); err != nil {
			return fmt.Errorf("sending to %s: %w", a, err)
		}
	}
	return nil
}
