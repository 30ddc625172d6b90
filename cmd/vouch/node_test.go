package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/token"
)

// `-n 5400 5401` used to drop 5401 without a word; stray arguments are a
// usage error that says how to give several peers.
func TestNodeStrayArguments(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	sum := strings.Repeat("0", 64)
	for _, args := range [][]string{
		{"node", "-p", "5000", "-n", "5400", "5401", "-f", "fn", "-fh", sum},
		{"node", "-p", "5000", "extra"},
	} {
		r := vouch(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "vouch: error: node takes no arguments") ||
			!strings.Contains(r.stderr, "-n 5400,5401") || !strings.Contains(r.stderr, "-n 5400 -n 5401") {
			t.Errorf("want a usage error with the two ways to give peers:\n%s", r)
		}
	}
}

// A damaged DATA/last_seq stops the node at start, with a hint, instead of
// silently starting from 0 (which would let old certificates be replayed).
func TestNodeDamagedStateFile(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	writeFile(t, filepath.Join(data, "last_seq"), []byte("40"), 0o600) // torn: no newline
	ref := filepath.Join(dir, "ref.json")
	writeFile(t, ref, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":"t","enclave_url":%q,"trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q},"gossip_key":%q}`,
		strings.Repeat("0", 64), unreachable, strings.Repeat("ab", 32), strings.Repeat("A", 43)+"=")), 0o600)
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	r := vouch(t, "node", "-p", fmt.Sprint(port), "--ref", ref, "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "unreadable state file") || !strings.Contains(r.stderr, "last_seq") || !strings.Contains(r.stderr, "vouch: hint:") {
		t.Fatalf("want exit 1 naming the file, with a hint:\n%s", r)
	}
}

// The demo exits 0 when the cluster fails over, and non-zero when it does
// not converge in time.
func TestDemoExitCodes(t *testing.T) {
	cleanEnv(t)
	r := vouch(t, "demo", "--nodes", "3")
	if r.code != 0 || !strings.Contains(r.stderr, "demo passed: failover from") || !strings.Contains(r.stdout, "SIMULATED") {
		t.Fatalf("want exit 0 and \"demo passed\":\n%s", r)
	}
	r = vouch(t, "demo", "--nodes", "3", "--converge-within", "1ms")
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: the cluster did not converge in time") {
		t.Fatalf("want exit 1 and the convergence error:\n%s", r)
	}
}

// The node says when its function token expires: a node whose token runs
// out would see every runtime call refused and elections stall.
func TestWarnTokenExpiry(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	iss, err := token.NewIssuer(key, "vouch:test")
	if err != nil {
		t.Fatal(err)
	}
	tok, claims, err := iss.Mint("fn", strings.Repeat("0", 64), 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{claims.ExpiresAt.Add(-90 * time.Minute), "level=INFO msg=\"function token valid\""},
		{claims.ExpiresAt.Add(-30 * time.Minute), "level=WARN msg=\"the function token expires within the hour"},
		{claims.ExpiresAt.Add(time.Minute), "level=ERROR msg=\"the function token has expired"},
	} {
		var buf bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no waiting: only what it says at start
		warnTokenExpiry(ctx, slog.New(slog.NewTextHandler(&buf, nil)), tok, func() time.Time { return c.at })
		if !strings.Contains(buf.String(), c.want) {
			t.Errorf("at %v before expiry: log %q lacks %q", claims.ExpiresAt.Sub(c.at), buf.String(), c.want)
		}
		if strings.Contains(buf.String(), tok) {
			t.Error("the token itself was logged")
		}
	}
}
