//go:build linux && (amd64 || arm64)

package attest

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// nsmIoctl is _IOWR(0x0A, 0, sizeof(struct nsm_message)), the request code
// of the Linux NSM driver; struct nsm_message is two struct iovec (32 bytes
// on 64-bit Linux): the request, then the response buffer, whose length the
// driver updates.
const nsmIoctl = 3<<30 | uintptr(unsafe.Sizeof(nsmMessage{}))<<16 | 0x0A<<8 | 0

type nsmMessage struct {
	request  syscall.Iovec
	response syscall.Iovec
}

type nsmDevice struct{ f *os.File }

func openNSM(path string) (nsmTransport, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &nsmDevice{f: f}, nil
}

func (d *nsmDevice) close() error { return d.f.Close() }

func (d *nsmDevice) roundTrip(req []byte) ([]byte, error) {
	if len(req) == 0 || len(req) > nsmMaxRequest {
		return nil, errors.New("request too large")
	}
	resp := make([]byte, nsmMaxResponse)
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&req[0])
	pin.Pin(&resp[0])
	msg := &nsmMessage{}
	pin.Pin(msg)
	msg.request.Base = &req[0]
	msg.request.SetLen(len(req))
	msg.response.Base = &resp[0]
	msg.response.SetLen(len(resp))

	raw, err := d.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, nsmIoctl, uintptr(unsafe.Pointer(msg)))
	}); err != nil {
		return nil, err
	}
	runtime.KeepAlive(req)
	if errno != 0 {
		if errno == syscall.EMSGSIZE {
			return nil, errors.New("input too large")
		}
		return nil, errno
	}
	n := msg.response.Len
	if n > uint64(len(resp)) {
		return nil, errors.New("driver returned an invalid response length")
	}
	return resp[:n], nil
}
