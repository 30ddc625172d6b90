// Package cmdlinetest helps the tests of vouch's commands.
package cmdlinetest

import (
	"os"
	"strings"
	"testing"
)

// CleanEnv hides the caller's VOUCH_ variables from the test; they come
// back after it.
func CleanEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VOUCH_") {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	}
}
