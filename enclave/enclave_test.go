package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/seal"
	"github.com/vouch-dev/vouch/token"
)

var ctx = context.Background()

const leaderInput = `{"cluster":"demo","node_list":["5000","5001","5002"]}`

func TestDeployRunVerify(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	for _, mode := range []struct{ plaintext, singleShot bool }{{false, false}, {false, true}, {true, false}} {
		plaintext, singleShot := mode.plaintext, mode.singleShot
		for _, sealOut := range []bool{false, true} {
			if plaintext && sealOut {
				continue
			}
			c := env.Client(client.Options{Plaintext: plaintext, SingleShot: singleShot, SealOutput: sealOut})
			res, err := c.Run(ctx, ref, []byte(leaderInput))
			if err != nil {
				t.Fatalf("plaintext=%v single_shot=%v seal_output=%v: %v", plaintext, singleShot, sealOut, err)
			}
			var out struct{ Leader string }
			if err := json.Unmarshal(res.Output, &out); err != nil || out.Leader != "5002" {
				t.Fatalf("output %s: %v", res.Output, err)
			}
			if res.Receipt.FunctionChecksum != ref.Checksum || res.Receipt.Seq == 0 {
				t.Fatalf("receipt %+v", res.Receipt)
			}
			// Anyone can verify the receipt offline with the runtime's key.
			if err := res.Receipt.Verify(env.Server.ReceiptKey()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSeqGrowsAcrossRestarts(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	var last uint64
	for i := 0; i < 3; i++ {
		res, err := c.Run(ctx, ref, []byte(leaderInput))
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Seq <= last {
			t.Fatalf("seq %d after %d", res.Receipt.Seq, last)
		}
		last = res.Receipt.Seq
	}
	env = env.Restart()
	c = env.Client(client.Options{})
	// The function and the token survive the restart.
	res, err := c.Run(ctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if res.Receipt.Seq <= last {
		t.Fatalf("seq went from %d to %d across a restart", last, res.Receipt.Seq)
	}
}

func TestChecksumMismatchSendsNothing(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	want := ref.Checksum
	ref.Checksum = strings.Repeat("0", 64)
	_, err := c.Run(ctx, ref, []byte(leaderInput))
	if !errors.Is(err, client.ErrChecksumMismatch) {
		t.Fatalf("error = %v, want ErrChecksumMismatch", err)
	}
	wantMsg := fmt.Sprintf("function checksum mismatch: deployed %s, expected %s", want, ref.Checksum)
	if err.Error() != wantMsg {
		t.Fatalf("message = %q, want %q", err, wantMsg)
	}
	// The server refuses too, before reading the input.
	resp := post(t, env.URL+"/v1/functions/"+ref.ID+"/run", ref.Token, map[string]string{api.HeaderChecksum: ref.Checksum, "Content-Type": api.ContentTypePlain}, []byte(leaderInput))
	wantError(t, resp, http.StatusConflict, api.CodeChecksumMismatch)
}

func post(t *testing.T, url, bearer string, headers map[string]string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func wantError(t *testing.T, resp *http.Response, status int, code string) *api.Error {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var er api.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil || er.Error == nil {
		t.Fatalf("status %d, body %s: not an error response", resp.StatusCode, body)
	}
	if resp.StatusCode != status || er.Error.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, er.Error.Code, er.Error.Message, status, code)
	}
	if er.Error.Message == "" {
		t.Fatal("error without a message")
	}
	return er.Error
}

func deployRaw(t *testing.T, env *enclavetest.Env, body []byte) *http.Response {
	t.Helper()
	return post(t, env.URL+"/v1/functions", env.Owner, map[string]string{"Content-Type": api.ContentTypeBundle}, body)
}

func bundleOf(t *testing.T, mod []byte, manifest string) []byte {
	t.Helper()
	var m []byte
	if manifest != "" {
		m = []byte(manifest)
	}
	b, err := bundle.New(mod, m)
	if err != nil {
		t.Fatal(err)
	}
	return b.Encode()
}

func TestBadBundles(t *testing.T) {
	env := enclavetest.Start(t)
	leader := env.DeployLeader()
	valid := bundleOf(t, wasmtest.Trap(), "")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"raw wasm instead of a bundle", wasmtest.Trap(), 400, api.CodeInvalidBundle},
		{"not wasm", mustEncodeRaw("#!/bin/sh\n"), 400, api.CodeInvalidBundle},
		{"truncated wasm", bundleOf(t, wasmtest.Recurse()[:30], ""), 400, api.CodeInvalidModule},
		{"truncated bundle", valid[:len(valid)-3], 400, api.CodeInvalidBundle},
		{"bad manifest", mustEncodeWithManifest(wasmtest.Trap(), `{"limits":{"timeout":"forever"}}`), 400, api.CodeInvalidBundle},
		{"network import", bundleOf(t, wasmtest.Import("env", "connect"), ""), 400, api.CodeInvalidModule},
		{"empty body", nil, 400, api.CodeInvalidBundle},
		{"reactor that loops forever in a start section", bundleOf(t, wasmtest.StartLoop(true), `{"limits":{"timeout":"300ms"}}`), 400, api.CodeInvalidModule},
		{"memory minimum over memory_mib", bundleOf(t, leaderModule(t), `{"limits":{"memory_mib":1}}`), 400, api.CodeInvalidModule},
		{"table minimum over memory_mib", bundleOf(t, wasmtest.Table(1<<20, 0), `{"limits":{"memory_mib":1}}`), 400, api.CodeInvalidModule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := wantError(t, deployRaw(t, env, tc.body), tc.status, tc.code)
			// The hint says what to change.
			want := map[string]string{
				"bad manifest": "vouch.json",
				"reactor that loops forever in a start section": `"timeout"`,
				"memory minimum over memory_mib":                `"memory_mib"`,
				"table minimum over memory_mib":                 `"memory_mib"`,
			}[tc.name]
			if want != "" && (!strings.Contains(e.Hint, want) || strings.Contains(e.Hint, "vouch deploy PATH")) {
				t.Fatalf("hint = %q, want one about %s", e.Hint, want)
			}
		})
	}
	// Nothing half-stored: only the leader is listed.
	fns, err := env.Client(client.Options{}).List(ctx)
	if err != nil || len(fns) != 1 || fns[0].FunctionID != leader.ID {
		t.Fatalf("functions after bad deploys: %+v, %v", fns, err)
	}
}

func leaderModule(t *testing.T) []byte {
	t.Helper()
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	return b.Module
}

func mustEncodeRaw(module string) []byte {
	// A bundle whose "module" is not wasm, encoded by hand (bundle.New
	// would refuse it).
	b := &bundle.Bundle{Module: []byte(module)}
	return b.Encode()
}

func mustEncodeWithManifest(mod []byte, manifest string) []byte {
	b := &bundle.Bundle{Module: mod, ManifestJSON: []byte(manifest)}
	return b.Encode()
}

func TestOversizedBundle(t *testing.T) {
	env := enclavetest.Start(t)
	big := make([]byte, bundle.DefaultMaxSize+1)
	wantError(t, deployRaw(t, env, big), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
}

// Functions that misbehave fail their own caller with a clear error; the
// runtime keeps serving.
func TestMisbehavingFunctions(t *testing.T) {
	env := enclavetest.Start(t)
	leader := env.DeployLeader()
	c := env.Client(client.Options{Plaintext: true})
	// Only the endless loop gets a short timeout: on a loaded machine
	// under the race detector, the others must not hit it first.
	short := `{"allow_plaintext_input":true,"limits":{"timeout":"300ms","memory_mib":16}}`
	long := `{"allow_plaintext_input":true,"limits":{"timeout":"20s","memory_mib":16}}`
	tiny := `{"allow_plaintext_input":true,"limits":{"timeout":"20s","memory_mib":1}}`
	for _, tc := range []struct {
		name     string
		mod      []byte
		manifest string
		kind     string
		msg      string
		hint     string
	}{
		{"loops forever", wasmtest.Loop(), short, "timeout", "did not finish within its 300ms timeout", `"timeout"`},
		{"loops forever in a start section", wasmtest.StartLoop(false), short, "timeout", "did not finish within its 300ms timeout", `"timeout"`},
		{"allocates without bound", wasmtest.GrowForever(), long, "out_of_memory", "ran out of memory (limit 16 MiB)", `"memory_mib"`},
		{"allocates without bound (tables)", wasmtest.GrowTableForever(), tiny, "out_of_memory", "ran out of memory (limit 1 MiB)", `"memory_mib"`},
		{"traps", wasmtest.Trap(), long, "trap", "unreachable", ""},
		{"traps with memory_mib 1", wasmtest.Trap(), tiny, "trap", "unreachable", ""},
		{"exits 3", wasmtest.Exit(3), long, "exit", "exited with code 3", ""},
		{"exits 3 with memory_mib 1", wasmtest.Exit(3), tiny, "exit", "exited with code 3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := bundle.New(tc.mod, []byte(tc.manifest))
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.Deploy(ctx, b, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Run(ctx, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}, nil)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Code != api.CodeFunctionFailed || ae.Kind != tc.kind || !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("error = %#v, want 422 %s containing %q", err, tc.kind, tc.msg)
			}
			if !strings.Contains(ae.Hint, tc.hint) || (tc.hint == "" && ae.Hint != "") {
				t.Fatalf("hint = %q, want one naming %s", ae.Hint, tc.hint)
			}
			// Everyone else is still served.
			if _, err := c.Run(ctx, leader, []byte(leaderInput)); err != nil {
				t.Fatalf("leader after %s: %v", tc.name, err)
			}
		})
	}
}

