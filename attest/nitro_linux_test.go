//go:build linux && (amd64 || arm64)

package attest

import (
	"errors"
	"syscall"
	"testing"
)

// The ioctl plumbing runs against a device that is not the NSM and reports
// the driver's error instead of crashing.
func TestNSMIoctlPlumbing(t *testing.T) {
	if nsmIoctl != 0xC0200A00 {
		t.Fatalf("ioctl request code %#x, want 0xC0200A00 (_IOWR(0x0A, 0, 32))", nsmIoctl)
	}
	dev, err := openNSM("/dev/null")
	if err != nil {
		t.Skip(err)
	}
	defer dev.close()
	_, err = dev.roundTrip(encodeNSMAttestationRequest(Request{Nonce: []byte{1}}))
	if !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("ioctl on /dev/null: got %v, want ENOTTY", err)
	}
	if _, err := dev.roundTrip(make([]byte, nsmMaxRequest+1)); err == nil {
		t.Error("oversized request accepted")
	}
}
