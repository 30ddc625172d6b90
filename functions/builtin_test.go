package functions

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"vouch/internal/testbuild"
)

// TestEmbeddedFunctionsAreReproducible rebuilds every built-in function
// from source with the pinned toolchain and flags and checks that the
// embedded module is exactly what the source builds to.
func TestEmbeddedFunctionsAreReproducible(t *testing.T) {
	for name, b := range builtins {
		built, err := testbuild.Wasm(b.source, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, b.module) {
			t.Errorf("the embedded %s function (sha256 %x) is not what its source builds to (sha256 %x); run: go generate %s",
				name, sha256.Sum256(b.module), sha256.Sum256(built), b.source)
		}
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