func TestBadRunRequests(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	run := func(id, tok string, body string) *http.Response {
		return post(t, env.URL+"/v1/functions/"+id+"/run", tok, map[string]string{"Content-Type": api.ContentTypePlain}, []byte(body))
	}
	wantError(t, run(ref.ID, ref.Token, `{"cluster":`), http.StatusUnprocessableEntity, api.CodeFunctionFailed)
	e := wantError(t, run(ref.ID, ref.Token, `{"cluster":"demo","node_list":[]}`), http.StatusUnprocessableEntity, api.CodeFunctionFailed)
	if !strings.Contains(e.Message, "node_list is empty") {
		t.Fatalf("message = %q", e.Message)
	}
	wantError(t, run("nosuchfunction", ref.Token, leaderInput), http.StatusNotFound, api.CodeNotFound)
	wantError(t, run(ref.ID, "", leaderInput), http.StatusUnauthorized, api.CodeUnauthorized)
	wantError(t, run(ref.ID, "garbage", leaderInput), http.StatusUnauthorized, api.CodeUnauthorized)
	big := strings.Repeat("x", 3<<20)
	wantError(t, run(ref.ID, ref.Token, big), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	// Still serving.
	if _, err := env.Client(client.Options{}).Run(ctx, ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
}

func TestOwnerEndpoints(t *testing.T) {
	env := enclavetest.Start(t)
	body := bundleOf(t, wasmtest.Trap(), "")
	wantError(t, post(t, env.URL+"/v1/functions", "", nil, body), http.StatusUnauthorized, api.CodeUnauthorized)
	other, _ := token.GenerateOwnerToken()
	wantError(t, post(t, env.URL+"/v1/functions", other, nil, body), http.StatusForbidden, api.CodeForbidden)
	resp, err := http.Get(env.URL + "/v1/functions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wantError(t, resp, http.StatusUnauthorized, api.CodeUnauthorized)
}

func TestTokens(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	b, _ := bundle.New(wasmtest.Trap(), nil)
	otherFn, err := c.Deploy(ctx, b, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherTok, err := c.MintToken(ctx, otherFn.FunctionID, otherFn.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A token for another function.
	_, err = c.Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: otherTok.FunctionToken}, []byte(leaderInput))
	wantAPI(t, err, http.StatusForbidden, "is for function")
	// A token signed by another key.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	forger, _ := token.NewIssuer(priv, "vouch:"+env.Server.KeyID()[:16])
	forged, _, _ := forger.Mint(ref.ID, ref.Checksum, time.Hour)
	_, err = c.Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: forged}, []byte(leaderInput))
	wantAPI(t, err, http.StatusUnauthorized, "signature")
	// alg=none.
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(forged, ".")[1] + "."
	_, err = c.Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: none}, []byte(leaderInput))
	wantAPI(t, err, http.StatusUnauthorized, "")
	// A minted token for the wrong checksum is refused at minting.
	_, err = c.MintToken(ctx, ref.ID, strings.Repeat("1", 64), time.Hour)
	wantAPI(t, err, http.StatusConflict, "function checksum mismatch")
	// Revocation, which survives a restart.
	if _, err := c.Run(ctx, ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, ref.Token); err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(ctx, ref, []byte(leaderInput))
	wantAPI(t, err, http.StatusForbidden, "revoked")
	env = env.Restart()
	c = env.Client(client.Options{})
	_, err = c.Run(ctx, ref, []byte(leaderInput))
	wantAPI(t, err, http.StatusForbidden, "revoked")
	// An expired token: mint one for a second and wait for the runtime to
	// refuse it.
	short, err := c.MintToken(ctx, ref.ID, ref.Checksum, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ref.Token = short.FunctionToken
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = c.Run(ctx, ref, []byte(leaderInput))
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantAPI(t, err, http.StatusUnauthorized, "expired")
}

