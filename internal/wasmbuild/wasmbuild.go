// Package wasmbuild is the one recipe that builds Go packages of this
// module to WebAssembly: the embedded built-in functions (go generate runs
// it through functions/internal/build) and the modules tests build
// (package testbuild) alike.
//
// Builds are reproducible and hermetic: trimmed paths, no VCS stamp, no
// build ID, no symbol tables, the Go toolchain pinned to GoVersion (the go
// command fetches it if the local one differs), and none of the caller's
// build settings (GOFLAGS, GOWASM, GOEXPERIMENT, GOENV, CGO_*, …, from the
// environment or from `go env -w`) reach the build. So a package builds to
// the same bytes wherever it is built.
package wasmbuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoVersion is the toolchain that builds the embedded functions.
const GoVersion = "go1.26.8"

// ModuleRoot returns the directory of this module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// Args returns the go command's arguments that build pkg to out: as a WASI
// reactor (-buildmode=c-shared, how the built-ins are built) or else as a
// WASI command.
func Args(pkg, out string, reactor bool) []string {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	return append(args, pkg)
}

// Build builds pkg (a package path, or a path relative to dir such as
// "./functions/leader") for GOOS=wasip1 GOARCH=wasm in dir and writes the
// module to out.
func Build(dir, pkg, out string, reactor bool) error {
	env, err := Env()
	if err != nil {
		return err
	}
	args := Args(pkg, out, reactor)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return nil
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

// Env returns the environment of a hermetic build.
func Env() ([]string, error) {
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
		return nil, fmt.Errorf("go env: %w\n%s", err, stderr.Bytes())
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
