package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/node"
)

// The owner key is created by `cluster init` only: the editing
// subcommands refuse a missing key file with a hint and create nothing, as
// add-member does for a node data directory without an identity.
func TestClusterOwnerKeyIsNeverCreatedByEdits(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	cfg, key := filepath.Join(dir, "cluster.json"), filepath.Join(dir, "owner.pem")
	if r := vouch(t, "cluster", "init", "--name", "demo", "--owner-key", key, "-o", cfg); r.code != 0 || !strings.Contains(r.stderr, "created the owner key") {
		t.Fatalf("%s", r)
	}
	memberKey := base64.StdEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize))
	typo := filepath.Join(dir, "typo.pem")
	for _, args := range [][]string{
		{"add-member", "--id", "a", "--key", memberKey},
		{"remove-member", "--id", "a"},
		{"set", "--lease", "2s"},
	} {
		r := vouch(t, append(append([]string{"cluster"}, args...), "--config", cfg, "--owner-key", typo)...)
		if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: owner key "+typo+" does not exist") || !strings.Contains(r.stderr, "vouch: hint: ") || !strings.Contains(r.stderr, "only `cluster init` creates an owner key") {
			t.Errorf("%s", r)
		}
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("cluster %s created %s", args[0], typo)
		}
	}
	// --node-data of a directory without an identity: refused, nothing
	// created.
	empty := filepath.Join(dir, "no-such-node")
	r := vouch(t, "cluster", "add-member", "--id", "a", "--node-data", empty, "--config", cfg, "--owner-key", key)
	if r.code != 1 || !strings.Contains(r.stderr, "no node identity in "+empty) || !strings.Contains(r.stderr, "vouch: hint:") {
		t.Errorf("%s", r)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Fatalf("add-member created %s", empty)
	}
	// With the right key and a node that has an identity, it works.
	nodeDir := filepath.Join(dir, "node")
	k, _, err := node.LoadIdentity(nodeDir)
	if err != nil {
		t.Fatal(err)
	}
	if r := vouch(t, "cluster", "add-member", "--id", "a", "--node-data", nodeDir, "--config", cfg, "--owner-key", key); r.code != 0 {
		t.Fatalf("%s", r)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := cluster.ParseSigned(data)
	if err != nil {
		t.Fatal(err)
	}
	if m := sc.Config.Member("a"); m == nil || !ed25519.PublicKey(m.Key).Equal(k.Public()) || sc.Config.Version != 2 {
		t.Fatalf("%+v", sc.Config)
	}
	// Switching to open mode warns.
	if r := vouch(t, "cluster", "set", "--open", "true", "--config", cfg, "--owner-key", key); r.code != 0 || !strings.Contains(r.stderr, "OPEN mode") {
		t.Fatalf("%s", r)
	}
}
