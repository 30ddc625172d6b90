//go:build !wasip1

package guest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// Outside the runtime (go test, go run), state lives in this process's
// memory, so a function's logic can be tested like any Go code.

var (
	mu       sync.Mutex
	state    = map[Namespace]map[string][]byte{}
	counters = map[string]int64{}
)

func stateGet(ns Namespace, key string) ([]byte, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := state[ns][key]
	return append([]byte(nil), v...), ok
}

func statePut(ns Namespace, key string, value []byte) {
	mu.Lock()
	defer mu.Unlock()
	if state[ns] == nil {
		state[ns] = map[string][]byte{}
	}
	state[ns][key] = append([]byte(nil), value...)
}

func stateDelete(ns Namespace, key string) {
	mu.Lock()
	defer mu.Unlock()
	delete(state[ns], key)
}

func counterNext(name string) int64 {
	mu.Lock()
	defer mu.Unlock()
	counters[name]++
	return counters[name]
}

func randomFill(b []byte) { rand.Read(b) }

func timeNow() int64 { return time.Now().UnixNano() }

// origin stands in for the runtime's per-process monotonic origin.
var origin = time.Now()

func timeMonotonic() int64 { return int64(time.Since(origin)) }

func verifyEd25519(pub, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
