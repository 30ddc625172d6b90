package main

// In-process tests of run, token, verify and attest against a real runtime
// (package enclavetest) on loopback, some through a proxy that watches or
// tampers with the traffic.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// runtimeFixture is a real runtime with a function deployed and a function
// token for it.
type runtimeFixture struct {
	env *enclavetest.Env
	ref client.FunctionRef
	// pin is the flags that accept exactly this SIMULATED runtime.
	pin []string
}

// newRuntimeFixture starts a runtime with the leader function, or (leader
// false) a function that starts no language runtime and outputs nothing,
// which deploys much faster.
func newRuntimeFixture(t *testing.T, leader bool) *runtimeFixture {
	t.Helper()
	env := enclavetest.Start(t)
	f := &runtimeFixture{env: env, pin: []string{"--allow-simulated", "--root-fingerprint", env.RootFingerprint}}
	if leader {
		f.ref = env.DeployLeader()
		return f
	}
	b, err := bundle.New(wasmtest.Exit(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{})
	d, err := c.Deploy(context.Background(), b, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.MintToken(context.Background(), d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.ref = client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}
	return f
}

// runArgs returns the arguments of a `vouch run` of the leader function at
// url, with extra flags.
func (f *runtimeFixture) runArgs(url string, extra ...string) []string {
	args := append([]string{"run", f.ref.ID, leaderInput, "--function-checksum", f.ref.Checksum, "--enclave", url}, f.pin...)
	return append(args, extra...)
}

// headerLog records the Authorization headers a proxy forwards.
type headerLog struct {
	mu    sync.Mutex
	auths []string
}

func (h *headerLog) watch(p *enclavetest.Proxy) {
	p.Tamper(func(r *http.Request, _ int, body []byte) []byte {
		h.mu.Lock()
		defer h.mu.Unlock()
		for k, vs := range r.Header {
			for _, v := range vs {
				h.auths = append(h.auths, k+": "+v)
			}
		}
		return body
	})
}

func (h *headerLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.auths, "\n")
}

// `vouch run` never sends the owner credential, however easy it is to
// find: without a function token it stops before any request; with one,
// only that token travels.
func TestRunNeverSendsOwnerCredential(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, true)
	dir := t.TempDir()
	t.Chdir(dir)
	// The owner credential everywhere the owner commands look for it.
	if err := os.MkdirAll(filepath.Join(dir, defaultDataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, defaultDataDir, "owner.token"), []byte(f.env.Owner+"\n"), 0o600)
	t.Setenv("VOUCH_OWNER_TOKEN", f.env.Owner)
	proxy := enclavetest.NewProxy(t, f.env.URL)
	var seen headerLog
	seen.watch(proxy)

	r := vouch(t, f.runArgs(proxy.URL)...)
	if r.code != 1 || !strings.Contains(r.stderr, "vouch: error: no function token") ||
		!strings.Contains(r.stderr, "vouch: hint: the runtime's owner mints one with `vouch token "+f.ref.ID+" --function-checksum "+f.ref.Checksum+"`") {
		t.Fatalf("run without a function token:\n%s", r)
	}
	if s := seen.String(); s != "" {
		t.Fatalf("run without a token sent requests:\n%s", s)
	}
	if strings.Contains(r.stdout+r.stderr, f.env.Owner) {
		t.Fatal("the owner credential was printed")
	}
	// With a token (flag or environment), that token is what travels.
	if r := vouch(t, f.runArgs(proxy.URL, "--token", f.ref.Token)...); r.code != 0 || leaderOf(t, []byte(r.stdout)) != "5002" {
		t.Fatalf("run --token:\n%s", r)
	}
	t.Setenv("VOUCH_TOKEN", f.ref.Token)
	if r := vouch(t, f.runArgs(proxy.URL)...); r.code != 0 || leaderOf(t, []byte(r.stdout)) != "5002" {
		t.Fatalf("run with $VOUCH_TOKEN:\n%s", r)
	}
	s := seen.String()
	if strings.Contains(s, f.env.Owner) || strings.Contains(s, f.env.Owner[len("vouch_owner_"):]) {
		t.Fatalf("the owner credential went over the wire:\n%s", s)
	}
	if !strings.Contains(s, "Authorization: Bearer "+f.ref.Token) {
		t.Fatalf("the function token did not go over the wire:\n%s", s)
	}
	// The flag beats the environment.
	t.Setenv("VOUCH_TOKEN", "not-a-token")
	if r := vouch(t, f.runArgs(proxy.URL, "--token", f.ref.Token)...); r.code != 0 {
		t.Fatalf("--token over $VOUCH_TOKEN:\n%s", r)
	}
	if r := vouch(t, f.runArgs(proxy.URL)...); r.code != 1 || !strings.Contains(r.stderr, "function token refused") {
		t.Fatalf("a bad $VOUCH_TOKEN:\n%s", r)
	}
}

