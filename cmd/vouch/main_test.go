package main

// In-process tests of doMain: everything that needs no runtime process.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline/cmdlinetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/internal/version"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/token"
)

// cleanEnv hides the caller's VOUCH_ variables from the test.
var cleanEnv = cmdlinetest.CleanEnv

// vouch runs doMain in-process.
func vouch(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := doMain(args, &stdout, &stderr)
	return result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// unreachable is a runtime URL nothing listens on: port 1 refuses at once.
const unreachable = "http://127.0.0.1:1"

func TestVersion(t *testing.T) {
	cleanEnv(t)
	r := vouch(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "vouch "+version.Version+"\n  commit  ") || r.stderr != "" {
		t.Fatalf("%s", r)
	}
}

func TestHelp(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{{}, {"help"}, {"-h"}, {"--help"}} {
		r := vouch(t, args...)
		want, out, other := 0, r.stdout, r.stderr // help asked for: stdout
		if len(args) == 0 {
			want, out, other = 2, r.stderr, r.stdout // no command is a usage error
		}
		if r.code != want || other != "" || !strings.Contains(out, "Usage: vouch <command> [flags]") {
			t.Errorf("want exit %d and usage on one stream only:\n%s", want, r)
		}
		for _, c := range commandTable().subs {
			if !strings.Contains(out, "\n  "+c.name+" ") {
				t.Errorf("usage does not list %q:\n%s", c.name, out)
			}
		}
	}
	// Every command's -h prints its flags on stdout and exits 0.
	for _, c := range commandTable().subs {
		r := vouch(t, c.name, "-h")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: vouch "+c.name) || r.stderr != "" {
			t.Errorf("%s", r)
		}
	}
	r := vouch(t, "token", "revoke", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: vouch token revoke") {
		t.Errorf("%s", r)
	}
}

func TestUnknownCommand(t *testing.T) {
	cleanEnv(t)
	for _, name := range []string{"bogus", "Deploy", "--deploy", "-x"} {
		r := vouch(t, name, "x")
		if r.code != 2 || r.stdout != "" ||
			r.stderr != fmt.Sprintf("vouch: error: unknown command %q\nvouch: hint: run `vouch help` for the list of commands\n", name) {
			t.Errorf("%s", r)
		}
	}
}

// receiptFixture writes a receipt signed by a fresh key, as `vouch run -o
// json` would, and returns the key.
type receiptFixture struct {
	pub                     ed25519.PublicKey
	result, bare, input     string // files
	resultJSON              []byte
	output                  []byte
	key                     ed25519.PrivateKey
	dir                     string
	functionID, checksumHex string
}

func newReceiptFixture(t *testing.T) *receiptFixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &receiptFixture{pub: pub, key: priv, dir: t.TempDir(), functionID: "fn-1", output: []byte(`{"leader":"5002"}`)}
	f.checksumHex = receipt.SHA256Hex([]byte("bundle"))
	r := receipt.Receipt{FunctionID: f.functionID, FunctionChecksum: f.checksumHex, InputSHA256: receipt.SHA256Hex([]byte(leaderInput)),
		OutputSHA256: receipt.SHA256Hex(f.output), Seq: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	if err := r.Sign(priv); err != nil {
		t.Fatal(err)
	}
	f.resultJSON, _ = json.Marshal(api.RunResult{Output: f.output, Receipt: r})
	bare, _ := json.Marshal(r)
	f.result, f.bare, f.input = filepath.Join(f.dir, "result.json"), filepath.Join(f.dir, "receipt.json"), filepath.Join(f.dir, "input.json")
	writeFile(t, f.result, f.resultJSON, 0o644)
	writeFile(t, f.bare, bare, 0o644)
	writeFile(t, f.input, []byte(leaderInput), 0o644)
	return f
}

// tampered writes a modified copy of the run result.
func (f *receiptFixture) tampered(t *testing.T, name string, edit func(*api.RunResult)) string {
	t.Helper()
	var res api.RunResult
	if err := json.Unmarshal(f.resultJSON, &res); err != nil {
		t.Fatal(err)
	}
	edit(&res)
	b, _ := json.Marshal(res)
	p := filepath.Join(f.dir, name)
	writeFile(t, p, b, 0o644)
	return p
}

