//go:build bench

package sandbox

import "time"

// The promised bounds: a 1 s timeout stops any guest within 2 s, and a
// stop-the-world pause waits a few milliseconds at most for a guest.
const (
	stopBound  = 2 * time.Second
	pauseBound = 20 * time.Millisecond
	gcBound    = 2 * time.Second
)
