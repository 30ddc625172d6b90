package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
)

// TestE2EKillDuringRuns kills the runtime with SIGKILL while runs are in
// flight, restarts it on the same data directory and checks that nothing
// durable was lost: the function is still deployed and runs under the same
// key, and receipt sequence numbers keep growing past every number handed
// out before the kill.
func TestE2EKillDuringRuns(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	data := filepath.Join(t.TempDir(), "data")
	enc := startEnclave(t, work, data, 0, nil)
	owner := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data)

	r := owner.ok("deploy", "--builtin", "leader", "-o", "json")
	var d api.Deployed
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, r)
	}
	id, sum := d.FunctionID, d.FunctionChecksum
	tok := strings.TrimSpace(owner.ok("token", id, "--function-checksum", sum).stdout)
	r = owner.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--token", tok, "-o", "json")
	var first api.RunResult
	if err := json.Unmarshal([]byte(r.stdout), &first); err != nil {
		t.Fatal(err)
	}

	// Runs in flight: a few goroutines run the function back to back
	// through the SDK, which verifies every receipt.
	// The owner credential authorises runs too.
	cred := ownerTokenIn(t, data)
	c, err := client.New(enc.url, client.Options{AllowSimulated: true, OwnerToken: cred})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr := client.FunctionRef{ID: id, Checksum: sum, Token: cred}
	var (
		mu       sync.Mutex
		seqs     = []uint64{first.Receipt.Seq}
		failures []error
		inFlight atomic.Int32
		ok       atomic.Int32
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), e2eLimit)
				inFlight.Add(1)
				res, err := c.Run(ctx, fr, []byte(leaderInput))
				inFlight.Add(-1)
				cancel()
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					seqs = append(seqs, res.Receipt.Seq)
					if res.Receipt.KeyID != first.Receipt.KeyID || !strings.Contains(string(res.Output), `"leader":"5002"`) {
						failures = append(failures, errors.New("unexpected receipt key or output"))
					}
					ok.Add(1)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the runtime is gone; do not spin
				}
			}
		}()
	}
	// Kill once some runs have completed and some are under way.
	deadline := time.Now().Add(e2eLimit)
	for ok.Load() < 8 || inFlight.Load() == 0 {
		mu.Lock()
		failed := len(failures) > 0
		mu.Unlock()
		if failed || time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("runs did not get going within %v: %d done, %d failed, first error: %v", e2eLimit, ok.Load(), len(failures), errors.Join(failures[:min(1, len(failures))]...))
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := len(seqs)
	mu.Unlock()
	enc.kill()
	killedAt := time.Now()
	// Let the goroutines see the dead runtime, then stop them.
	for time.Since(killedAt) < 200*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(failures) == 0 {
		t.Fatalf("no run failed after the kill; were any in flight?")
	}
	// Runs cut short fail as transport errors, never as a receipt or a
	// checksum that does not verify.
	for _, err := range failures {
		if errors.Is(err, client.ErrReceipt) || errors.Is(err, client.ErrChecksumMismatch) {
			t.Fatalf("a run cut short by the kill failed verification: %v", err)
		}
	}
	if ws, ok := enc.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("runtime state after SIGKILL: %v", enc.cmd.ProcessState)
	}
	// Every receipt handed out was unique, whether it arrived before or
	// around the kill.
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(seqs) {
		t.Fatalf("duplicate receipt sequence numbers: %v", seqs)
	}
	maxBefore := sorted[len(sorted)-1]
	t.Logf("%d runs verified (%d before the kill was decided), max seq %d, %d failed around the kill", len(seqs), before, maxBefore, len(failures))

	// Restart on the same data (and port).
	enc2 := enc.restart()
	if strings.Contains(enc2.stderr(), "OWNER CREDENTIAL") || ownerRE.MatchString(enc2.stderr()) {
		t.Errorf("the restarted runtime printed the owner credential again:\n%s", enc2.stderr())
	}
	r = owner.ok("list")
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, sum) {
		t.Fatalf("function %s is not listed after the restart:\n%s", id, r)
	}
	r = owner.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--token", tok, "-o", "json")
	var after api.RunResult
	if err := json.Unmarshal([]byte(r.stdout), &after); err != nil {
		t.Fatal(err)
	}
	if after.Receipt.Seq <= maxBefore {
		t.Fatalf("receipt seq after the restart is %d, not above %d (the highest before the kill)", after.Receipt.Seq, maxBefore)
	}
	if after.Receipt.KeyID != first.Receipt.KeyID {
		t.Fatalf("receipt key changed across the restart: %s, then %s", first.Receipt.KeyID, after.Receipt.KeyID)
	}
	// A client that lived through the crash recovers (the restarted runtime
	// refuses its input as sealed for the previous boot, and it attests
	// again and retries), and its receipts keep growing too.
	res, err := c.Run(context.Background(), fr, []byte(leaderInput))
	if err != nil {
		t.Fatalf("run through the old client after the restart: %v", err)
	}
	if res.Receipt.Seq <= after.Receipt.Seq {
		t.Fatalf("seq went from %d to %d", after.Receipt.Seq, res.Receipt.Seq)
	}
}