func TestVerifyOffline(t *testing.T) {
	cleanEnv(t)
	f := newReceiptFixture(t)
	hexKey := hex.EncodeToString(f.pub)
	for _, args := range [][]string{
		{"verify", f.result, "--key", hexKey},
		{"verify", "--key", hexKey, f.result},
		{"verify", f.bare, "--key", hexKey},
		{"verify", f.result, "--key", strings.ToUpper(hexKey)},
		{"verify", f.result, "--key", " " + base64.StdEncoding.EncodeToString(f.pub) + "\n"},
		{"verify", f.result, "--key", hexKey, "--input", f.input},
	} {
		r := vouch(t, args...)
		want := fmt.Sprintf("receipt OK\n  function  %s\n  checksum  %s\n", f.functionID, f.checksumHex)
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "\n  seq       42\n") ||
			!strings.Contains(r.stdout, "\n  time      2026-01-02T03:04:05.000Z\n") || r.stderr != "" {
			t.Errorf("%s", r)
		}
	}

	bad := func(args []string, want ...string) {
		t.Helper()
		r := vouch(t, args...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "vouch: error: ") {
			t.Errorf("want exit 1 and an error:\n%s", r)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r)
			}
		}
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	bad([]string{"verify", f.result, "--key", hex.EncodeToString(otherPub)}, "signature does not verify")
	bad([]string{"verify", f.result, "--key", "abcd"}, "--key must be a 32-byte Ed25519 public key")
	bad([]string{"verify", f.result, "--key", hexKey[:62]}, "--key must be")
	for name, edit := range map[string]func(*api.RunResult){
		"output":   func(r *api.RunResult) { r.Output = []byte(`{"leader":"5001"}`) },
		"seq":      func(r *api.RunResult) { r.Receipt.Seq++ },
		"time":     func(r *api.RunResult) { r.Receipt.Time = r.Receipt.Time.Add(time.Nanosecond) },
		"checksum": func(r *api.RunResult) { r.Receipt.FunctionChecksum = receipt.SHA256Hex([]byte("other")) },
		"function": func(r *api.RunResult) { r.Receipt.FunctionID = "fn-2" },
		"input":    func(r *api.RunResult) { r.Receipt.InputSHA256 = receipt.SHA256Hex(nil) },
		"outsum":   func(r *api.RunResult) { r.Receipt.OutputSHA256 = receipt.SHA256Hex(nil) },
		"sig":      func(r *api.RunResult) { r.Receipt.Signature[10] ^= 0x80 },
		"sig-len":  func(r *api.RunResult) { r.Receipt.Signature = r.Receipt.Signature[:63] },
	} {
		bad([]string{"verify", f.tampered(t, name+".json", edit), "--key", hexKey}, "signature does not verify")
	}
	// An output emptied in place (an absent output is a bare receipt).
	emptied := filepath.Join(f.dir, "emptied.json")
	writeFile(t, emptied, bytes.Replace(f.resultJSON, []byte(base64.StdEncoding.EncodeToString(f.output)), nil, 1), 0o644)
	bad([]string{"verify", emptied, "--key", hexKey}, "not the one the receipt covers")
	// A receipt with a key ID that is not the key's.
	bad([]string{"verify", f.tampered(t, "keyid.json", func(r *api.RunResult) { r.Receipt.KeyID = receipt.KeyID(otherPub) }), "--key", hexKey}, "signature does not verify")
	// Malformed files.
	writeFile(t, filepath.Join(f.dir, "junk.json"), []byte("not json"), 0o644)
	bad([]string{"verify", filepath.Join(f.dir, "junk.json"), "--key", hexKey}, "junk.json")
	writeFile(t, filepath.Join(f.dir, "extra.json"), append(bytes.TrimSuffix(f.resultJSON, []byte("}")), []byte(`,"extra":1}`)...), 0o644)
	bad([]string{"verify", filepath.Join(f.dir, "extra.json"), "--key", hexKey}, "extra.json")
	bad([]string{"verify", filepath.Join(f.dir, "missing.json"), "--key", hexKey}, "missing.json")
	// The receipt is for another input.
	writeFile(t, f.input, []byte(`{}`), 0o644)
	bad([]string{"verify", f.result, "--key", hexKey, "--input", f.input}, "not for the input in")
	bad([]string{"verify", f.result, "--key", hexKey, "--input", filepath.Join(f.dir, "nope")}, "nope")
	// The runtime cannot be reached.
	bad([]string{"verify", f.result, "--enclave", unreachable, "--allow-simulated", "--root-fingerprint", strings.Repeat("0", 64)}, "unreachable")
}

