package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/receipt"
)

const leaderInput = `{"cluster":"demo","node_list":["5000","5001","5002"]}`

// tamperRun returns a Tamper function that rewrites successful run answers
// with f.
func tamperRun(t *testing.T, f func(*api.RunResult)) func(*http.Request, int, []byte) []byte {
	return func(r *http.Request, status int, body []byte) []byte {
		if enclavetest.Route(r) != "POST /v1/functions/{id}/run" || status != http.StatusOK {
			return body
		}
		var res api.RunResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Errorf("proxy: run answer: %v", err)
			return body
		}
		f(&res)
		out, _ := json.Marshal(res)
		return out
	}
}

// tamperStatement returns a Tamper function that rewrites function
// descriptions with f.
func tamperStatement(t *testing.T, f func(*api.Function)) func(*http.Request, int, []byte) []byte {
	return func(r *http.Request, status int, body []byte) []byte {
		if enclavetest.Route(r) != "GET /v1/functions/{id}" || status != http.StatusOK {
			return body
		}
		var fn api.Function
		if err := json.Unmarshal(body, &fn); err != nil {
			t.Errorf("proxy: function answer: %v", err)
			return body
		}
		f(&fn)
		out, _ := json.Marshal(fn)
		return out
	}
}

// TestLeaderRuns runs the leader function on one runtime (starting the Go
// runtime inside its module is the slow part of a deploy, so the tests
// share it): through a tampering proxy, with a wrong checksum, and many
// times over one connection.
func TestLeaderRuns(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	t.Run("tampering proxy", func(t *testing.T) { testRunThroughTamperingProxy(t, env, ref) })
	t.Run("checksum mismatch", func(t *testing.T) { testChecksumMismatchSendsNoRunRequest(t, env, ref) })
	t.Run("connection reuse", func(t *testing.T) { testConnectionReuse(t, env, ref) })
}

