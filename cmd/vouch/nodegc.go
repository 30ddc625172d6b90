package main

import (
	"os"
	"runtime/debug"
)

// nodeGCPercent is a node process's GC target unless GOGC is set. Its live
// heap is about 2 MiB, so Go's default of 100 keeps about 2 MiB more
// resident; 50 costs about a third more of its small CPU at rest and
// nothing measurable in failover (docs/BENCHMARKS.md, "Memory per node
// process"). A memory limit (GOMEMLIMIT) is left to the operator: one below
// the runtime's own overhead makes the GC run without pause.
const nodeGCPercent = 50

// tuneNodeGC sets a node process's GC target, unless GOGC is set.
func tuneNodeGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(nodeGCPercent)
	}
}
