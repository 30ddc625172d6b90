package guest

import (
	"crypto/ed25519"
	"time"
)

// Namespace selects where state lives (docs/FORMATS.md, "Guest ABI").
type Namespace uint32

const (
	// Durable state is kept in the runtime's store and survives restarts.
	Durable Namespace = 0
	// Volatile state is kept in the runtime's memory and is lost when it
	// restarts: for data that goes stale quickly anyway.
	Volatile Namespace = 1
)

// State is transactional per invocation: the runtime commits an
// invocation's writes (Put, Delete, CounterNext) only if it succeeds, and
// discards them if it fails, traps or times out. Invocations of a function
// that uses state run one at a time, so each sees the writes of all
// committed ones before it.

// Get returns the value stored under key, and whether there is one.
func Get(ns Namespace, key string) ([]byte, bool) { return stateGet(ns, key) }

// Put stores value under key (keys are 1 to 256 bytes, values at most
// 1 MiB).
func Put(ns Namespace, key string, value []byte) { statePut(ns, key, value) }

// Delete removes key.
func Delete(ns Namespace, key string) { stateDelete(ns, key) }

// CounterNext increments the named counter and returns its new value. A
// counter starts at 0, so the first call returns 1; committed values only
// grow and survive restarts.
func CounterNext(name string) int64 { return counterNext(name) }

// Random fills b with bytes from the runtime's CSPRNG.
func Random(b []byte) { randomFill(b) }

// Now returns the runtime's wall clock. It may step (NTP, an operator):
// use it for timestamps, and Monotonic for durations.
func Now() time.Time { return time.Unix(0, timeNow()) }

// Monotonic returns the runtime's monotonic clock: the time since the
// runtime process started (so Now minus Monotonic is about when it
// started, on the wall clock). It only grows
// and wall-clock steps do not move it, so differences of its values are
// true durations, but it starts again from about 0 when the runtime
// restarts: compare only values read by the same runtime process, such as
// those kept in volatile state (which a restart loses too).
func Monotonic() time.Duration { return time.Duration(timeMonotonic()) }

// SHA256 returns the SHA-256 of b, as crypto/sha256.Sum256 does. In the
// runtime the host hashes (host function sha256), hundreds of times faster
// than Go's SHA-256 compiled to wasm; messages over 1 MiB trap there.
func SHA256(b []byte) [32]byte { return sha256Sum(b) }

// VerifyEd25519 reports whether sig is a valid Ed25519 signature of msg by
// pub, as crypto/ed25519.Verify does. In the runtime the host verifies
// (host function ed25519_verify), about ten times faster than Go's
// verification compiled to wasm; messages over 1 MiB trap there.
func VerifyEd25519(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return verifyEd25519(pub, msg, sig)
}
