//go:build !bench

package enclave_test

import "time"

// servedWithin bounds how long /healthz and another function may wait
// while a hostile module runs. Generous: the suite runs on loaded
// machines; a frozen runtime waits seconds.
const servedWithin = 2 * time.Second
