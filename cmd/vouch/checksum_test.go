package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

// TestChecksumWithManifest: a .wasm file and a vouch.json from anywhere
// give the checksum of a folder holding just the two, so a built-in's
// checksum can be checked against its source folder directly.
func TestChecksumWithManifest(t *testing.T) {
	cleanEnv(t)
	sum := leaderChecksum(t)
	r := vouch(t, "checksum", "../../functions/leader/leader.wasm", "--manifest", "../../functions/leader/vouch.json")
	if r.code != 0 || r.stdout != sum+"\n" || r.stderr != "" {
		t.Fatalf("%s\nwant %s", r, sum)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"checksum", "../../functions/leader", "--manifest", "../../functions/leader/vouch.json"}, 2, "not with a folder"},
		{[]string{"checksum", "--builtin", "leader", "--manifest", "x.json"}, 2, "checksum takes"},
		{[]string{"checksum", "../../functions/leader/leader.wasm", "--manifest", "nope.json"}, 1, "nope.json"},
		{[]string{"checksum", "../../functions/leader/leader.wasm", "--manifest", "../../functions/leader/leader.go"}, 1, "fix vouch.json"},
	} {
		if r := vouch(t, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("vouch %s: %s\nwant exit %d mentioning %q", strings.Join(tc.args, " "), r, tc.code, tc.want)
		}
	}
}

// TestChecksumFromSource follows docs/FORMATS.md: rebuild the leader from
// source as go generate does, then checksum the result with its manifest;
// the checksum is the embedded built-in's.
func TestChecksumFromSource(t *testing.T) {
	cleanEnv(t)
	mod, err := testbuild.Wasm("./functions/leader", true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	built := filepath.Join(dir, "leader.wasm")
	writeFile(t, built, mod, 0o644)
	sum := leaderChecksum(t)
	if r := vouch(t, "checksum", built, "--manifest", "../../functions/leader/vouch.json"); r.code != 0 || r.stdout != sum+"\n" {
		t.Fatalf("checksum of the leader rebuilt from source: %s, want %s", r, sum)
	}
	// The same with the two files copied into a folder of their own.
	man, err := os.ReadFile("../../functions/leader/vouch.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "vouch.json"), man, 0o644)
	if r := vouch(t, "checksum", dir); r.code != 0 || r.stdout != sum+"\n" {
		t.Fatalf("checksum of a folder with the rebuilt leader: %s, want %s", r, sum)
	}
}

// TestDeployBundleSizeLimit: vouch deploy refuses, before sending
// anything, a bundle over its --max-bundle-size.
func TestDeployBundleSizeLimit(t *testing.T) {
	cleanEnv(t)
	r := vouch(t, "deploy", "--max-bundle-size", "1000", "--enclave", "http://127.0.0.1:1", "../../functions/leader/leader.wasm")
	if r.code != 1 || !strings.Contains(r.stderr, "more than the 1000-byte bundle limit") || !strings.Contains(r.stderr, "hint: raise --max-bundle-size") {
		t.Fatalf("%s", r)
	}
	if r := vouch(t, "deploy", "--max-bundle-size", "0", "../../functions/leader/leader.wasm"); r.code != 2 || !strings.Contains(r.stderr, "--max-bundle-size 0") {
		t.Fatalf("%s", r)
	}
	if r := vouch(t, "deploy", "-h"); !strings.Contains(r.stdout, "election") || !strings.Contains(r.stdout, "max-bundle-size") {
		t.Fatalf("deploy -h: %s", r)
	}
}
