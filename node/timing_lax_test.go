//go:build !chaos

package node_test

// strictTiming: the default run enforces no wall-clock bound; with the
// chaos tag the tests also check how fast things happen.
const strictTiming = false
