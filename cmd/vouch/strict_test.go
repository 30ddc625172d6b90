package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterEditReadsStrictJSON: the cluster commands read a
// configuration file as strict JSON, so a file a reviewer could read two
// ways (a field twice, a name in another case) is refused, not edited.
func TestClusterEditReadsStrictJSON(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	cfg, key := filepath.Join(dir, "cluster.json"), filepath.Join(dir, "owner.pem")
	if r := vouch(t, "cluster", "init", "--name", "demo", "--open", "--owner-key", key, "-o", cfg); r.code != 0 {
		t.Fatalf("%s", r)
	}
	good, err := os.ReadFile(cfg)
	if err != nil || !bytes.Contains(good, []byte(`"cluster": "demo"`)) {
		t.Fatalf("%s: %v", good, err)
	}
	for _, tc := range []struct{ with, want string }{
		{`"cluster": "demo", "cluster": "prod"`, `field "cluster" given twice in "config"`},
		{`"cluster": "demo", "CLUSTER": "prod"`, `unknown field "CLUSTER" in "config"`},
		{`"cluster": null`, "config.cluster: null is not allowed"},
	} {
		bad := bytes.Replace(good, []byte(`"cluster": "demo"`), []byte(tc.with), 1)
		if err := os.WriteFile(cfg, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		r := vouch(t, "cluster", "set", "--lease", "3s", "--config", cfg, "--owner-key", key)
		if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: "+cfg+": "+tc.want) {
			t.Errorf("%s: want an error containing %q\n%s", tc.with, tc.want, r)
		}
		if after, _ := os.ReadFile(cfg); !bytes.Equal(after, bad) {
			t.Errorf("%s: the refused file was rewritten", tc.with)
		}
	}
}
