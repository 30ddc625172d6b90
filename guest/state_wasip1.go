//go:build wasip1

package guest

import "unsafe"

//go:wasmimport vouch state_get
func hostStateGet(ns uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufCap uint32) int32

//go:wasmimport vouch state_put
func hostStatePut(ns uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) int32

//go:wasmimport vouch state_delete
func hostStateDelete(ns uint32, key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport vouch counter_next
func hostCounterNext(name unsafe.Pointer, nameLen uint32) int64

//go:wasmimport vouch random_fill
func hostRandomFill(buf unsafe.Pointer, n uint32) int32

//go:wasmimport vouch time_now
func hostTimeNow() int64

//go:wasmimport vouch time_monotonic
func hostTimeMonotonic() int64

//go:wasmimport vouch ed25519_verify
func hostEd25519Verify(pub unsafe.Pointer, msg unsafe.Pointer, msgLen uint32, sig unsafe.Pointer) int32

//go:wasmimport vouch sha256
func hostSHA256(msg unsafe.Pointer, msgLen uint32, out unsafe.Pointer)

func keyPtr(key string) (unsafe.Pointer, uint32) {
	if key == "" {
		panic("guest: empty state key")
	}
	return unsafe.Pointer(unsafe.StringData(key)), uint32(len(key))
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func stateGet(ns Namespace, key string) ([]byte, bool) {
	kp, kn := keyPtr(key)
	buf := make([]byte, 256)
	for {
		n := hostStateGet(uint32(ns), kp, kn, bytesPtr(buf), uint32(len(buf)))
		if n < 0 {
			return nil, false
		}
		if int(n) <= len(buf) {
			return buf[:n], true
		}
		buf = make([]byte, n)
	}
}

func statePut(ns Namespace, key string, value []byte) {
	kp, kn := keyPtr(key)
	hostStatePut(uint32(ns), kp, kn, bytesPtr(value), uint32(len(value)))
}

func stateDelete(ns Namespace, key string) {
	kp, kn := keyPtr(key)
	hostStateDelete(uint32(ns), kp, kn)
}

func counterNext(name string) int64 {
	kp, kn := keyPtr(name)
	return hostCounterNext(kp, kn)
}

func randomFill(b []byte) {
	if len(b) > 0 {
		hostRandomFill(unsafe.Pointer(&b[0]), uint32(len(b)))
	}
}

func timeNow() int64 { return hostTimeNow() }

func timeMonotonic() int64 { return hostTimeMonotonic() }

// verifyEd25519 is called with a 32-byte pub and a 64-byte sig.
func verifyEd25519(pub, msg, sig []byte) bool {
	return hostEd25519Verify(unsafe.Pointer(&pub[0]), bytesPtr(msg), uint32(len(msg)), unsafe.Pointer(&sig[0])) == 1
}

func sha256Sum(b []byte) [32]byte {
	var sum [32]byte
	hostSHA256(bytesPtr(b), uint32(len(b)), unsafe.Pointer(&sum[0]))
	return sum
}
