package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/token"
)

// A node whose token has already expired refuses to start, saying when it
// expired and how to get a new one.
func TestNodeRefusesExpiredToken(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(nil)
	iss, err := token.NewIssuer(key, "vouch:test")
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("0", 64)
	tok, _, err := iss.Mint("fn", sum, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := token.Parse(tok)
	for time.Now().Before(claims.ExpiresAt) {
		time.Sleep(100 * time.Millisecond)
	}
	ref := filepath.Join(dir, "ref.json")
	writeFile(t, ref, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":%q,"enclave_url":%q,"trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q}}`,
		sum, tok, unreachable, strings.Repeat("ab", 32))), 0o600)
	r := vouch(t, "node", "-p", fmt.Sprint(freePort(t)), "--ref", ref, "--insecure-gossip")
	want := []string{"the function token expired at " + claims.ExpiresAt.UTC().Format(time.RFC3339), "vouch: hint: ", "vouch token", "SIGHUP"}
	for _, w := range want {
		if r.code != 1 || !strings.Contains(r.stderr, w) {
			t.Fatalf("want exit 1 saying %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.stderr, tok) {
		t.Fatal("the token was printed")
	}
}

// A real node process started with a short-lived token keeps working past
// its expiry after SIGHUP made it re-read a reference with a fresh token;
// a reload that changes the function is refused and logged; the expiry
// metric follows the token.
func TestE2ENodeReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	data := filepath.Join(t.TempDir(), "data")
	enc := startEnclave(t, work, data, 0, nil)
	owner := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data)
	id, sum := parseDeploy(t, owner.ok("deploy", "--builtin", "leader"))
	id2, _ := parseDeploy(t, owner.ok("deploy", "--builtin", "leader"))
	refFile, refNew := filepath.Join(work, "ref.json"), filepath.Join(work, "ref.json.new")
	owner.ok("token", id, "--function-checksum", sum, "--expiry", "6s", "-o", "json", "--out", refFile)
	first, err := api.LoadRef(refFile)
	if err != nil {
		t.Fatal(err)
	}
	firstClaims, _ := token.Parse(first.FunctionToken)

	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(t.TempDir(), "node.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(vouchBin(t), "node", "-p", fmt.Sprint(freePort(t)), "--ref", refFile, "--insecure-gossip", "--http", httpAddr)
	cmd.Dir = work
	cmd.Env = append([]string(nil), baseEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("node log:\n%s", b)
		}
	})
	base := "http://" + httpAddr
	hc := &http.Client{Timeout: 2 * time.Second}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(e2eLimit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within %v: %s", e2eLimit, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	status := func() *node.Status {
		resp, err := hc.Get(base + "/status")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var st node.Status
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return nil
		}
		return &st
	}
	metric := func(name string) string {
		resp, err := hc.Get(base + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
				return f[1]
			}
		}
		return ""
	}
	readyz := func() int {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually("ready", func() bool { return readyz() == http.StatusOK })
	const expMetric = "vouch_node_token_expiry_timestamp_seconds"
	if got, want := metric(expMetric), fmt.Sprintf("%.10g", float64(firstClaims.ExpiresAt.Unix())); !sameFloat(got, want) {
		t.Fatalf("%s = %q, want %s", expMetric, got, want)
	}

	// A reference for another function is refused; the node keeps its own.
	owner.ok("token", id2, "--function-checksum", sum, "--expiry", "1h", "-o", "json", "--cluster-ref", refFile, "--out", refNew, "--force")
	rename(t, refNew, refFile)
	cmd.Process.Signal(syscall.SIGHUP)
	eventually("the refused reload logged", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "SIGHUP: kept the current reference") && strings.Contains(string(b), "changes the function ID")
	})
	// A fresh token for the same function is taken.
	owner.ok("token", id, "--function-checksum", sum, "--expiry", "1h", "-o", "json", "--cluster-ref", refFile, "--out", refNew, "--force")
	rename(t, refNew, refFile)
	second, err := api.LoadRef(refFile)
	if err != nil {
		t.Fatal(err)
	}
	secondClaims, _ := token.Parse(second.FunctionToken)
	cmd.Process.Signal(syscall.SIGHUP)
	eventually("the reload logged", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "SIGHUP: reloaded the function token")
	})
	if got, want := metric(expMetric), fmt.Sprintf("%.10g", float64(secondClaims.ExpiresAt.Unix())); !sameFloat(got, want) {
		t.Fatalf("after the reload, %s = %q, want %s", expMetric, got, want)
	}
	// Past the first token's expiry, the node's calls still succeed: a
	// lone node leads and refreshes its certificate.
	after := firstClaims.ExpiresAt.Add(time.Second)
	eventually("a successful runtime call after the first token expired", func() bool {
		st := status()
		return st != nil && st.Runtime.State == "reachable" && st.Runtime.LastSuccess != nil && st.Runtime.LastSuccess.After(after)
	})
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("readyz = %d after the reload", code)
	}
	if st := status(); st == nil || st.Leader == "" || len(st.Departed) != 0 {
		t.Fatalf("the node lost its leadership or members: %+v", st)
	}
}

// sameFloat compares Prometheus's text form of a gauge with want.
func sameFloat(got, want string) bool {
	var g, w float64
	if _, err := fmt.Sscan(got, &g); err != nil {
		return false
	}
	fmt.Sscan(want, &w)
	return g == w
}

// rename replaces a reference file atomically, as an operator should.
func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
