package enclave_test

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// A client that goes away cancels its run, end to end: the request's
// context reaches the sandbox, which stops the guest even in the middle of
// bulk instructions over 64 MiB, and /healthz answers meanwhile.
func TestClientThatGoesAwayStopsItsRun(t *testing.T) {
	env := enclavetest.Start(t)
	c := env.Client(client.Options{Plaintext: true})
	b, err := bundle.New(wasmtest.BulkLoop(1024, false), []byte(`{"allow_plaintext_input":true,"limits":{"timeout":"60s","memory_mib":64}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(rctx, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}, nil)
		done <- err
	}()
	if !pollUntil(10*time.Second, func() bool { return guestRunning() }) {
		t.Fatal("the run did not start")
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(env.URL + "/healthz")
	if err != nil {
		t.Fatalf("/healthz while the guest runs: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while the guest runs: %s", resp.Status)
	}
	t.Logf("/healthz answered in %v while the guest ran", time.Since(start))
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled run succeeded")
	}
	start = time.Now()
	if !pollUntil(10*time.Second, func() bool { return !guestRunning() }) {
		t.Fatal("the runtime still runs the guest 10 s after its client went away")
	}
	t.Logf("the guest stopped %v after its client went away", time.Since(start))
}

// guestRunning reports whether a goroutine of this process runs a function.
func guestRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte("sandbox.(*Function).Invoke("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// pollUntil polls cond until it holds or d passes.
func pollUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
