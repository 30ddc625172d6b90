package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// The packages' errors name no flag; the CLI adds the flag in a hint.
func TestLibraryErrorHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{node.ErrNoRuntime, "give --ref FILE or --enclave URL"},
		{fmt.Errorf("starting: %w", node.ErrNoFunction), "-f ID -fh CHECKSUM"},
		{os.ErrNotExist, ""},
	} {
		if got := libraryHint(tc.err); got != tc.want && !(tc.want != "" && strings.Contains(got, tc.want)) {
			t.Errorf("libraryHint(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if strings.Contains(tc.err.Error(), "--") || strings.Contains(tc.err.Error(), "-fh") {
			t.Errorf("library error %q names a flag", tc.err)
		}
	}

	cleanEnv(t)
	// An unreachable runtime: the error says so, the hint says which flag
	// names the runtime.
	r := vouch(t, "attest", "--enclave", unreachable)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, "runtime at "+unreachable+" is unreachable: ") ||
		!strings.Contains(r.stderr, "\nvouch: hint: is `vouch enclave` running there? give the runtime's URL with --enclave URL") {
		t.Errorf("attest of an unreachable runtime:\n%s", r)
	}
}

// The runtime's own hints name no flag either; on a refused function
// token or an oversized bundle, the CLI says which command and flag help.
func TestRuntimeErrorHints(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, false)
	r := vouch(t, f.runArgs(f.env.URL, "--token", "not-a-token")...)
	want := "vouch: hint: the runtime's owner mints one with `vouch token " + f.ref.ID + " --function-checksum " + f.ref.Checksum + "`; pass it with --token TOKEN"
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: function token refused") || !strings.Contains(r.stderr, want) {
		t.Errorf("run with a bad token: want a hint %q:\n%s", want, r)
	}

	env := enclavetest.Start(t, func(c *enclave.Config) { c.MaxBundleSize = 1024 })
	owner := filepath.Join(t.TempDir(), "owner.token")
	writeFile(t, owner, []byte(env.Owner+"\n"), 0o600)
	r = vouch(t, append([]string{"deploy", "--builtin", "leader", "--enclave", env.URL, "--owner-token-file", owner}, "--allow-simulated", "--root-fingerprint", env.RootFingerprint)...)
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: bundle is larger than this runtime's limit of 1024 bytes") ||
		!strings.Contains(r.stderr, "vouch: hint: the runtime refuses bundles over its own limit: start it with a larger --max-bundle-size") {
		t.Errorf("deploy over the runtime's limit:\n%s", r)
	}
}
