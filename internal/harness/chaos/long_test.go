//go:build chaos

package chaos

import "time"

// With -tags chaos the run is the long version: 60 s of faults on each
// scheme, and convergence within 15 s.
const (
	defaultDuration = 60 * time.Second
	defaultMode     = "both"
	defaultConverge = 15 * time.Second
)

// TestChaosReplicas' fault window with -tags chaos (one fault at a time,
// each followed by convergence): short enough for .ci/run.
const defaultReplicaDuration = 45 * time.Second
