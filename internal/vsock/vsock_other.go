//go:build !linux

package vsock

import (
	"context"
	"errors"
	"net"
)

// errNoVsock: AF_VSOCK is Linux's.
var errNoVsock = errors.New("vsock: supported on Linux only")

// Listen is not supported here.
func Listen(port uint32) (net.Listener, error) { return nil, errNoVsock }

// Dial is not supported here.
func Dial(ctx context.Context, cid, port uint32) (net.Conn, error) { return nil, errNoVsock }