// --allow-simulated without a pinned root accepts any self-made simulated
// document: every command that takes it says so, loudly; with a pin, or a
// reference that pins one, it does not.
func TestAllowSimulatedWithoutPinWarns(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	zero := strings.Repeat("0", 64)
	ref := filepath.Join(dir, "ref.json")
	writeFile(t, ref, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":"t","trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q}}`, zero, zero)), 0o600)
	f := newReceiptFixture(t)
	const warning = "vouch: warning: --allow-simulated without --root-fingerprint accepts ANY SIMULATED attestation document"
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"attest", "--allow-simulated", "--enclave", unreachable}, true},
		{[]string{"run", "fn", "{}", "--function-checksum", zero, "--token", "t", "--allow-simulated", "--enclave", unreachable}, true},
		{[]string{"verify", f.result, "--allow-simulated", "--enclave", unreachable}, true},
		{[]string{"attest", "--allow-simulated", "--root-fingerprint", zero, "--enclave", unreachable}, false},
		{[]string{"run", "--ref", ref, "{}", "--allow-simulated", "--enclave", unreachable}, false},
		{[]string{"attest", "--enclave", unreachable}, false},
	} {
		r := vouch(t, tc.args...)
		if r.code != 1 || strings.Contains(r.stderr, warning) != tc.warn {
			t.Errorf("want exit 1 and the warning: %v:\n%s", tc.warn, r)
		}
	}
}

// A folder of source code, such as a Cape-style Python function, is
// refused with a pointer to the guide on writing functions.
func TestSourceFolderHint(t *testing.T) {
	cleanEnv(t)
	root := t.TempDir()
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"app.py", "requirements.txt"}, "app.py is Python, and vouch runs only WebAssembly modules"},
		{[]string{"go.mod", "main.go"}, "GOOS=wasip1 GOARCH=wasm go build"},
		{[]string{"Cargo.toml"}, "cargo build --release --target wasm32-wasip1"},
		{[]string{"echo.c"}, "clang --target=wasm32-wasi"},
		{[]string{"README.md"}, "a function is a WebAssembly module"},
		{nil, "a function is a WebAssembly module"},
	} {
		dir, err := os.MkdirTemp(root, "fn")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tc.files {
			writeFile(t, filepath.Join(dir, f), []byte("x\n"), 0o644)
		}
		for _, args := range [][]string{{"checksum", dir}, {"deploy", dir, "--enclave", "http://127.0.0.1:1"}} {
			r := vouch(t, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "no .wasm file") || !strings.Contains(r.stderr, "hint: ") ||
				!strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "docs/FUNCTIONS.md") {
				t.Errorf("%v with %v: want the hint %q:\n%s", args, tc.files, tc.want, r)
			}
		}
	}
	// A Python file given as the module is pointed to the guide too.
	py := filepath.Join(root, "app.py")
	writeFile(t, py, []byte("def app(x): return x\n"), 0o644)
	if r := vouch(t, "checksum", py); r.code != 1 || !strings.Contains(r.stderr, "not a WebAssembly binary") || !strings.Contains(r.stderr, "app.py is Python") {
		t.Errorf("checksum app.py:\n%s", r)
	}
}

func TestChecksum(t *testing.T) {
	cleanEnv(t)
	sum := leaderChecksum(t)
	r := vouch(t, "checksum", "--builtin", "leader")
	if r.code != 0 || r.stdout != sum+"\n" || r.stderr != "" {
		t.Fatalf("%s", r)
	}
	// The leader's source folder holds more than a bundle (Go sources), so
	// it is refused, naming a file; its .wasm and manifest, copied into a
	// folder of their own, give the built-in's checksum.
	r = vouch(t, "checksum", "../../functions/leader")
	if r.code != 1 || !strings.Contains(r.stderr, "unexpected ") {
		t.Fatalf("%s", r)
	}
	dir := filepath.Join(t.TempDir(), "my-leader")
	os.Mkdir(dir, 0o755)
	for src, dst := range map[string]string{"leader.wasm": "build-output.wasm", "vouch.json": "vouch.json"} {
		b, err := os.ReadFile(filepath.Join("../../functions/leader", src))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, dst), b, 0o644)
	}
	if r := vouch(t, "checksum", dir); r.code != 0 || r.stdout != sum+"\n" {
		t.Fatalf("checksum of a folder with the leader's files: %s, want %s", r, sum)
	}

	// A bare module: its checksum is that of a bundle with no manifest.
	mod := filepath.Join(t.TempDir(), "x.wasm")
	writeFile(t, mod, wasmtest.Trap(), 0o644)
	b, err := bundle.New(wasmtest.Trap(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := vouch(t, "checksum", mod); r.code != 0 || r.stdout != b.Checksum()+"\n" {
		t.Fatalf("%s\nwant %s", r, b.Checksum())
	}
	if r := vouch(t, "checksum", filepath.Join(t.TempDir(), "nothing.wasm")); r.code != 1 || !strings.Contains(r.stderr, "nothing.wasm") {
		t.Fatalf("%s", r)
	}
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	writeFile(t, notWasm, []byte("#!/bin/sh\necho hi\n"), 0o644)
	if r := vouch(t, "checksum", notWasm); r.code != 1 || !strings.Contains(r.stderr, "not a WebAssembly binary") {
		t.Fatalf("%s", r)
	}
	if r := vouch(t, "checksum", "--builtin", "nope"); r.code != 1 || !strings.Contains(r.stderr, `no built-in function "nope" (built-in: `) || !strings.Contains(r.stderr, "leader") {
		t.Fatalf("%s", r)
	}
}

// TestUsageErrors: mistakes on the command line exit 2 with an error and a
// hint pointing at the command's help, before anything is sent.
func TestUsageErrors(t *testing.T) {
	cleanEnv(t)
	f := newReceiptFixture(t)
	data := t.TempDir()
	sum := strings.Repeat("0", 64)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy"}, "deploy takes one PATH"},
		{[]string{"deploy", "a.wasm", "b.wasm"}, "deploy takes one PATH"},
		{[]string{"deploy", "a.wasm", "--builtin", "leader"}, "deploy takes one PATH"},
		{[]string{"deploy", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"deploy", "--builtin"}, "flag needs an argument: -builtin"},
		{[]string{"deploy", "--builtin", "leader", "-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"checksum"}, "checksum takes one PATH"},
		{[]string{"checksum", "a", "b"}, "checksum takes one PATH"},
		{[]string{"checksum", "a", "--builtin", "leader"}, "checksum takes one PATH"},
		{[]string{"run"}, "run needs a function ID"},
		{[]string{"run", "id", "in1", "in2", "--function-checksum", sum}, "give the input once"},
		{[]string{"run", "id", "in", "-f", f.input, "--function-checksum", sum}, "give the input once"},
		{[]string{"run", "id", "in", "--function-checksum", sum, "-o", "xml"}, `-o "xml": want text or json`},
		{[]string{"run", "id", "--pcr", "0"}, "want INDEX:HEX"},
		{[]string{"run", "id", "--pcr", ":ab"}, "want INDEX:HEX"},
		{[]string{"verify"}, "verify takes one RECEIPT_FILE"},
		{[]string{"verify", f.result, f.bare, "--key", "x"}, "verify takes one RECEIPT_FILE"},
		{[]string{"verify", f.result}, "verify needs exactly one of --key PUBKEY and --enclave URL"},
		{[]string{"verify", f.result, "--key", "x", "--enclave", unreachable}, "exactly one of"},
		{[]string{"list", "--bogus"}, "flag provided but not defined"},
		{[]string{"list", "extra"}, "list takes no arguments"},
		{[]string{"list", "-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"delete"}, "delete takes one function ID"},
		{[]string{"delete", "a", "b"}, "delete takes one function ID"},
		{[]string{"token"}, "token takes one function ID"},
		{[]string{"token", "a", "b"}, "token takes one function ID"},
		{[]string{"token", "a", "--expiry", "soon"}, "invalid value \"soon\" for flag -expiry"},
		{[]string{"token", "a", "--function-checksum", sum, "-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"token", "revoke"}, "token revoke takes one TOKEN or --ref FILE"},
		{[]string{"token", "revoke", "a", "b"}, "token revoke takes one TOKEN or --ref FILE"},
		{[]string{"attest", "http://example.com:7070"}, "attest takes no arguments"},
		{[]string{"attest", "-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"enclave", "--data", data, "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"enclave", "--data", data, "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"enclave", "--data", data, "--attestation", "tpm", "--listen", "127.0.0.1:0"}, `--attestation "tpm": want simulated or nitro`},
		{[]string{"node", "-p", "5000", "5001"}, "node takes no arguments"},
		{[]string{"node", "-p", "5000", "--exec"}, "--exec needs a command after --"},
		{[]string{"node", "-p", "5000", "--exec", "--exec-exit", "later", "--", "true"}, `--exec-exit "later"`},
		{[]string{"lock", "-p", "5000"}, "lock needs a command"},
		{[]string{"enclave", "--data", data, "--raft-timeout", "1s"}, `--raft-timeout 1s: want a positive duration, with --replica-id`},
		{[]string{"enclave", "--data", data, "--replica-id", "r1", "--raft-listen", "127.0.0.1:0", "--raft-timeout", "-1s"}, `--raft-timeout -1s`},
		{[]string{"enclave", "--data", data, "--raft-advertise", "127.0.0.1:7071"}, "need --replica-id"},
	} {
		r := vouch(t, tc.args...)
		cmd := tc.args[0]
		if len(tc.args) > 1 && tc.args[1] == "revoke" {
			cmd = "token revoke"
		}
		hint := "vouch: hint: see `vouch " + cmd + " -h`\n"
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, tc.want) || !strings.HasSuffix(r.stderr, hint) {
			t.Errorf("want exit 2, `vouch: error: %s…` and %q:\n%s", tc.want, hint, r)
		}
	}
	// A usage error touches nothing: no data directory was filled.
	if ents, _ := os.ReadDir(data); len(ents) != 0 {
		t.Errorf("a usage error of `vouch enclave` wrote to the data directory: %v", ents)
	}
}

// TestErrorsWithHints: errors that are not usage errors exit 1, and those
// with an obvious next step say it.
func TestErrorsWithHints(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir) // no ./vouch-data here
	sum := strings.Repeat("0", 64)
	refFile := filepath.Join(dir, "ref.json")
	for _, tc := range []struct {
		args  []string
		error string
		hint  string
	}{
		{[]string{"run", "fn"}, "no expected checksum", "pass --function-checksum HEX"},
		{[]string{"run", "fn", "{}", "--allow-simulated"}, "no expected checksum", "`vouch checksum PATH`"},
		{[]string{"token", "fn"}, "no expected checksum", "pass --function-checksum HEX"},
		{[]string{"list", "--enclave", unreachable}, "no owner credential found", "pass --owner-token-file FILE or set VOUCH_OWNER_TOKEN"},
		{[]string{"deploy", "--builtin", "leader", "--enclave", unreachable}, "no owner credential found", "VOUCH_OWNER_TOKEN"},
		{[]string{"delete", "fn", "--enclave", unreachable}, "no owner credential found", "VOUCH_OWNER_TOKEN"},
		{[]string{"token", "revoke", "tok", "--enclave", unreachable}, "no owner credential found", "VOUCH_OWNER_TOKEN"},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--enclave", unreachable}, "no function token", "`vouch token fn --function-checksum " + sum + "`"},
	} {
		r := vouch(t, tc.args...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "vouch: error: "+tc.error) ||
			!strings.Contains(r.stderr, "\nvouch: hint: ") || !strings.Contains(r.stderr, tc.hint) {
			t.Errorf("want exit 1, error %q and a hint with %q:\n%s", tc.error, tc.hint, r)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--enclave", unreachable, "--allow-simulated", "--root-fingerprint", sum, "--token", "t"}, "unreachable"},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--enclave", "ftp://host", "--token", "t"}, `runtime URL "ftp://host" is not an http(s) URL`},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--root-fingerprint", "xyz"}, "trust.root_fingerprint"},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--key-id", "xyz"}, "trust.key_id"},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--pcr", "40:" + strings.Repeat("ab", 48)}, "trust.pcrs"},
		{[]string{"run", "fn", "{}", "--function-checksum", sum, "--pcr", "0:abc"}, "trust.pcrs"},
		{[]string{"run", "--ref", refFile, "{}"}, "ref.json"},
		{[]string{"run", "fn", "--function-checksum", sum, "-f", filepath.Join(dir, "missing-input")}, "missing-input"},
		{[]string{"list", "--owner-token-file", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"list", "--enclave", unreachable, "--owner-token-file", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"attest", "--enclave", unreachable}, "unreachable"},
		{[]string{"token", "revoke", "--ref", refFile}, "ref.json"},
	} {
		r := vouch(t, tc.args...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want exit 1 and an error with %q:\n%s", tc.want, r)
		}
	}
	// Found through VOUCH_OWNER_TOKEN, a malformed credential is an error
	// that does not repeat it.
	t.Setenv("VOUCH_OWNER_TOKEN", "vouch_owner_not-quite")
	r := vouch(t, "list", "--enclave", unreachable)
	if r.code != 1 || !strings.Contains(r.stderr, "malformed owner token") || strings.Contains(r.stderr, "not-quite") {
		t.Errorf("%s", r)
	}
}

// TestRefFromEnvironment: $VOUCH_REF names the reference file, and a
// broken one is reported with its path.
func TestRefFromEnvironment(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.json")
	writeFile(t, ref, []byte(`{"function_id":"fn","function_checksum":"00","function_token":"t"}`), 0o600)
	t.Setenv("VOUCH_REF", ref)
	r := vouch(t, "run", "{}")
	if r.code != 1 || !strings.Contains(r.stderr, "function reference "+ref) || !strings.Contains(r.stderr, "function_checksum") {
		t.Fatalf("%s", r)
	}
	// A good reference whose runtime is not there: the reference's URL is
	// used (the error names it).
	writeFile(t, ref, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":"t","enclave_url":%q,"trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q}}`,
		strings.Repeat("0", 64), unreachable, strings.Repeat("0", 64))), 0o600)
	r = vouch(t, "run", "{}")
	if r.code != 1 || !strings.Contains(r.stderr, unreachable) {
		t.Fatalf("%s", r)
	}
	// --enclave wins over the reference's URL.
	r = vouch(t, "run", "{}", "--enclave", "http://127.0.0.1:2")
	if r.code != 1 || !strings.Contains(r.stderr, "http://127.0.0.1:2") {
		t.Fatalf("%s", r)
	}
}

