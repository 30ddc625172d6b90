//go:build wasip1

package main

import (
	"runtime"
	"unsafe"
)

// The import with plain addresses, so that the test can pass ones the guest
// package never would.
//
//go:wasmimport vouch ed25519_verify
func hostEd25519Verify(pub, msg, msgLen, sig uint32) int32

var scratch [64]byte

// verifyRaw calls ed25519_verify with a signature range past the end of
// memory ("oob"), or a message longer than the host takes ("huge").
func verifyRaw(what string) int32 {
	p := uint32(uintptr(unsafe.Pointer(&scratch[0])))
	switch what {
	case "oob":
		return hostEd25519Verify(p, p, 0, 0xffffffe0)
	case "huge":
		big := make([]byte, 1<<20+1)
		r := hostEd25519Verify(p, uint32(uintptr(unsafe.Pointer(&big[0]))), uint32(len(big)), p)
		runtime.KeepAlive(big)
		return r
	}
	return -2
}

//go:wasmimport vouch sha256
func hostSHA256(msg, msgLen, out uint32)

// sha256Raw calls sha256 with an output range past the end of memory
// ("oob"), or a message longer than the host takes ("huge").
func sha256Raw(what string) {
	p := uint32(uintptr(unsafe.Pointer(&scratch[0])))
	switch what {
	case "oob":
		hostSHA256(p, 0, 0xfffffff0)
	case "huge":
		big := make([]byte, 1<<20+1)
		hostSHA256(uint32(uintptr(unsafe.Pointer(&big[0]))), uint32(len(big)), p)
		runtime.KeepAlive(big)
	}
}