func wantAPI(t *testing.T, err error, status int, contains string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Error(), contains) {
		t.Fatalf("error = %v, want status %d containing %q", err, status, contains)
	}
}

func TestSealedInputs(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runSealed := func(body []byte) *http.Response {
		return post(t, env.URL+"/v1/functions/"+ref.ID+"/run", ref.Token, map[string]string{"Content-Type": api.ContentTypeSealed}, body)
	}
	// Sealed for another function: the runtime cannot open it.
	boot := &seal.InputOptions{BootID: id.BootID}
	wrong, err := seal.SealInput(id.HPKEKey, "otherfunction", ref.Checksum, []byte(leaderInput), boot)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, runSealed(wrong), http.StatusBadRequest, api.CodeSealedInput)
	// Sealed for another checksum (a client that skipped the check).
	wrong, _ = seal.SealInput(id.HPKEKey, ref.ID, strings.Repeat("a", 64), []byte(leaderInput), boot)
	wantError(t, runSealed(wrong), http.StatusBadRequest, api.CodeSealedInput)
	// Tampered.
	good, _ := seal.SealInput(id.HPKEKey, ref.ID, ref.Checksum, []byte(leaderInput), boot)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	wantError(t, runSealed(bad), http.StatusBadRequest, api.CodeSealedInput)
	// Replayed.
	if resp := runSealed(good); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	wantError(t, runSealed(good), http.StatusBadRequest, api.CodeReplay)
}

