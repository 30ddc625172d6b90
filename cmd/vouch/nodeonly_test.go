package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runtimeOnly are packages only the runtime's and the demo's commands use:
// the node-only build links none of their code but their init functions
// (the packages stay imported by the files it does not call).
var runtimeOnly = []string{
	"github.com/tetratelabs/wazero",
	"github.com/hashicorp/raft",
	"go.etcd.io/bbolt",
	"github.com/vouch-dev/vouch/enclave",
	"github.com/vouch-dev/vouch/sandbox",
	"github.com/vouch-dev/vouch/cmd/vouch/internal/demo",
}

// linkedFuncs lists the runtimeOnly functions other than package inits
// that the binary at path contains.
func linkedFuncs(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", path).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || (f[1] != "T" && f[1] != "t") {
			continue
		}
		for _, p := range runtimeOnly {
			if rest, ok := strings.CutPrefix(f[2], p+"."); ok && !strings.HasPrefix(rest, "init") {
				found = append(found, f[2])
			}
		}
	}
	return found
}

// TestNodeOnlyBuildIsSlim builds vouch with -tags nodeonly, the binary for
// node processes (docs/BENCHMARKS.md, "Memory per node process"), and
// checks that it links no code of the runtime: every page of it a node
// process touches counts in its resident memory.
func TestNodeOnlyBuildIsSlim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vouch twice")
	}
	dir := t.TempDir()
	slim, full := filepath.Join(dir, "vouch-node"), filepath.Join(dir, "vouch")
	for _, b := range []struct{ out, tags string }{{slim, "nodeonly"}, {full, ""}} {
		if out, err := exec.Command("go", "build", "-tags", b.tags, "-o", b.out, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %q: %v\n%s", b.tags, err, out)
		}
	}
	if bad := linkedFuncs(t, slim); len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], "…")
		}
		t.Fatalf("the node-only build links runtime code:\n  %s", strings.Join(bad, "\n  "))
	}
	// The check itself works: the default build does link them.
	if len(linkedFuncs(t, full)) == 0 {
		t.Fatal("the default build links none of the runtime's functions: the check above would not see them either")
	}
	out, err := exec.Command(slim, "help").Output()
	if err != nil {
		t.Fatalf("vouch-node help: %v", err)
	}
	for _, want := range []string{"node", "lock", "status", "cluster"} {
		if !strings.Contains(string(out), "\n  "+want+" ") {
			t.Errorf("vouch-node help does not list %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "\n  enclave ") {
		t.Errorf("vouch-node help lists enclave:\n%s", out)
	}
}
