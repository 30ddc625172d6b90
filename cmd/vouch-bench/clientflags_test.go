package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/token"
)

// TestRunClientOptions checks what `run --enclave` takes from its flags and
// the environment: the trust pins, and the owner credential from
// $VOUCH_OWNER_TOKEN, else $VOUCH_DATA/owner.token, else an error with a hint.
func TestRunClientOptions(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	parseFlags := func(args ...string) (*clientFlags, *strings.Builder) {
		var errb strings.Builder
		fs := newFlags("run", "", &ui{Prog: prog, Out: new(strings.Builder), Err: &errb})
		var cf clientFlags
		cf.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &cf, &errb
	}

	keyID, pcrA, pcrB := strings.Repeat("CD", 32), strings.Repeat("AB", 48), strings.Repeat("EF", 48)
	cf, _ := parseFlags("--key-id", keyID)
	_, err := cf.options()
	var he *hintError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "no owner credential found") {
		t.Fatalf("no credential anywhere: got %v, want an error with a hint", err)
	}

	owner, err := token.GenerateOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "owner.token"), []byte(owner+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VOUCH_DATA", data)
	cf, errb := parseFlags("--pcr", "0:"+pcrA, "--pcr", "0:"+pcrB, "--key-id", keyID, "--allow-simulated")
	opts, err := cf.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.OwnerToken != owner || opts.Trust.KeyID != strings.ToLower(keyID) || !slices.Equal(opts.Trust.PCRs["0"], []string{strings.ToLower(pcrA), strings.ToLower(pcrB)}) || !opts.AllowSimulated {
		t.Fatalf("options %+v", opts)
	}
	if !strings.Contains(errb.String(), "vouch-bench: warning: --allow-simulated without --root-fingerprint") {
		t.Fatalf("no warning for an unpinned simulated root: %q", errb.String())
	}

	other, _ := token.GenerateOwnerToken()
	t.Setenv("VOUCH_OWNER_TOKEN", other)
	cf, _ = parseFlags()
	if opts, err := cf.options(); err != nil || opts.OwnerToken != other {
		t.Fatalf("$VOUCH_OWNER_TOKEN does not come before $VOUCH_DATA: %v, %q", err, opts.OwnerToken)
	}
}
