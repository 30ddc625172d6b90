package vsock

import (
	"context"
	"net"
	"testing"
	"time"
)

// Listen and Dial over vsock loopback (CID 1), when the kernel has it
// (the vsock_loopback module); skipped otherwise, saying so.
func TestForwardVsockLoopback(t *testing.T) {
	ln, err := Listen(0x7fff_0000 + uint32(time.Now().UnixNano()%0xffff))
	if err != nil {
		t.Skipf("no vsock here: %v", err)
	}
	defer ln.Close()
	echo(t, ln)
	port := ln.Addr().(Addr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	c, err := Dial(ctx, 1, port)
	cancel()
	if err != nil {
		t.Skipf("vsock loopback (CID 1) does not connect here (is vsock_loopback loaded?): %v; TestForwardTCPStandIn covers the proxy", err)
	}
	c.Close()
	roundTrip(t, func(ctx context.Context) (net.Conn, error) { return Dial(ctx, 1, port) })
}
