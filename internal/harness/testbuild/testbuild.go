// Package testbuild builds Go packages of this module to WebAssembly for
// tests, once per test process.
//
// Builds are hermetic: they see none of the caller's build settings
// (GOFLAGS, GOWASM, GOEXPERIMENT, CGO_*, …, from the environment or from
// `go env -w`), so that the embedded functions rebuild byte for byte
// wherever the tests run.
package testbuild

import (
	"bytes"
	"encoding/json"
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
	env, err := buildEnv()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = env
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

// passThrough are the environment variables a build keeps: where things
// are and how to reach the network, nothing that changes what is built.
var passThrough = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TMP", "TEMP",
	"USERPROFILE", "LOCALAPPDATA", "APPDATA", "SYSTEMROOT", "SystemRoot", "COMSPEC", "ComSpec", "PATHEXT", "WINDIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// resolved are the go command's settings about caches and module
// downloads. They are read with `go env` (so that settings made with
// `go env -w` count) and passed explicitly, because the build itself runs
// with GOENV=off.
var resolved = []string{
	"GOPATH", "GOCACHE", "GOMODCACHE",
	"GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOINSECURE", "GOAUTH",
}

// buildEnv returns the environment of a hermetic build.
func buildEnv() ([]string, error) {
	var env []string
	for _, k := range passThrough {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// Ask with the same environment, plus the caller's own download
	// settings and go env file, and nothing else: a stray GOEXPERIMENT
	// would make go env itself fail.
	query := exec.Command("go", append([]string{"env", "-json"}, resolved...)...)
	query.Env = env
	for _, k := range append([]string{"GOENV"}, resolved...) {
		if v, ok := os.LookupEnv(k); ok {
			query.Env = append(query.Env, k+"="+v)
		}
	}
	var stderr bytes.Buffer
	query.Stderr = &stderr
	out, err := query.Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %v\n%s", err, stderr.Bytes())
	}
	var settings map[string]string
	if err := json.Unmarshal(out, &settings); err != nil {
		return nil, fmt.Errorf("go env -json: %w", err)
	}
	for _, k := range resolved {
		if v := settings[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	// The Go version is pinned so that builds are byte-for-byte
	// reproducible: the go command fetches it if the local one differs.
	return append(env, "GOENV=off", "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOTOOLCHAIN="+GoVersion), nil
}
