package functions

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"vouch/internal/testbuild"
)

// TestEmbeddedLeaderIsReproducible rebuilds the leader function from source
// with the pinned toolchain and flags and checks that the embedded module
// is exactly what the source builds to.
func TestEmbeddedLeaderIsReproducible(t *testing.T) {
	built, err := testbuild.Wasm("./functions/leader", true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, leaderWasm) {
		t.Fatalf("functions/leader/leader.wasm (sha256 %x) is not what its source builds to (sha256 %x); run: go generate ./functions/leader",
			sha256.Sum256(leaderWasm), sha256.Sum256(built))
	}
}

func TestBuiltin(t *testing.T) {
	b, err := Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "leader" || !b.Manifest.AllowPlaintextInput {
		t.Fatalf("manifest = %+v", b.Manifest)
	}
	if _, err := Builtin("nope"); err == nil {
		t.Fatal("unknown built-in accepted")
	}
}

func ExampleBuiltin() {
	b, _ := Builtin("leader")
	fmt.Println(b.Name(), len(b.Checksum()))
	// Output: leader 64
}
