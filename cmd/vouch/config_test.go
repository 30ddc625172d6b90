package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// vouch node --config: the file's keys are flags; a flag, then
// $VOUCH_REF, override the file's ref; an unknown key is refused naming
// the valid ones. $VOUCH_CONFIG names the file when --config does not.
func TestNodeConfigFile(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	conf := filepath.Join(dir, "node.conf")
	writeFile(t, conf, []byte(fmt.Sprintf("# node\np = %d\nref = from-file.json\ninsecure-gossip = true\n", freePort(t))), 0o600)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, []string{"--config", conf}, "from-file.json"},
		{"VOUCH_CONFIG", []string{"VOUCH_CONFIG", conf}, nil, "from-file.json"},
		{"env over file", []string{"VOUCH_REF", "from-env.json"}, []string{"--config", conf}, "from-env.json"},
		{"flag over env", []string{"VOUCH_REF", "from-env.json"}, []string{"--config", conf, "--ref", "from-flag.json"}, "from-flag.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < len(c.env); i += 2 {
				t.Setenv(c.env[i], c.env[i+1])
			}
			r := vouch(t, append([]string{"node"}, c.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("want exit 1 naming %s:\n%s", c.want, r)
			}
		})
	}
	bad := filepath.Join(dir, "bad.conf")
	writeFile(t, bad, []byte("p = 1\nlisten = 127.0.0.1:1\n"), 0o600)
	r := vouch(t, "node", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, `line 2: unknown key "listen"; valid keys: `) || !strings.Contains(r.stderr, "gossip-key-file") {
		t.Fatalf("unknown key:\n%s", r)
	}
	r = vouch(t, "enclave", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, `line 1: unknown key "p"`) {
		t.Fatalf("enclave, unknown key:\n%s", r)
	}
}

// --meta: KEY=VALUE, a key once, at most 512 bytes in all.
func TestNodeMetaFlag(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--meta", "novalue"}, "want KEY=VALUE"},
		{[]string{"--meta", "a=1", "--meta", "a=2"}, `key "a" given twice`},
		{[]string{"--meta", "big=" + strings.Repeat("x", 600)}, "--meta: node metadata too large"},
	} {
		r := vouch(t, append([]string{"node", "-p", fmt.Sprint(freePort(t))}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: want an error saying %q:\n%s", c.args, c.want, r)
		}
	}
}
