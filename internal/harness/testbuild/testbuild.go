// Package testbuild builds Go packages of this module to WebAssembly for
// tests, once per test process, with the recipe that builds the embedded
// functions (package wasmbuild).
package testbuild

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vouch-dev/vouch/internal/wasmbuild"
)

// GoVersion is the toolchain that builds the embedded functions.
const GoVersion = wasmbuild.GoVersion

var (
	mu    sync.Mutex
	dir   string
	built = map[string][]byte{}
)

// ModuleRoot returns the directory of this module's go.mod.
func ModuleRoot() (string, error) { return wasmbuild.ModuleRoot() }

// Wasm builds pkg (a path relative to the module root, such as
// "./functions/leader") for GOOS=wasip1 GOARCH=wasm and returns the module.
// With reactor it builds with -buildmode=c-shared, the guest package's warm
// fast path; otherwise a WASI command.
func Wasm(pkg string, reactor bool) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	key := fmt.Sprintf("%s|%v", pkg, reactor)
	if b, ok := built[key]; ok {
		return b, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vouch-testbuild-"); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, fmt.Sprintf("m%d.wasm", len(built)))
	if err := wasmbuild.Build(root, pkg, out, reactor); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	built[key] = b
	return b, nil
}