func TestPlaintextNeedsManifest(t *testing.T) {
	env := enclavetest.Start(t)
	c := env.Client(client.Options{Plaintext: true})
	b, _ := bundle.New(wasmtest.Exit(0), nil) // no manifest: sealed inputs only
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	_, err = c.Run(ctx, ref, []byte("x"))
	wantAPI(t, err, http.StatusUnsupportedMediaType, "sealed")
	if _, err := env.Client(client.Options{}).Run(ctx, ref, []byte("x")); err != nil {
		t.Fatalf("sealed run: %v", err)
	}
}

func TestAttestation(t *testing.T) {
	env := enclavetest.Start(t)
	// A client that does not allow simulated attestation refuses.
	strict, err := client.New(env.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Attest(ctx); !errors.Is(err, attest.ErrSimulated) || !strings.Contains(err.Error(), "SIMULATED") {
		t.Fatalf("strict client: %v", err)
	}
	// A pinned root that is not this runtime's.
	pinned := env.Trust()
	pinned.RootFingerprint = strings.Repeat("0", 64)
	c, _ := client.New(env.URL, client.Options{Trust: pinned})
	if _, err := c.Attest(ctx); err == nil {
		t.Fatal("wrong pinned root accepted")
	}
	// The right trust passes, and names the keys the server uses.
	id, err := env.Client(client.Options{}).Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Simulated || id.KeyID != env.Server.KeyID() || !strings.HasPrefix(id.String(), "SIMULATED") {
		t.Fatalf("identity %s", id)
	}
}

func TestConcurrentRuns(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	var wg sync.WaitGroup
	seqs := make(chan uint64, 200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				res, err := c.Run(ctx, ref, []byte(leaderInput))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- res.Receipt.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
}

func TestReceiptSignedByAnotherKey(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	res, err := env.Client(client.Options{}).Run(ctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := res.Receipt
	if err := forged.Sign(other); err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(env.Server.ReceiptKey()); !errors.Is(err, receipt.ErrSignature) {
		t.Fatalf("receipt by another key: %v", err)
	}
}
