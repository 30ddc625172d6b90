package testbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A caller's GOWASM or GOFLAGS does not change the embedded leader's
// rebuild (GOWASM=satconv alone changes its bytes).
func TestWasmIgnoresTheCallersSettings(t *testing.T) {
	t.Setenv("GOWASM", "satconv")
	t.Setenv("GOFLAGS", "-gcflags=all=-N")
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := os.ReadFile(filepath.Join(root, "functions", "leader", "leader.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	built, err := Wasm("./functions/leader", true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, embedded) {
		t.Fatal("with GOWASM and GOFLAGS set, the leader rebuilt to other bytes than the embedded ones")
	}
}
