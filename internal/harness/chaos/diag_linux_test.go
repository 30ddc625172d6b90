package chaos

import (
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// diagInode asks the kernel (NETLINK_SOCK_DIAG, one exact inet_diag
// lookup) for the inode of the TCP socket 127.0.0.1:local ->
// 127.0.0.1:remote.
func diagInode(local, remote int) (uint32, error) {
	const (
		netlinkSockDiag   = 4  // NETLINK_SOCK_DIAG
		sockDiagByFamily  = 20 // SOCK_DIAG_BY_FAMILY
		nlmsgHdrLen       = 16
		reqLen            = 56 // struct inet_diag_req_v2
		inodeOffset       = 68 // of inet_diag_msg.idiag_inode
		allStates         = 0xffffffff
		inetDiagNoCookie0 = 0xffffffff
	)
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 2}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	b := make([]byte, nlmsgHdrLen+reqLen)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(b)))
	le.PutUint16(b[4:], sockDiagByFamily)
	le.PutUint16(b[6:], syscall.NLM_F_REQUEST)
	le.PutUint32(b[8:], 1) // seq
	r := b[nlmsgHdrLen:]
	r[0] = syscall.AF_INET
	r[1] = syscall.IPPROTO_TCP
	le.PutUint32(r[4:], allStates)
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], uint16(local))
	binary.BigEndian.PutUint16(id[2:], uint16(remote))
	copy(id[4:8], []byte{127, 0, 0, 1})
	copy(id[20:24], []byte{127, 0, 0, 1})
	le.PutUint32(id[40:], inetDiagNoCookie0)
	le.PutUint32(id[44:], inetDiagNoCookie0)
	if err := syscall.Sendto(fd, b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, err
	}
	buf := make([]byte, 8192)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case sockDiagByFamily:
			if len(m.Data) >= inodeOffset+4 {
				return le.Uint32(m.Data[inodeOffset:]), nil
			}
		case syscall.NLMSG_ERROR:
			return 0, errors.New("sock_diag: no such socket")
		}
	}
	return 0, errors.New("sock_diag: no answer")
}

// TestDiagInode checks the netlink lookup against /proc/net/tcp on a real
// connection, both ways round.
func TestDiagInode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, conn := range []net.Conn{c, s} {
		lp, rp := conn.LocalAddr().(*net.TCPAddr).Port, conn.RemoteAddr().(*net.TCPAddr).Port
		ino, err := diagInode(lp, rp)
		if err != nil {
			t.Skipf("sock_diag unavailable here (%v); the proxy falls back to /proc/net/tcp", err)
		}
		if want := procInode(lp, rp); want == "" || strconv.FormatUint(uint64(ino), 10) != want {
			t.Fatalf("sock_diag says inode %d for %d->%d, /proc/net/tcp %q", ino, lp, rp, want)
		}
	}
	if _, err := diagInode(1, 2); err == nil {
		t.Fatal("an inode for a socket that does not exist")
	}
}
