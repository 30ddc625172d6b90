//go:build chaos

package node_test

// strictTiming: with the chaos tag, wall-clock bounds are enforced.
const strictTiming = true
