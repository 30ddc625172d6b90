package main

import (
	"os/exec"
	"strings"
	"testing"
)

// untrusted are the import path prefixes that must stay out of `vouch`:
// its hash is what an attestation measures, so it links the runtime (with
// hashicorp/raft, which the replicated runtime runs on), the node and the
// client commands, and no benchmark baselines, plotting or test harnesses
// (those live in cmd/vouch-bench and internal/harness).
var untrusted = []string{
	"gonum.org/",
	"github.com/vouch-dev/vouch/internal/harness/",
	"github.com/vouch-dev/vouch/cmd/vouch-bench",
}

// deps lists the packages a command links, as `go list -deps` does for a
// default build.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func untrustedIn(pkgs []string) []string {
	var bad []string
	for _, p := range pkgs {
		for _, u := range untrusted {
			if strings.HasPrefix(p, u) {
				bad = append(bad, p)
			}
		}
	}
	return bad
}

func TestTrustedBinaryLinksNoHarness(t *testing.T) {
	if bad := untrustedIn(deps(t, "github.com/vouch-dev/vouch/cmd/vouch")); len(bad) > 0 {
		t.Fatalf("vouch depends on packages that belong in vouch-bench or the test harnesses:\n  %s", strings.Join(bad, "\n  "))
	}
	// The check itself works: the benchmark command does link the
	// plotting library and the harnesses.
	bench := untrustedIn(deps(t, "github.com/vouch-dev/vouch/cmd/vouch-bench"))
	for _, want := range []string{"gonum.org/v1/plot", "github.com/vouch-dev/vouch/internal/harness/"} {
		found := false
		for _, p := range bench {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("vouch-bench does not list %s among its dependencies: the check above would not see it either", want)
		}
	}
}
