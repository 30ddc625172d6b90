package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/token"
)

// TestE2EOwnerCredential checks the owner credential's life: printed once,
// on stderr, at the runtime's first start; kept 0600 in DATA/owner.token;
// never printed again; found by the CLI in ./vouch-data, $VOUCH_DATA,
// --owner-token-file, $VOUCH_OWNER_TOKEN or $VOUCH_OWNER_TOKEN_FILE; and a
// wrong one refused.
func TestE2EOwnerCredential(t *testing.T) {
	t.Parallel()
	work := t.TempDir() // the runtime's working directory: ./vouch-data
	data := filepath.Join(work, defaultDataDir)

	// A first start that cannot listen fails with a hint ...
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newCLI(t, work).run("enclave", "--listen", busy.Addr().String())
	busy.Close()
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, "vouch: hint: ") || !strings.Contains(r.stderr, "--listen") {
		t.Fatalf("enclave on a busy port: want exit 1 with an error and a hint about --listen, got:\n%s", r)
	}
	if ownerRE.MatchString(r.stderr) {
		t.Fatalf("a runtime that never started printed an owner credential:\n%s", r)
	}
	// ... and does not swallow the credential: the next, successful,
	// first start still prints it.
	enc := startEnclave(t, work, "", 0, nil)
	stderr := enc.stderr()
	printed := ownerRE.FindAllString(stderr, -1)
	if len(printed) != 1 || !strings.Contains(stderr, "vouch: OWNER CREDENTIAL (shown once; keep it secret)") {
		t.Fatalf("first start: want the owner credential printed once on stderr, got:\n%s", stderr)
	}
	cred := printed[0]
	checkOwnerFrame(t, stderr, cred)
	if out := enc.stdout(); strings.Contains(out, cred) {
		t.Fatalf("the owner credential went to stdout: %q", out)
	}
	fi, err := os.Stat(filepath.Join(data, "owner.token"))
	if err != nil {
		t.Fatalf("no %s/owner.token: %v", defaultDataDir, err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("owner.token has mode %v, want 0600", fi.Mode().Perm())
	}
	if got := ownerTokenIn(t, data); got != cred {
		t.Fatalf("owner.token holds %q, stderr printed %q", got, cred)
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v, want mode 0700", fi, err)
	}

	url := "VOUCH_ENCLAVE=" + enc.url
	here := newCLI(t, work, url)             // finds ./vouch-data
	elsewhere := newCLI(t, t.TempDir(), url) // finds nothing by itself
	credFile := filepath.Join(data, "owner.token")

	here.ok("list")
	elsewhere.fail(1, []string{"no owner credential found", "vouch: hint: ", "--owner-token-file", "VOUCH_OWNER_TOKEN"}, "list")
	elsewhere.with("VOUCH_DATA=" + data).ok("list")
	elsewhere.ok("list", "--owner-token-file", credFile)
	elsewhere.with("VOUCH_OWNER_TOKEN=" + cred).ok("list")
	elsewhere.with("VOUCH_OWNER_TOKEN= " + cred + "\n").ok("list") // pasted with blanks
	elsewhere.with("VOUCH_OWNER_TOKEN_FILE=" + credFile).ok("list")

	// Wrong credentials.
	other, err := token.GenerateOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(elsewhere.dir, "fn.wasm")
	writeFile(t, mod, wasmtest.Exit(0), 0o644)
	elsewhere.with("VOUCH_OWNER_TOKEN="+other).fail(1, []string{"not this runtime's owner credential"}, "deploy", mod)
	here.with("VOUCH_OWNER_TOKEN="+other).fail(1, []string{"not this runtime's owner credential"}, "deploy", mod) // the environment wins over ./vouch-data
	elsewhere.with("VOUCH_OWNER_TOKEN=hunter2").fail(1, []string{"malformed owner token"}, "deploy", mod)
	if r := elsewhere.with("VOUCH_OWNER_TOKEN=vouch_owner_secret-looking-but-wrong").run("list"); strings.Contains(r.stderr, "secret-looking") {
		t.Errorf("the CLI echoed a malformed credential:\n%s", r)
	}
	otherFile := filepath.Join(elsewhere.dir, "other.token")
	writeFile(t, otherFile, []byte(other+"\n"), 0o600)
	elsewhere.fail(1, []string{"not this runtime's owner credential"}, "deploy", mod, "--owner-token-file", otherFile)
	// --owner-token-file wins over the environment.
	elsewhere.with("VOUCH_OWNER_TOKEN="+other).ok("list", "--owner-token-file", credFile)
	// A credential file others can read is refused.
	loose := filepath.Join(elsewhere.dir, "loose.token")
	writeFile(t, loose, []byte(cred), 0o600)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere.fail(1, []string{"chmod 600"}, "list", "--owner-token-file", loose)
	if r := elsewhere.run("list", "--owner-token-file", loose); strings.Contains(r.stdout+r.stderr, cred) {
		t.Fatalf("the CLI printed the credential:\n%s", r)
	}

	// With the right credential: deploy a .wasm file and a folder; deploy
	// prints the checksum `vouch checksum` computes locally.
	r = elsewhere.ok("deploy", mod, "--owner-token-file", credFile)
	id, sum := parseDeploy(t, r)
	if got := strings.TrimSpace(elsewhere.ok("checksum", mod).stdout); got != sum {
		t.Fatalf("vouch checksum %s = %s, deploy printed %s", mod, got, sum)
	}
	folder := filepath.Join(elsewhere.dir, "bundle")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(folder, "main.wasm"), wasmtest.Exit(0), 0o644)
	writeFile(t, filepath.Join(folder, "vouch.json"), []byte(`{"name":"tiny"}`), 0o644)
	r = elsewhere.ok("deploy", folder, "--owner-token-file", credFile)
	fid, fsum := parseDeploy(t, r)
	if !strings.Contains(r.stdout, "Function Name ➜ tiny\n") || fsum == sum {
		t.Fatalf("deploy of a folder with a manifest:\n%s", r)
	}
	if got := strings.TrimSpace(elsewhere.ok("checksum", folder).stdout); got != fsum {
		t.Fatalf("vouch checksum %s = %s, deploy printed %s", folder, got, fsum)
	}
	// --name overrides the manifest's name.
	r = elsewhere.ok("deploy", folder, "--name", "renamed", "--owner-token-file", credFile)
	if !strings.Contains(r.stdout, "Function Name ➜ renamed\n") {
		t.Fatalf("deploy --name:\n%s", r)
	}
	// A bad bundle is refused before anything is sent.
	writeFile(t, filepath.Join(folder, "notes.txt"), []byte("x"), 0o644)
	elsewhere.fail(1, []string{`"notes.txt"`}, "deploy", folder, "--owner-token-file", credFile)

	// A clean stop, then a second start: the credential is not printed
	// again, and still works.
	enc.stop()
	enc2 := enc.restart()
	if s := enc2.stderr(); ownerRE.MatchString(s) || strings.Contains(s, "Owner credential") {
		t.Fatalf("second start printed the owner credential:\n%s", s)
	}
	if got := ownerTokenIn(t, data); got != cred {
		t.Fatalf("owner.token changed across a restart")
	}
	r = here.ok("list")
	for _, want := range []string{id, fid, "tiny", "renamed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list after the restart lacks %q:\n%s", want, r)
		}
	}
}

