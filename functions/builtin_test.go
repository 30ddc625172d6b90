package functions

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vouch/internal/harness/testbuild"
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

// TestCheckoutsKeepTheEmbeddedBytes: .gitattributes marks every embedded
// module and manifest so that no checkout converts line endings in them,
// which would change the built-ins' checksums.
func TestCheckoutsKeepTheEmbeddedBytes(t *testing.T) {
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	args := []string{"-C", root, "check-attr", "text", "--"}
	for _, b := range builtins {
		dir := strings.TrimPrefix(b.source, "./")
		args = append(args, dir+"/"+filepath.Base(dir)+".wasm", dir+"/vouch.json")
	}
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2*len(builtins) {
		t.Fatalf("git check-attr: %s", out)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ": text: unset") {
			t.Errorf("%s (want text unset: add it to .gitattributes)", l)
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
