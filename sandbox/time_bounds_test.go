//go:build !bench

package sandbox

import "time"

// Generous bounds for the default run, on a loaded shared machine: without
// the bulk-instruction charges, stopping took minutes and GC waited for
// tens of seconds.
const (
	stopBound  = 10 * time.Second
	pauseBound = 2 * time.Second
	gcBound    = 2 * time.Second
)