// TestE2EEnclaveOwnerTokenFile starts a runtime whose owner credential comes
// from --owner-token-file: it neither creates DATA/owner.token nor prints
// anything secret, and it refuses a credential file others can read.
func TestE2EEnclaveOwnerTokenFile(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	cred, err := token.GenerateOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(work, "owner-cred")
	writeFile(t, credFile, []byte(cred+"\n"), 0o600)

	// Refused when others can read it.
	loose := filepath.Join(work, "loose-cred")
	writeFile(t, loose, []byte(cred+"\n"), 0o600)
	if err := os.Chmod(loose, 0o640); err != nil {
		t.Fatal(err)
	}
	r := newCLI(t, work).run("enclave", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--data", filepath.Join(work, "d0"), "--owner-token-file", loose)
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, "chmod 600") || strings.Contains(r.stderr, cred) {
		t.Fatalf("enclave with a loose --owner-token-file:\n%s", r)
	}

	data := filepath.Join(work, "data")
	enc := startEnclave(t, work, data, 0, nil, "--owner-token-file", credFile)
	if s := enc.stderr(); ownerRE.MatchString(s) {
		t.Fatalf("the runtime printed a credential it was given:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(data, "owner.token")); !os.IsNotExist(err) {
		t.Fatalf("DATA/owner.token exists (%v) although --owner-token-file was given", err)
	}
	c := newCLI(t, t.TempDir(), "VOUCH_ENCLAVE="+enc.url)
	c.ok("list", "--owner-token-file", credFile)
	c.with("VOUCH_OWNER_TOKEN=" + cred).ok("list")
	c.with("VOUCH_DATA="+data).fail(1, []string{"no owner credential found"}, "list")
}

// checkOwnerFrame checks that the runtime's stderr shows cred once, framed
// by two rules of '=' around the "OWNER CREDENTIAL" heading, and that no
// log line (anything outside the frame) contains it.
func checkOwnerFrame(t *testing.T, stderr, cred string) {
	t.Helper()
	rule := strings.Repeat("=", 76)
	start := strings.Index(stderr, rule+"\nvouch: OWNER CREDENTIAL")
	if start < 0 {
		t.Fatalf("no framed owner credential on stderr:\n%s", stderr)
	}
	end := strings.Index(stderr[start+len(rule):], rule)
	if end < 0 {
		t.Fatalf("the owner credential's frame is not closed:\n%s", stderr)
	}
	frame := stderr[start : start+len(rule)+end+len(rule)]
	if strings.Count(frame, cred) != 1 || !strings.Contains(frame, "\n    "+cred+"\n") {
		t.Fatalf("the frame does not show the credential once, on a line of its own:\n%s", frame)
	}
	outside := stderr[:start] + stderr[start+len(frame):]
	if strings.Contains(outside, cred) || strings.Contains(outside, cred[len("vouch_owner_"):]) {
		t.Fatalf("the owner credential appears outside its frame (in a log line):\n%s", stderr)
	}
	for _, line := range strings.Split(outside, "\n") {
		if strings.Contains(line, "OWNER") {
			t.Errorf("frame text leaked into the logs: %q", line)
		}
	}
}

// With JSON logs, every log record is a line of JSON and none holds the
// owner credential; the credential is shown once, framed, apart from them.
func TestE2EOwnerCredentialNotInLogs(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	data := filepath.Join(work, "data")
	enc := startEnclave(t, work, data, 0, nil, "--log-format", "json", "--log-level", "debug")
	// Some traffic, with the owner credential and without.
	cred := ownerTokenIn(t, data)
	c := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_OWNER_TOKEN="+cred)
	r := c.ok("deploy", "--builtin", "leader")
	id, sum := parseDeploy(t, r)
	c.ok("token", id, "--function-checksum", sum)
	c.with("VOUCH_OWNER_TOKEN="+cred+"x").fail(1, nil, "list")
	c.fail(1, []string{"no function token"}, "run", id, leaderInput, "--function-checksum", sum, "--allow-simulated")
	enc.stop()

	stderr := enc.stderr()
	checkOwnerFrame(t, stderr, cred)
	records := 0
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is not JSON: %q", line)
			continue
		}
		records++
		if strings.Contains(line, cred) {
			t.Errorf("log record holds the owner credential: %s", line)
		}
	}
	if records < 3 {
		t.Fatalf("only %d JSON log records:\n%s", records, stderr)
	}
	if !strings.Contains(stderr, `"attestation":"SIMULATED"`) || !strings.Contains(stderr, "attestation is SIMULATED") {
		t.Errorf("the start-up log does not say SIMULATED:\n%s", stderr)
	}
}
