package enclave_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/seal"
)

// identity fetches GET /v1/identity with a fresh nonce.
func identity(t *testing.T, url string) *api.Identity {
	t.Helper()
	resp, err := http.Get(url + "/v1/identity?nonce=" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var id api.Identity
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("identity: %d %v", resp.StatusCode, err)
	}
	return &id
}

// TestReplayAfterRestart: an input sealed up to the freshness window in the
// future (a client whose clock runs ahead) is accepted once; after a
// restart, the same bytes are refused (stale_boot), although the HPKE key is
// the same and issued_at is still inside the window. New inputs are
// accepted at once after the restart: there is no dead window.
func TestReplayAfterRestart(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	id := identity(t, env.URL)
	if len(id.BootID) != seal.BootIDSize || !bytes.Equal(id.BootID, env.Server.BootID()) {
		t.Fatalf("identity boot_id %x, server's %x", id.BootID, env.Server.BootID())
	}
	sealed, err := seal.SealInput(id.HPKEKey, ref.ID, ref.Checksum, []byte(leaderInput),
		&seal.InputOptions{BootID: id.BootID, IssuedAt: time.Now().Add(4 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	run := func(env *enclavetest.Env, body []byte) *http.Response {
		return post(t, env.URL+"/v1/functions/"+ref.ID+"/run", ref.Token, map[string]string{"Content-Type": api.ContentTypeSealed}, body)
	}
	if resp := run(env, sealed); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	wantError(t, run(env, sealed), http.StatusBadRequest, api.CodeReplay)

	for i := range 2 {
		env = env.Restart()
		e := wantError(t, run(env, sealed), http.StatusConflict, api.CodeStaleBoot)
		if !strings.Contains(e.Message, "restarted") || !strings.Contains(e.Hint, "boot_id") {
			t.Errorf("restart %d: stale_boot error %+v does not say what happened and what to do", i+1, e)
		}
		again := identity(t, env.URL)
		if bytes.Equal(again.BootID, id.BootID) || !bytes.Equal(again.HPKEKey, id.HPKEKey) {
			t.Fatalf("restart %d: boot ID %x (was %x), HPKE key changed: %v", i+1, again.BootID, id.BootID, !bytes.Equal(again.HPKEKey, id.HPKEKey))
		}
		// A client whose clock is a little behind seals for the new boot
		// and is served at once.
		fresh, err := seal.SealInput(again.HPKEKey, ref.ID, ref.Checksum, []byte(leaderInput),
			&seal.InputOptions{BootID: again.BootID, IssuedAt: time.Now().Add(-10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if resp := run(env, fresh); resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("restart %d: a fresh input was refused: %d %s", i+1, resp.StatusCode, body)
		}
		id = again
	}
	// An input of the old envelope version 1 (no boot ID), as an older
	// client sealed it, is refused with an error that says why.
	v1 := []byte{1}
	v1 = binary.BigEndian.AppendUint64(v1, uint64(time.Now().UnixMilli()))
	v1 = append(append(v1, 0), leaderInput...)
	info := []byte("vouch/input/v1\x00")
	info = binary.BigEndian.AppendUint32(info, uint32(len(ref.ID)))
	info = append(info, ref.ID...)
	info = binary.BigEndian.AppendUint32(info, uint32(len(ref.Checksum)))
	info = append(info, ref.Checksum...)
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(id.HPKEKey)
	if err != nil {
		t.Fatal(err)
	}
	oldSealed, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, v1)
	if err != nil {
		t.Fatal(err)
	}
	e := wantError(t, run(env, oldSealed), http.StatusBadRequest, api.CodeSealedInput)
	if !strings.Contains(e.Message, "envelope version 1") || !strings.Contains(e.Message, "replayed after a restart") {
		t.Errorf("old envelope: %q does not say why it is refused", e.Message)
	}
}

// syncBuffer collects log output from concurrent handlers.
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

// failingAttester fails every attestation with an error full of internal
// detail.
type failingAttester struct{ attest.Attester }

func (failingAttester) Attest(context.Context, attest.Request) ([]byte, error) {
	return nil, errors.New("open /srv/vouch-data/attest-simulated-root.pem: permission denied")
}

// An internal error reaches the client as a generic message with an error
// ID; the detail is in the log, under the same ID.
func TestInternalErrorHidesDetails(t *testing.T) {
	var logs syncBuffer
	env := enclavetest.Start(t, func(c *enclave.Config) {
		c.Attester = failingAttester{c.Attester}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	resp, err := http.Get(env.URL + "/v1/identity?nonce=" + base64.RawURLEncoding.EncodeToString(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "/srv/vouch-data") || strings.Contains(string(body), "permission denied") {
		t.Fatalf("internal detail sent to the client: %s", body)
	}
	var er api.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil || resp.StatusCode != http.StatusInternalServerError || er.Error.Code != api.CodeInternal {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`^internal error \(error ID ([0-9a-f]{16})\)$`).FindStringSubmatch(er.Error.Message)
	if m == nil || er.Error.Hint == "" {
		t.Fatalf("message %q hint %q: want a generic message with an error ID, and a hint", er.Error.Message, er.Error.Hint)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["error_id"] == m[1] && strings.Contains(rec["err"].(string), "/srv/vouch-data") && rec["level"] == "ERROR" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no ERROR log line with error_id %s and the detail:\n%s", m[1], logs.String())
	}
	// Each failure gets its own ID.
	resp2, err := http.Get(env.URL + "/v1/identity")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var er2 api.ErrorResponse
	json.NewDecoder(resp2.Body).Decode(&er2)
	if er2.Error == nil || er2.Error.Message == er.Error.Message {
		t.Fatalf("two failures share an error ID: %+v", er2.Error)
	}
}

// The owner credential never appears in the runtime's log, whatever the
// requests, even at debug level.
func TestOwnerCredentialNeverLogged(t *testing.T) {
	var logs syncBuffer
	env := enclavetest.Start(t, func(c *enclave.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ref := env.DeployLeader()
	owner := env.Client(client.Options{})
	fns, err := owner.List(ctx)
	if err != nil || len(fns) != 1 {
		t.Fatal(fns, err)
	}
	ownerRun := ref
	ownerRun.Token = env.Owner
	if _, err := owner.Run(ctx, ownerRun, []byte(leaderInput)); err != nil {
		t.Fatal(err)
	}
	if err := owner.Revoke(ctx, ref.Token); err != nil {
		t.Fatal(err)
	}
	// Bad credentials, and the owner credential where it does not belong.
	post(t, env.URL+"/v1/functions", env.Owner+"x", nil, []byte("not a bundle"))
	post(t, env.URL+"/v1/tokens/revoke", env.Owner, nil, []byte(`{"function_token":"`+env.Owner+`"}`))
	post(t, env.URL+"/v1/functions/"+ref.ID+"/run", env.Owner, map[string]string{"Content-Type": api.ContentTypeSealed}, []byte(env.Owner))
	if err := owner.Delete(ctx, ref.ID); err != nil {
		t.Fatal(err)
	}
	env = env.Restart()
	if l := logs.String(); strings.Contains(l, env.Owner) || strings.Contains(l, env.Owner[len("vouch_owner_"):]) {
		t.Fatalf("the owner credential is in the log:\n%s", l)
	} else if !strings.Contains(l, "deployed function") {
		t.Fatalf("nothing was logged:\n%s", l)
	}
}

// /metrics says which attestation platform the runtime has: SIMULATED shows.
func TestRuntimeInfoMetric(t *testing.T) {
	env := enclavetest.Start(t)
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^vouch_runtime_info\{platform="SIMULATED",simulated="true",version="vouch/[^"]+"\} 1$`)
	if !re.Match(body) {
		t.Fatalf("/metrics has no vouch_runtime_info{platform=\"SIMULATED\",simulated=\"true\",...} 1:\n%s", body)
	}
	// The Go runtime's and the process's metrics are there too (the soak
	// test reads go_goroutines).
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_resident_memory_bytes "} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics has no %q", strings.TrimSpace(want))
		}
	}
}
