//go:build !chaos

package chaos

import "time"

// Without the chaos build tag, `go test ./internal/harness/chaos` runs the short version:
// 15 s of faults on the signed-views scheme. It must pass on a loaded
// 2-core machine, so convergence only has to happen, within a generous
// bound.
const (
	defaultDuration = 15 * time.Second
	defaultMode     = "views"
	defaultConverge = 60 * time.Second
)

// Without -tags chaos, TestChaosReplicas (three replica processes) is
// skipped unless -chaos.replica-duration is given.
const defaultReplicaDuration = 0
