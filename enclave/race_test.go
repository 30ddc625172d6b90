//go:build race

package enclave_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = true
