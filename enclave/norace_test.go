//go:build !race

package enclave_test

const raceEnabled = false