// TestEnclaveURLPrecedence: the runtime URL comes from --enclave, then
// $VOUCH_ENCLAVE, then the reference's enclave_url, then the default, for
// every command that takes a URL (verify included).
func TestEnclaveURLPrecedence(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	const flagURL, envURL, refURL = "http://127.0.0.1:3", "http://127.0.0.1:4", "http://127.0.0.1:5"
	zero := strings.Repeat("0", 64)
	ref := filepath.Join(dir, "ref.json")
	writeFile(t, ref, []byte(fmt.Sprintf(`{"function_id":"fn","function_checksum":%q,"function_token":"t","enclave_url":%q,"trust":{"platform":"SIMULATED","allow_simulated":true,"root_fingerprint":%q}}`,
		zero, refURL, zero)), 0o600)
	f := newReceiptFixture(t)
	for _, tc := range []struct {
		name string
		env  string // $VOUCH_ENCLAVE
		args []string
		want string
	}{
		{"flag over env and reference", envURL, []string{"run", "--ref", ref, "{}", "--enclave", flagURL}, flagURL},
		{"env over reference", envURL, []string{"run", "--ref", ref, "{}"}, envURL},
		{"reference", "", []string{"run", "--ref", ref, "{}"}, refURL},
		{"attest: flag over env", envURL, []string{"attest", "--ref", ref, "--enclave", flagURL}, flagURL},
		{"attest: env over reference", envURL, []string{"attest", "--ref", ref}, envURL},
		{"attest: reference", "", []string{"attest", "--ref", ref}, refURL},
		{"verify: env", envURL, []string{"verify", f.result, "--allow-simulated", "--root-fingerprint", zero}, envURL},
		{"verify: flag over env", envURL, []string{"verify", f.result, "--enclave", flagURL, "--allow-simulated", "--root-fingerprint", zero}, flagURL},
		{"list: env", envURL, []string{"list", "--owner-token-file", writeOwnerFile(t, dir)}, envURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VOUCH_ENCLAVE", tc.env)
			r := vouch(t, tc.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want+" is unreachable") {
				t.Fatalf("want the error to name %s:\n%s", tc.want, r)
			}
		})
	}
	// --key wins over $VOUCH_ENCLAVE: verify is offline then.
	t.Setenv("VOUCH_ENCLAVE", envURL)
	if r := vouch(t, "verify", f.result, "--key", hex.EncodeToString(f.pub)); r.code != 0 || !strings.HasPrefix(r.stdout, "receipt OK") {
		t.Fatalf("verify --key with VOUCH_ENCLAVE set:\n%s", r)
	}
	// Without a reference or any setting, the default.
	t.Setenv("VOUCH_ENCLAVE", "")
	r := vouch(t, "attest", "--allow-simulated", "--root-fingerprint", zero)
	if r.code != 1 || !strings.Contains(r.stderr, "https://127.0.0.1:7070") {
		t.Fatalf("want the default URL in the error:\n%s", r)
	}
}

