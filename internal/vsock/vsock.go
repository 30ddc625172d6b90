//go:build linux

package vsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Listen listens on port for any CID (VMADDR_CID_ANY).
func Listen(port uint32) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: bind port %d: %w", port, err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: listen: %w", err)
	}
	f := os.NewFile(uintptr(fd), "vsock-listener")
	return &listener{f: f, addr: Addr{CID: unix.VMADDR_CID_ANY, Port: port}}, nil
}

type listener struct {
	f    *os.File
	addr Addr
}

func (l *listener) Accept() (net.Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var sa unix.Sockaddr
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err // the listener was closed
	}
	if aerr != nil {
		return nil, fmt.Errorf("vsock: accept: %w", aerr)
	}
	remote := Addr{}
	if vm, ok := sa.(*unix.SockaddrVM); ok {
		remote = Addr{CID: vm.CID, Port: vm.Port}
	}
	return &conn{f: os.NewFile(uintptr(nfd), "vsock"), local: l.addr, remote: remote}, nil
}

func (l *listener) Close() error   { return l.f.Close() }
func (l *listener) Addr() net.Addr { return l.addr }

// Dial connects to cid:port, within ctx.
func Dial(ctx context.Context, cid, port uint32) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "vsock")
	to := Addr{CID: cid, Port: port}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil && err != unix.EINPROGRESS {
		f.Close()
		return nil, fmt.Errorf("vsock: connect %s: %w", to, err)
	}
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	// Wait until the socket is writable (the first call only arms the
	// poller), then read the connect's outcome.
	var soErr int
	first := true
	werr := rc.Write(func(fd uintptr) bool {
		if first {
			first = false
			return false
		}
		soErr, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		return true
	})
	switch {
	case werr != nil:
		f.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vsock: connect %s: %w", to, ctx.Err())
		}
		return nil, fmt.Errorf("vsock: connect %s: %w", to, werr)
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("vsock: connect %s: %w", to, err)
	case soErr != 0:
		f.Close()
		return nil, fmt.Errorf("vsock: connect %s: %w", to, unix.Errno(soErr))
	}
	f.SetWriteDeadline(time.Time{})
	return &conn{f: f, remote: to}, nil
}

// conn is a connected vsock socket. It wraps the file rather than
// embedding it, so io.Copy takes the plain read/write path, not
// os.File's sendfile or splice.
type conn struct {
	f             *os.File
	local, remote Addr
}

func (c *conn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *conn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *conn) Close() error                       { return c.f.Close() }
func (c *conn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

func (c *conn) LocalAddr() net.Addr { return c.local }

// CloseWrite shuts the sending side, so the peer reads EOF.
func (c *conn) CloseWrite() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
func (c *conn) RemoteAddr() net.Addr { return c.remote }