// `vouch run` through a man in the middle: whatever it changes in the
// signed answer, the run exits 1 with an error that says the receipt or
// statement does not verify, and prints no output.
func TestRunThroughTamperingProxyCLI(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, false)
	proxy := enclavetest.NewProxy(t, f.env.URL)
	rewrite := func(route string, edit func(map[string]any)) func(*http.Request, int, []byte) []byte {
		return func(r *http.Request, status int, body []byte) []byte {
			if enclavetest.Route(r) != route || status != http.StatusOK {
				return body
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("proxy: %v", err)
				return body
			}
			edit(m)
			out, _ := json.Marshal(m)
			return out
		}
	}
	flipSig := func(m map[string]any) {
		s := m["signature"].(string)
		if s[0] == 'A' {
			m["signature"] = "B" + s[1:]
		} else {
			m["signature"] = "A" + s[1:]
		}
	}
	const run, get = "POST /v1/functions/{id}/run", "GET /v1/functions/{id}"
	for _, tc := range []struct {
		name   string
		tamper func(*http.Request, int, []byte) []byte
		want   []string
	}{
		{"receipt signature", rewrite(run, func(m map[string]any) { flipSig(m["receipt"].(map[string]any)) }), []string{"receipt does not verify", "signature does not verify", "do not trust this output"}},
		{"output", rewrite(run, func(m map[string]any) { m["output"] = "eyJsZWFkZXIiOiI1MDAxIn0=" }), []string{"receipt does not verify", "another output"}},
		{"seq", rewrite(run, func(m map[string]any) { m["receipt"].(map[string]any)["seq"] = 1 }), []string{"receipt does not verify"}},
		{"function_id", rewrite(run, func(m map[string]any) { m["receipt"].(map[string]any)["function_id"] = "otherfunction" }), []string{"receipt does not verify"}},
		{"statement checksum", rewrite(get, func(m map[string]any) {
			m["statement"].(map[string]any)["function_checksum"] = strings.Repeat("ab", 32)
		}), []string{"statement is about"}},
		{"statement signature", rewrite(get, func(m map[string]any) { flipSig(m["statement"].(map[string]any)) }), []string{"statement for function", "signature does not verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Tamper(tc.tamper)
			defer proxy.Tamper(nil)
			r := vouch(t, f.runArgs(proxy.URL, "--token", f.ref.Token)...)
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("want exit 1 and no output:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r)
				}
			}
		})
	}
	// A wrong expected checksum sends no run request at all.
	before := proxy.Count(run)
	args := f.runArgs(proxy.URL, "--token", f.ref.Token)
	args[4] = strings.Repeat("0", 64)
	if r := vouch(t, args...); r.code != 1 || !strings.Contains(r.stderr, "function checksum mismatch") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Fatalf("checksum mismatch:\n%s", r)
	}
	if n := proxy.Count(run) - before; n != 0 {
		t.Fatalf("%d run requests after a checksum mismatch, want 0", n)
	}
}

