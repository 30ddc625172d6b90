//go:build chaos

package byzantine

// strictTiming: with the chaos tag, wall-clock bounds are enforced.
const strictTiming = true
