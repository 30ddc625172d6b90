//go:build !chaos

package byzantine

// strictTiming: the default run enforces no wall-clock bound.
const strictTiming = false
