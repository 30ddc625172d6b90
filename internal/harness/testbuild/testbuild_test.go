package testbuild

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// settingsThatChangeBuilds are caller settings that would change what the
// go command builds, or how.
var settingsThatChangeBuilds = map[string]string{
	"GOWASM":       "satconv",
	"GOFLAGS":      "-gcflags=all=-N",
	"GOEXPERIMENT": "nosuchexperiment",
	"GODEBUG":      "gotypesalias=0",
	"GOAMD64":      "v3",
	"GOROOT":       "/nonexistent",
	"CGO_CFLAGS":   "-O0",
	"CGO_ENABLED":  "1",
	"CC":           "false",
	"GOOS":         "plan9",
	"GOARCH":       "386",
}

func TestBuildEnvIsHermetic(t *testing.T) {
	goEnv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPROXY"} {
		v, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		goEnv[k] = strings.TrimSpace(string(v))
	}
	for k, v := range settingsThatChangeBuilds {
		t.Setenv(k, v)
	}
	env, err := buildEnv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for k := range settingsThatChangeBuilds {
		if v, ok := got[k]; ok && k != "GOOS" && k != "GOARCH" && k != "CGO_ENABLED" {
			t.Errorf("the build inherits %s=%s", k, v)
		}
	}
	for k, want := range map[string]string{
		"GOOS": "wasip1", "GOARCH": "wasm", "CGO_ENABLED": "0", "GOENV": "off",
		"GOTOOLCHAIN": GoVersion, "PATH": os.Getenv("PATH"),
	} {
		if got[k] != want {
			t.Errorf("%s=%q, want %q", k, got[k], want)
		}
	}
	for k, want := range goEnv {
		if got[k] != want {
			t.Errorf("%s=%q, want the go command's %q", k, got[k], want)
		}
	}
}

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
