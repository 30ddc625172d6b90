// Package vsock listens on and dials AF_VSOCK stream sockets (the only
// network a Nitro enclave has), and forwards TCP connections to a vsock
// address (the host-side proxy, Forward). Sockets go through the Go
// runtime's poller via os.File, so deadlines and Close work as for TCP.
// Listen and Dial exist on Linux only.
package vsock

import (
	"fmt"
	"strconv"
	"strings"
)

// Addr is a vsock address: a context ID and a port.
type Addr struct{ CID, Port uint32 }

// Network implements net.Addr.
func (a Addr) Network() string { return "vsock" }

// String is the address in URL form, vsock://CID:PORT.
func (a Addr) String() string { return fmt.Sprintf("vsock://%d:%d", a.CID, a.Port) }

// AnyCID is VMADDR_CID_ANY: ParseURL's CID for vsock://PORT.
const AnyCID = ^uint32(0)

// ParseURL parses vsock://PORT (listen: any CID) or vsock://CID:PORT.
func ParseURL(s string) (Addr, error) {
	rest, ok := strings.CutPrefix(s, "vsock://")
	if !ok {
		return Addr{}, fmt.Errorf("vsock address %q: want vsock://PORT or vsock://CID:PORT", s)
	}
	a := Addr{CID: AnyCID}
	cid, port, hasCID := strings.Cut(rest, ":")
	if !hasCID {
		port = cid
	} else {
		c, err := strconv.ParseUint(cid, 10, 32)
		if err != nil {
			return Addr{}, fmt.Errorf("vsock address %q: bad CID %q", s, cid)
		}
		a.CID = uint32(c)
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return Addr{}, fmt.Errorf("vsock address %q: bad port %q", s, port)
	}
	a.Port = uint32(p)
	return a, nil
}