// testRunThroughTamperingProxy puts a man in the middle between a client and
// a real runtime: whatever it changes in the signed answers, Run fails with
// an error that says what does not verify, and after a tampered statement it
// sends no input at all.
func testRunThroughTamperingProxy(t *testing.T, env *enclavetest.Env, ref client.FunctionRef) {
	proxy := enclavetest.NewProxy(t, env.URL)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := strings.Repeat("ab", 32)

	for _, tc := range []struct {
		name   string
		tamper func(*http.Request, int, []byte) []byte
		want   string // in the error
		isErr  error  // wrapped, if not nil
		runs   int    // run requests that reach the runtime
	}{
		{"receipt signature", tamperRun(t, func(r *api.RunResult) { r.Receipt.Signature[7] ^= 1 }), "signature does not verify", client.ErrReceipt, 1},
		{"output", tamperRun(t, func(r *api.RunResult) { r.Output = bytes.Replace(r.Output, []byte("5002"), []byte("5001"), 1) }), "it is for another output", client.ErrReceipt, 1},
		{"seq", tamperRun(t, func(r *api.RunResult) { r.Receipt.Seq += 1000 }), "signature does not verify", client.ErrReceipt, 1},
		{"receipt function_id", tamperRun(t, func(r *api.RunResult) { r.Receipt.FunctionID = "otherfunction" }), "signature does not verify", client.ErrReceipt, 1},
		{"receipt checksum", tamperRun(t, func(r *api.RunResult) { r.Receipt.FunctionChecksum = other }), "signature does not verify", client.ErrReceipt, 1},
		{"receipt key_id", tamperRun(t, func(r *api.RunResult) { r.Receipt.KeyID = other }), "does not verify", client.ErrReceipt, 1},
		{"receipt signed by another key", tamperRun(t, func(r *api.RunResult) {
			if err := r.Receipt.Sign(otherKey); err != nil {
				t.Fatal(err)
			}
		}), "does not verify", client.ErrReceipt, 1},
		{"statement checksum", tamperStatement(t, func(f *api.Function) { f.FunctionChecksum, f.Statement.FunctionChecksum = other, other }), "signature does not verify", nil, 0},
		{"statement checksum claimed as expected", tamperStatement(t, func(f *api.Function) {
			// A runtime running other code would claim the expected
			// checksum: only the signature gives it away.
			f.Statement.FunctionChecksum = ref.Checksum
			f.Statement.Signature[3] ^= 0x10
		}), "signature does not verify", nil, 0},
		{"statement signature", tamperStatement(t, func(f *api.Function) { f.Statement.Signature[0] ^= 1 }), "signature does not verify", nil, 0},
		{"statement signed by another key", tamperStatement(t, func(f *api.Function) {
			if err := f.Statement.Sign(otherKey); err != nil {
				t.Fatal(err)
			}
		}), "signature does not verify", nil, 0},
		{"statement for another function", tamperStatement(t, func(f *api.Function) { f.Statement.FunctionID = "otherfunction" }), "statement is about otherfunction", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c2, err := client.New(proxy.URL, client.Options{Trust: env.Trust(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			proxy.Tamper(tc.tamper)
			defer proxy.Tamper(nil)
			before := proxy.Count("POST /v1/functions/{id}/run")
			res, err := c2.Run(context.Background(), ref, []byte(leaderInput))
			if err == nil || res != nil {
				t.Fatalf("Run through the tampering proxy succeeded: %s", res.Output)
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.isErr != nil && !errors.Is(err, tc.isErr)) {
				t.Errorf("error %q: want %q (wrapping %v)", err, tc.want, tc.isErr)
			}
			if n := proxy.Count("POST /v1/functions/{id}/run") - before; n != tc.runs {
				t.Errorf("%d run requests reached the runtime, want %d", n, tc.runs)
			}
		})
	}
	// The untouched path works through the same proxy.
	c, err := client.New(proxy.URL, client.Options{Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatalf("through an honest proxy: %v", err)
	}
}

// A wrong expected checksum stops Run before any input is sent: the proxy
// sees the identity and the statement, and no run request.
func testChecksumMismatchSendsNoRunRequest(t *testing.T, env *enclavetest.Env, ref client.FunctionRef) {
	proxy := enclavetest.NewProxy(t, env.URL)
	c, err := client.New(proxy.URL, client.Options{Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrong := ref
	wrong.Checksum = strings.Repeat("0", 64)
	for range 3 {
		if _, err := c.Run(context.Background(), wrong, []byte("secret input")); !errors.Is(err, client.ErrChecksumMismatch) {
			t.Fatalf("err = %v, want ErrChecksumMismatch", err)
		}
	}
	if n := proxy.Count("POST /v1/functions/{id}/run"); n != 0 {
		t.Fatalf("%d run requests reached the runtime after a checksum mismatch, want 0", n)
	}
	if proxy.Count("GET /v1/functions/{id}") == 0 || proxy.Count("GET /v1/identity") == 0 {
		t.Fatal("the client did not ask for the identity and the statement")
	}
	// The right checksum goes through.
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("POST /v1/functions/{id}/run"); n != 1 {
		t.Fatalf("%d run requests, want 1", n)
	}
}

// Repeated runs reuse one connection: attestation, statement and every run
// travel over the first connection the client opened.
func testConnectionReuse(t *testing.T, env *enclavetest.Env, ref client.FunctionRef) {
	c := env.Client(client.Options{})
	var mu sync.Mutex
	var fresh, reused int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		mu.Lock()
		defer mu.Unlock()
		if info.Reused {
			reused++
		} else {
			fresh++
		}
	}})
	const runs = 25
	for range runs {
		if _, err := c.Run(ctx, ref, []byte(leaderInput)); err != nil {
			t.Fatal(err)
		}
	}
	// An error answer does not cost the connection either.
	bad := ref
	bad.Token = "not-a-token"
	if _, err := c.Run(ctx, bad, []byte(leaderInput)); err == nil {
		t.Fatal("a run with a bad token succeeded")
	}
	if _, err := c.Run(ctx, ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fresh != 1 || reused < runs+1 {
		t.Fatalf("%d new connections and %d reused for %d runs; want 1 new and the rest reused", fresh, reused, runs+2)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// deployTiny deploys a function that starts no language runtime (it exits
// at once, with an empty output) and returns a reference with a token.
func deployTiny(t *testing.T, env *enclavetest.Env) client.FunctionRef {
	t.Helper()
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
	return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}
}

// A client keeps working across a restart of the runtime: the restarted
// runtime refuses the input sealed for its previous boot (stale_boot), and
// the client fetches the identity again and retries, once.
func TestRunAcrossRuntimeRestart(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	proxy := enclavetest.NewProxy(t, env.URL)
	c, err := client.New(proxy.URL, client.Options{Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	boot := c.Cached().BootID
	for i := range 2 {
		env = env.Restart()
		attests := proxy.Count("GET /v1/identity")
		res, err := c.Run(context.Background(), ref, []byte(leaderInput))
		if err != nil {
			t.Fatalf("after restart %d: %v", i+1, err)
		}
		if res.Receipt.Verify(env.Server.ReceiptKey()) != nil {
			t.Fatal("receipt does not verify")
		}
		if got := proxy.Count("GET /v1/identity") - attests; got != 1 {
			t.Errorf("restart %d: %d attestations, want exactly 1", i+1, got)
		}
		if bytes.Equal(c.Cached().BootID, boot) || !bytes.Equal(c.Cached().BootID, env.Server.BootID()) {
			t.Errorf("the client's boot ID %x is not the restarted runtime's %x", c.Cached().BootID, env.Server.BootID())
		}
		boot = c.Cached().BootID
	}
	// 2 restarts: 2 refused runs, plus 1 + 2 that went through.
	if n := proxy.Count("POST /v1/functions/{id}/run"); n != 5 {
		t.Errorf("%d run requests, want 5", n)
	}
}

// restartWithNewKey stops the runtime, deletes one of its key files so that
// it makes a new key, and starts it again on the same port and directory.
func restartWithNewKey(t *testing.T, env *enclavetest.Env, keyFile string) *enclavetest.Env {
	t.Helper()
	env.Stop()
	if err := os.Remove(filepath.Join(env.Dir, keyFile)); err != nil {
		t.Fatal(err)
	}
	return enclavetest.StartIn(t, env.Dir, env.Addr())
}

// After the runtime's HPKE key changes, the runtime cannot open inputs
// sealed to the cached key; the client attests again, sees the new key, and
// retries: runs keep working, and the change is logged.
func TestRunAfterHPKEKeyChange(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	var logs syncBuffer
	c := env.Client(client.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	oldHPKE := c.Cached().HPKEKey
	env = restartWithNewKey(t, env, "hpke_x25519.pem")
	for i := range 3 {
		if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
			t.Fatalf("run %d after the HPKE key changed: %v", i, err)
		}
	}
	if bytes.Equal(c.Cached().HPKEKey, oldHPKE) {
		t.Fatal("the client still has the old HPKE key")
	}
	if !strings.Contains(logs.String(), "HPKE key changed") {
		t.Errorf("no warning about the key change in the log:\n%s", logs.String())
	}
}

// After the runtime's receipt key changes: without a pinned key_id the
// client trusts the new key (its attestation passes the policy) and warns;
// with one it refuses the runtime, with ErrPinnedKey and a hint.
func TestRunAfterReceiptKeyChange(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	// Tokens are issued under the receipt key's ID, so after the change
	// only the owner credential runs the function.
	ref.Token = env.Owner
	var logs syncBuffer
	unpinned := env.Client(client.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	first, err := unpinned.Run(context.Background(), ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	oldKey := unpinned.Cached().KeyID
	pinnedTrust := env.Trust()
	pinnedTrust.KeyID = oldKey
	pinned := env.Client(client.Options{Trust: pinnedTrust, Logger: slog.New(slog.DiscardHandler)})
	if _, err := pinned.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}

	env = restartWithNewKey(t, env, "receipt_ed25519.pem")
	if env.Server.KeyID() == oldKey {
		t.Fatal("the runtime kept its receipt key")
	}
	res, err := unpinned.Run(context.Background(), ref, []byte(leaderInput))
	if err != nil {
		t.Fatalf("unpinned client after the receipt key changed: %v", err)
	}
	if res.Receipt.KeyID != env.Server.KeyID() || res.Receipt.KeyID == first.Receipt.KeyID || unpinned.Cached().KeyID != env.Server.KeyID() {
		t.Fatalf("receipt key %s, client's %s, runtime's %s", res.Receipt.KeyID, unpinned.Cached().KeyID, env.Server.KeyID())
	}
	if l := logs.String(); !strings.Contains(l, "receipt key changed") || !strings.Contains(l, oldKey) || !strings.Contains(l, env.Server.KeyID()) {
		t.Errorf("no warning naming both keys:\n%s", l)
	}

	_, err = pinned.Run(context.Background(), ref, []byte(leaderInput))
	if !errors.Is(err, client.ErrPinnedKey) || !strings.Contains(err.Error(), oldKey) || !strings.Contains(err.Error(), "Trust.KeyID") {
		t.Fatalf("pinned client after the receipt key changed: %v; want ErrPinnedKey naming the pin, with a hint", err)
	}
	// A new client with the pin is refused at attestation, too.
	fresh, err := client.New(env.URL, client.Options{Trust: pinnedTrust})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.Attest(context.Background()); !errors.Is(err, client.ErrPinnedKey) {
		t.Fatalf("new pinned client: %v, want ErrPinnedKey", err)
	}
}

// The statement cache does not outlive the key: a statement signed by a key
// the client has not attested makes it attest again.
func TestStatementUnderNewKey(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	c := env.Client(client.Options{Logger: slog.New(slog.DiscardHandler)})
	if _, err := c.Attest(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := c.Cached().KeyID
	env = restartWithNewKey(t, env, "receipt_ed25519.pem")
	// Statements are verified under the attested key; the cached identity
	// has the old one, the statement names the new one.
	f, err := c.Function(context.Background(), ref.ID)
	if err != nil {
		t.Fatalf("Function after the key changed: %v", err)
	}
	if f.Statement.KeyID != env.Server.KeyID() || c.Cached().KeyID == old {
		t.Fatalf("statement key %s, client key %s", f.Statement.KeyID, c.Cached().KeyID)
	}
	if receipt.KeyID(env.Server.ReceiptKey()) != c.Cached().KeyID {
		t.Fatal("the client's key is not the runtime's")
	}
}
