package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

// `vouch token -o json` gives a new cluster a fresh gossip key and a
// further member of an existing cluster that cluster's key(s), from a
// reference (--cluster-ref) or a key file (--gossip-key-file); it refuses
// a missing or malformed key before it mints a token.
func TestTokenGossipKeys(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, true)
	t.Setenv("VOUCH_OWNER_TOKEN", f.env.Owner)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	mint := func(out string, extra ...string) *api.Ref {
		t.Helper()
		args := append([]string{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "--out", out}, extra...)
		r := vouch(t, args...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		ref, err := api.LoadRef(out)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	key := func(ref *api.Ref) []byte {
		t.Helper()
		k, _, err := ref.GossipKeys()
		if err != nil || len(k) != 32 {
			t.Fatalf("reference gossip key: %d bytes, %v", len(k), err)
		}
		return k
	}

	a := mint(p("a.json"))
	b := mint(p("b.json"), "--cluster-ref", p("a.json"))
	c := mint(p("c.json"))
	if !bytes.Equal(key(a), key(b)) || a.FunctionToken == b.FunctionToken {
		t.Fatal("--cluster-ref: want the cluster's key with a token of its own")
	}
	if bytes.Equal(key(a), key(c)) {
		t.Fatal("two new clusters got one gossip key")
	}

	// A key file, as during a rotation: the new key encrypts, the old one
	// is still accepted; a reference minted from that one carries both.
	k1, k2 := a.GossipKey, c.GossipKey
	writeFile(t, p("keys"), []byte(k2+"\n"+k1+"\n"), 0o600)
	d := mint(p("d.json"), "--gossip-key-file", p("keys"))
	e := mint(p("e.json"), "--cluster-ref", p("d.json"))
	for _, r := range []*api.Ref{d, e} {
		if r.GossipKey != k2 || !slices.Equal(r.GossipExtraKeys, []string{k1}) {
			t.Fatalf("keys %q %q, want %q and extra %q", r.GossipKey, r.GossipExtraKeys, k2, k1)
		}
	}
	// On stdout too.
	r := vouch(t, "token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "-o", "json", "--cluster-ref", p("a.json"))
	if ref, err := api.ParseRef([]byte(r.stdout)); r.code != 0 || err != nil || ref.GossipKey != k1 {
		t.Fatalf("-o json --cluster-ref on stdout (%v):\n%s", err, r)
	}

	noKey := p("nokey.json")
	a.GossipKey, a.GossipExtraKeys = "", nil
	if err := api.WriteRefFile(noKey, a, false); err != nil {
		t.Fatal(err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghij"))
	writeFile(t, p("short"), []byte(short+"\n"), 0o600)
	writeFile(t, p("loose"), []byte(k1+"\n"), 0o644)
	writeFile(t, p("empty"), []byte("\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--cluster-ref", p("missing.json")}, 1, "missing.json"},
		{[]string{"--cluster-ref", noKey}, 1, "holds no gossip_key"},
		{[]string{"--gossip-key-file", p("missing")}, 1, "gossip key file"},
		{[]string{"--gossip-key-file", p("short")}, 1, "malformed gossip key: 20 bytes"},
		{[]string{"--gossip-key-file", p("empty")}, 1, "no gossip key"},
		{[]string{"--gossip-key-file", p("loose")}, 1, "mode 0644"},
		{[]string{"--cluster-ref", p("a.json"), "--gossip-key-file", p("keys")}, 2, "not both"},
		{[]string{"-o", "text", "--cluster-ref", p("a.json")}, 2, "use them with -o json"},
	} {
		out := p("refused.json")
		args := append([]string{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL}, c.args...)
		if c.args[0] != "-o" {
			args = append(args, "--out", out)
		}
		r := vouch(t, args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "vouch: error: ") {
			t.Errorf("%v: want exit %d saying %q:\n%s", c.args, c.code, c.want, r)
		}
		if c.code == 1 && !strings.Contains(r.stderr, "vouch: hint: ") {
			t.Errorf("%v: no hint:\n%s", c.args, r)
		}
		if strings.Contains(r.stderr, short[:12]) || strings.Contains(r.stderr, k1[:12]) {
			t.Errorf("%v: the error shows a key:\n%s", c.args, r)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: a refused mint wrote %s", c.args, out)
		}
	}
}

// `vouch node` takes its gossip keys from --gossip-key-file, --gossip-key
// or $VOUCH_GOSSIP_KEY, else from the reference, and refuses to start
// with none unless --insecure-gossip. A damaged state file stops the node
// right after it has settled its keys, so "unreadable state file" means
// the keys were accepted.
func TestNodeGossipKeyChoice(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	writeFile(t, filepath.Join(data, "last_seq"), []byte("40"), 0o600) // torn: no newline
	good, err := api.GenerateGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	bad := good[:20]
	refWith := func(name, keyField string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":"t","enclave_url":%q,"trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q}%s}`,
			strings.Repeat("0", 64), unreachable, strings.Repeat("ab", 32), keyField)), 0o600)
		return path
	}
	withKey := refWith("with.json", fmt.Sprintf(`,"gossip_key":%q`, good))
	noKey := refWith("without.json", "")
	writeFile(t, filepath.Join(dir, "keys"), []byte(good+"\n"), 0o600)
	writeFile(t, filepath.Join(dir, "loose"), []byte(good+"\n"), 0o644)
	writeFile(t, filepath.Join(dir, "badkeys"), []byte(bad+"\n"), 0o600)
	const started = "unreadable state file"
	for _, c := range []struct {
		name string
		env  string
		args []string
		code int
		want string
	}{
		{"reference's key", "", []string{"--ref", withKey}, 1, started},
		{"no key", "", []string{"--ref", noKey}, 1, "no gossip key"},
		{"--gossip-key", "", []string{"--ref", noKey, "--gossip-key", good}, 1, started},
		{"--gossip-key with an extra key", "", []string{"--ref", noKey, "--gossip-key", good + "," + good}, 1, started},
		{"env", good, []string{"--ref", noKey}, 1, started},
		{"--gossip-key-file", "", []string{"--ref", noKey, "--gossip-key-file", "keys"}, 1, started},
		{"--insecure-gossip over the reference's key", "", []string{"--ref", withKey, "--insecure-gossip"}, 1, started},
		{"--insecure-gossip", "", []string{"--ref", noKey, "--insecure-gossip"}, 1, started},
		{"malformed --gossip-key", "", []string{"--ref", withKey, "--gossip-key", bad}, 2, "--gossip-key: key 1 of 1: malformed gossip key"},
		{"malformed env", bad, []string{"--ref", withKey}, 2, "VOUCH_GOSSIP_KEY: key 1 of 1: malformed gossip key"},
		{"malformed key file", "", []string{"--ref", withKey, "--gossip-key-file", "badkeys"}, 1, "gossip key file badkeys: key 1 of 1: malformed"},
		{"loose key file", "", []string{"--ref", withKey, "--gossip-key-file", "loose"}, 1, "mode 0644"},
		{"missing key file", "", []string{"--ref", withKey, "--gossip-key-file", "nothing"}, 1, "nothing"},
		{"key and key file", "", []string{"--ref", noKey, "--gossip-key", good, "--gossip-key-file", "keys"}, 2, "not both"},
		{"insecure and key", "", []string{"--ref", noKey, "--gossip-key", good, "--insecure-gossip"}, 2, "leave out --gossip-key"},
		{"insecure and env", good, []string{"--ref", noKey, "--insecure-gossip"}, 2, "VOUCH_GOSSIP_KEY is set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("VOUCH_GOSSIP_KEY", c.env)
			l, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.LocalAddr().(*net.UDPAddr).Port
			l.Close()
			r := vouch(t, append([]string{"node", "-p", fmt.Sprint(port), "--data", data}, c.args...)...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("want exit %d saying %q:\n%s", c.code, c.want, r)
			}
			if c.want == "no gossip key" && (!strings.Contains(r.stderr, "vouch: hint: ") || !strings.Contains(r.stderr, "--cluster-ref") || !strings.Contains(r.stderr, "--insecure-gossip")) {
				t.Fatalf("no hint naming --cluster-ref and --insecure-gossip:\n%s", r)
			}
			if strings.Contains(r.stderr, good[:12]) || strings.Contains(r.stdout, good[:12]) {
				t.Fatalf("the output shows the key:\n%s", r)
			}
		})
	}
}
