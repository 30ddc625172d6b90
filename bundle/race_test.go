//go:build race

package bundle_test

// raceEnabled skips tests that are only slow under the race detector (and
// race-free by construction).
const raceEnabled = true
