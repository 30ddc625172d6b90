//go:build bench

package enclave_test

import "time"

// servedWithin is the bound, for quiet machines.
const servedWithin = 100 * time.Millisecond
