package enclave_test

import (
	"runtime/metrics"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
)

func forcedGCs() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A deploy gives back the heap that compiling and the request used: without
// a forced collection, a runtime at rest keeps tens of MiB of that garbage
// resident (docs/BENCHMARKS.md, "Memory per node process"). One collection
// follows the compilation, one the response.
func TestDeployReleasesMemory(t *testing.T) {
	env := enclavetest.Start(t)
	before := forcedGCs()
	env.DeployLeader()
	// The second follows the response, so the client may see it first.
	deadline := time.Now().Add(30 * time.Second)
	for forcedGCs()-before < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d forced garbage collections after the deploy, want 2", forcedGCs()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