// writeOwnerFile writes a well-formed owner credential file (mode 0600).
func writeOwnerFile(t *testing.T, dir string) string {
	t.Helper()
	tok, err := token.GenerateOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "owner.token")
	writeFile(t, p, []byte(tok+"\n"), 0o600)
	return p
}

// TestE2EUsage runs a few mistakes through the real binary: the exit code
// and the two stderr lines are what a shell sees.
func TestE2EUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{nil, 2, []string{"Usage: vouch <command>"}},
		{[]string{"frobnicate"}, 2, []string{`vouch: error: unknown command "frobnicate"`, "vouch: hint: run `vouch help`"}},
		{[]string{"deploy"}, 2, []string{"vouch: error: deploy takes one PATH", "vouch: hint: see `vouch deploy -h`"}},
		{[]string{"run", "fn", "{}"}, 1, []string{"vouch: error: no expected checksum", "vouch: hint: pass --function-checksum HEX"}},
		{[]string{"list", "--nope"}, 2, []string{"vouch: error: flag provided but not defined: -nope", "vouch: hint: see `vouch list -h`"}},
		// A stray argument is refused, not ignored: here it would have
		// started a runtime on the default address.
		{[]string{"enclave", "--data", filepath.Join(c.dir, "data"), "--listen", "127.0.0.1:0", "127.0.0.1:7070"}, 2, []string{"vouch: error: enclave takes no arguments", "vouch: hint: see `vouch enclave -h`"}},
	} {
		r := c.run(tc.args...)
		if r.code != tc.code || r.stdout != "" {
			t.Errorf("want exit %d and nothing on stdout:\n%s", tc.code, r)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r)
			}
		}
	}
	if r := c.ok("version"); !strings.HasPrefix(r.stdout, "vouch "+version.Version+"\n") {
		t.Errorf("%s", r)
	}
}

// FuzzParseReceiptFile feeds arbitrary files to what `vouch verify` reads
// (a run record, a run result or a bare receipt): it never panics, and what
// it accepts is a receipt in canonical form.
func FuzzParseReceiptFile(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	r := receipt.Receipt{FunctionID: "fn-1", FunctionChecksum: receipt.SHA256Hex([]byte("bundle")), InputSHA256: receipt.SHA256Hex(nil),
		OutputSHA256: receipt.SHA256Hex([]byte("out")), Seq: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	if err := r.Sign(priv); err != nil {
		f.Fatal(err)
	}
	rec, _ := json.Marshal(api.RunRecord{Output: []byte("out"), Receipt: r, Attestation: &api.AttestationSummary{Platform: "SIMULATED", Simulated: true}})
	bare, _ := json.Marshal(r)
	f.Add(rec)
	f.Add(bare)
	f.Add([]byte(`{"output":"eyJ9","receipt":{},"attestation":{"platform":"SIMULATED","simulated":true}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, _, err := parseReceiptFile(data)
		if err != nil {
			return
		}
		if _, err := r.Message(); err != nil {
			t.Fatalf("accepted a receipt whose message cannot be built: %v", err)
		}
	})
}