// SIMULATED shows wherever the attestation shows: `vouch run` (text and
// json), `vouch verify` (with the runtime, and with a key from a record),
// `vouch attest`.
func TestSimulatedIsShown(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, false)
	url := f.env.URL
	r := vouch(t, f.runArgs(url, "--token", f.ref.Token)...)
	if r.code != 0 || !strings.Contains(r.stderr, "receipt verified") || !strings.Contains(r.stderr, "SIMULATED attestation") {
		t.Fatalf("run (text):\n%s", r)
	}
	r = vouch(t, f.runArgs(url, "--token", f.ref.Token, "-o", "json")...)
	var rec api.RunRecord
	if r.code != 0 || api.UnmarshalStrict([]byte(r.stdout), &rec) != nil {
		t.Fatalf("run -o json:\n%s", r)
	}
	if rec.Attestation == nil || rec.Attestation.Platform != "SIMULATED" || !rec.Attestation.Simulated ||
		rec.Attestation.RootFingerprint != f.env.RootFingerprint || rec.Attestation.KeyID != f.env.Server.KeyID() {
		t.Fatalf("run -o json: attestation %+v; want platform SIMULATED, simulated true, the root and key", rec.Attestation)
	}
	if !strings.Contains(r.stderr, "SIMULATED") {
		t.Errorf("run -o json says nothing about SIMULATED on stderr:\n%s", r)
	}
	file := filepath.Join(t.TempDir(), "result.json")
	writeFile(t, file, []byte(r.stdout), 0o600)

	r = vouch(t, append([]string{"verify", file, "--enclave", url}, f.pin...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "*** SIMULATED attestation") || !strings.Contains(r.stdout, "receipt OK") || !strings.Contains(r.stdout, "attested  SIMULATED") {
		t.Fatalf("verify --enclave:\n%s", r)
	}
	r = vouch(t, "verify", file, "--key", fmt.Sprintf("%x", f.env.Server.ReceiptKey()))
	if r.code != 0 || !strings.Contains(r.stdout, "recorded  SIMULATED attestation") {
		t.Fatalf("verify --key of a SIMULATED record:\n%s", r)
	}
	r = vouch(t, append([]string{"attest", "--enclave", url}, f.pin...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "*** SIMULATED attestation") || !strings.Contains(r.stdout, "platform          SIMULATED") {
		t.Fatalf("attest:\n%s", r)
	}
	r = vouch(t, append([]string{"attest", "--enclave", url, "-o", "json"}, f.pin...)...)
	var att map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &att) != nil || att["platform"] != "SIMULATED" || att["simulated"] != true {
		t.Fatalf("attest -o json:\n%s", r)
	}
}

