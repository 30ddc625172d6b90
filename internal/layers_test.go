// Package internal_test checks how the packages under internal/ layer.
//
// internal/ holds two kinds of package. Bottom helpers (canon, strictjson,
// store, raftstore, readall, secretfile, version) sit below everything:
// they import the standard library, third-party modules and each other,
// nothing else of vouch. Harnesses (internal/harness/...) sit above everything: they
// drive the runtime, nodes and clients for tests and benchmarks, and no
// product package may import them outside its tests.
package internal_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const harness = "github.com/vouch-dev/vouch/internal/harness/"

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages returns every package of the module with its non-test
// imports, for a default build and with the given tags.
func listPackages(t *testing.T, tags string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", tags, "-json=ImportPath,Imports", "github.com/vouch-dev/vouch/...")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func isBottom(path string) bool {
	return strings.HasPrefix(path, "github.com/vouch-dev/vouch/internal/") && !strings.HasPrefix(path, harness)
}

func isHarness(path string) bool { return strings.HasPrefix(path, harness) }

// isProduct says whether a package ships: everything but the commands'
// own code, the harnesses and the real-process tests.
func isProduct(path string) bool {
	return !isHarness(path) && !strings.HasPrefix(path, "github.com/vouch-dev/vouch/cmd/") && path != "github.com/vouch-dev/vouch/e2e"
}

func TestLayers(t *testing.T) {
	for _, tags := range []string{"", "chaos", "bench"} {
		ps := listPackages(t, tags)
		var bottoms, harnesses int
		for _, p := range ps {
			switch {
			case isBottom(p.ImportPath):
				bottoms++
				for _, imp := range p.Imports {
					if strings.HasPrefix(imp, "github.com/vouch-dev/vouch/") && !isBottom(imp) {
						t.Errorf("tags %q: bottom helper %s imports %s, above it", tags, p.ImportPath, imp)
					}
				}
			case isHarness(p.ImportPath):
				harnesses++
			case isProduct(p.ImportPath):
				for _, imp := range p.Imports {
					if isHarness(imp) {
						t.Errorf("tags %q: %s imports the harness %s outside its tests", tags, p.ImportPath, imp)
					}
				}
			}
		}
		// Both kinds were seen, so the prefixes above still name them.
		if bottoms == 0 || harnesses == 0 {
			t.Fatalf("tags %q: found %d bottom helpers and %d harnesses under internal/", tags, bottoms, harnesses)
		}
	}
}
