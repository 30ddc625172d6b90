//go:build !chaos

package chaos

import "time"

// Without the chaos build tag, `go test ./chaos` runs the short version:
// 15 s of faults on the signed-views scheme.
const (
	defaultDuration = 15 * time.Second
	defaultMode     = "views"
)