// `vouch token -o json --out FILE` writes the reference with mode 0600 and
// never replaces a file without --force; stdout still works. The reference
// pins the runtime's root and receipt key, and `vouch token` says loudly
// that it allows SIMULATED attestation, pinned to that root.
func TestTokenReference(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, true)
	t.Setenv("VOUCH_OWNER_TOKEN", f.env.Owner)
	dir := t.TempDir()
	out := filepath.Join(dir, "leader_election.json")
	args := []string{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "-o", "json"}

	r := vouch(t, append(args, "--out", out)...)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "wrote the function reference to "+out) {
		t.Fatalf("token --out:\n%s", r)
	}
	warn := regexp.MustCompile(`vouch: warning: this reference allows SIMULATED attestation, pinned to root ` + f.env.RootFingerprint + ` and receipt key ` + f.env.Server.KeyID())
	if !warn.MatchString(r.stderr) || !strings.Contains(r.stderr, "*** the runtime's attestation is SIMULATED") {
		t.Errorf("no loud warning that the reference allows SIMULATED, pinned to the root:\n%s", r)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("reference written with mode %04o, want 0600", fi.Mode().Perm())
	}
	ref, err := api.LoadRef(out)
	if err != nil {
		t.Fatal(err)
	}
	tr := ref.Trust
	if tr.Platform != "SIMULATED" || !tr.AllowSimulated || tr.RootFingerprint != f.env.RootFingerprint || tr.KeyID != f.env.Server.KeyID() || len(tr.PCRs["0"]) != 1 || len(tr.PCRs["0"][0]) != 64 {
		t.Fatalf("trust block %+v: want SIMULATED allowed, pinned to the root and the receipt key, with a 32-byte PCR0", tr)
	}
	before, _ := os.ReadFile(out)
	// No overwrite without --force, and no token is minted for nothing.
	r = vouch(t, append(args, "--out", out)...)
	if r.code != 1 || !strings.Contains(r.stderr, out+" already exists") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("token --out over an existing file:\n%s", r)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(after, before) {
		t.Fatal("a refused --out changed the file")
	}
	r = vouch(t, append(args, "--out", out, "--force")...)
	if after, _ := os.ReadFile(out); r.code != 0 || bytes.Equal(after, before) {
		t.Fatalf("token --out --force:\n%s", r)
	}
	// The reference works, with no other setting.
	if r := vouch(t, "run", "--ref", out, leaderInput); r.code != 0 || leaderOf(t, []byte(r.stdout)) != "5002" {
		t.Fatalf("run --ref:\n%s", r)
	}
	// Usage mistakes.
	for _, bad := range [][]string{
		{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "-o", "text", "--out", out + "2"},
		{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--force"},
	} {
		if r := vouch(t, bad...); r.code != 2 {
			t.Errorf("want a usage error:\n%s", r)
		}
	}
	// --out alone means -o json.
	if r := vouch(t, "token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "--out", out+"3"); r.code != 0 {
		t.Fatalf("--out without -o:\n%s", r)
	}
	if _, err := api.LoadRef(out + "3"); err != nil {
		t.Fatal(err)
	}

	// Stdout still works: the seed workflow, `-o json > leader_election.json`.
	r = vouch(t, args...)
	if r.code != 0 {
		t.Fatalf("token -o json:\n%s", r)
	}
	if _, err := api.ParseRef([]byte(r.stdout)); err != nil {
		t.Fatalf("token -o json on stdout: %v\n%s", err, r)
	}
	// Redirected to a file others can read, it warns.
	loose := filepath.Join(dir, "loose.json")
	fh, err := os.OpenFile(loose, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fh.Chmod(0o644) // whatever the umask
	}
	var stderr bytes.Buffer
	code := doMain(args, fh, &stderr)
	fh.Close()
	if code != 0 {
		t.Fatalf("token -o json > file: %d\n%s", code, stderr.String())
	}
	if runtime.GOOS != "windows" && !strings.Contains(stderr.String(), "stdout is a file with mode 0644") {
		t.Errorf("no warning about a group/other-readable stdout file:\n%s", stderr.String())
	}
	// So does the bare token, redirected to such a file; a 0600 file is
	// quiet.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o600} {
		name := filepath.Join(dir, fmt.Sprintf("token-%04o", mode))
		fh, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY, mode)
		if err != nil {
			t.Fatal(err)
		}
		fh.Chmod(mode) // whatever the umask
		var stderr bytes.Buffer
		code := doMain([]string{"token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL}, fh, &stderr)
		fh.Close()
		tok, _ := os.ReadFile(name)
		if code != 0 || !strings.HasPrefix(string(tok), "eyJ") {
			t.Fatalf("token > file (mode %04o): %d, file %q\n%s", mode, code, tok, stderr.String())
		}
		warned := strings.Contains(stderr.String(), fmt.Sprintf("vouch: warning: stdout is a file with mode %04o: group or others can read the function token in it", mode))
		if runtime.GOOS != "windows" && warned != (mode != 0o600) {
			t.Errorf("token > file (mode %04o): warned %v\n%s", mode, warned, stderr.String())
		}
	}
	// Reading that file warns too, and still works.
	r = vouch(t, "run", "--ref", loose, leaderInput)
	if r.code != 0 || (runtime.GOOS != "windows" && !strings.Contains(r.stderr, "vouch: warning: function reference file is readable by group or others: "+loose+" has mode 0644")) {
		t.Fatalf("run --ref of a 0644 reference:\n%s", r)
	}
	if r := vouch(t, "run", "--ref", out, leaderInput); strings.Contains(r.stderr, "readable by group") {
		t.Fatalf("a 0600 reference warned:\n%s", r)
	}
}

// A reference pins the receipt key: when the runtime's keys are replaced,
// `vouch run --ref` refuses it with a clear error and a hint.
func TestRunRefusesAnotherKeyWhenPinned(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, false)
	t.Setenv("VOUCH_OWNER_TOKEN", f.env.Owner)
	out := filepath.Join(t.TempDir(), "ref.json")
	if r := vouch(t, "token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "--out", out); r.code != 0 {
		t.Fatalf("%s", r)
	}
	old := f.env.Server.KeyID()
	f.env.Stop()
	if err := os.Remove(filepath.Join(f.env.Dir, "receipt_ed25519.pem")); err != nil {
		t.Fatal(err)
	}
	env := enclavetest.StartIn(t, f.env.Dir, f.env.Addr())
	r := vouch(t, "run", "--ref", out, leaderInput)
	if r.code != 1 || !strings.Contains(r.stderr, "pins "+old) || !strings.Contains(r.stderr, env.Server.KeyID()) ||
		!strings.Contains(r.stderr, "vouch: hint: ") || !strings.Contains(r.stderr, "vouch token") {
		t.Fatalf("run --ref after the receipt key changed:\n%s", r)
	}
}
