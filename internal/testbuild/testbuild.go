// Package testbuild builds Go packages of this module to WebAssembly for
// tests, once per test process.
package testbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// GoVersion is the toolchain that builds the embedded functions.
const GoVersion = "go1.26.8"

var (
	mu    sync.Mutex
	dir   string
	built = map[string][]byte{}
)

// ModuleRoot returns the directory of this module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

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
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	// The Go version is pinned so that builds are byte-for-byte
	// reproducible: the go command fetches it if the local one differs.
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOTOOLCHAIN="+GoVersion)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	built[key] = b
	return b, nil
}
