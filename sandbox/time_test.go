package sandbox

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// hostileBulk are modules whose loop body is one bulk instruction over
// 64 MiB: each iteration takes milliseconds, so counting iterations alone
// let them run for minutes past a 1 s timeout.
var hostileBulk = map[string][]byte{
	"memory.fill": wasmtest.BulkLoop(1024, false),
	"memory.copy": wasmtest.BulkLoop(1024, true),
}

// A bulk instruction counts toward the interrupt budget by the bytes it
// touches: a 1 s timeout stops these modules in about a second (the bench
// build checks 2 s), where it took 142 s and 280 s.
func TestBulkLoopsStopAtTheirTimeout(t *testing.T) {
	for name, mod := range hostileBulk {
		t.Run(name, func(t *testing.T) {
			f := load(t, mod, limits(time.Second, 64))
			start := time.Now()
			_, err := f.Invoke(context.Background(), nil, nil)
			d := time.Since(start)
			wantKind(t, err, KindTimeout)
			t.Logf("a 1 s timeout stopped %s after %v", name, d)
			if d > stopBound {
				t.Fatalf("a 1 s timeout stopped %s after %v, more than %v", name, d, stopBound)
			}
		})
	}
}

// While a guest spins in bulk instructions, a stop-the-world garbage
// collection waits for it only until its next safe point; and a caller that
// goes away stops it.
func TestGCAndCancelDoNotWaitForABulkLoop(t *testing.T) {
	for name, mod := range hostileBulk {
		t.Run(name, func(t *testing.T) {
			f := load(t, mod, limits(time.Minute, 64))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := f.Invoke(ctx, nil, nil)
				done <- err
			}()
			// Wait for the run to start: the collections below should find
			// the guest in its loop.
			for deadline := time.Now().Add(10 * time.Second); len(f.sem) == 0 && time.Now().Before(deadline); {
				runtime.Gosched()
			}
			var worst, worstPause time.Duration
			var ms runtime.MemStats
			for range 5 {
				start := time.Now()
				runtime.GC()
				worst = max(worst, time.Since(start))
				runtime.ReadMemStats(&ms)
				worstPause = max(worstPause, time.Duration(ms.PauseNs[(ms.NumGC+255)%256]))
				select {
				case err := <-done:
					t.Fatalf("the run ended early: %v", err)
				default:
				}
			}
			t.Logf("while %s ran: slowest of 5 runtime.GC() calls %v, longest stop-the-world pause %v", name, worst, worstPause)
			if worst > gcBound {
				t.Fatalf("runtime.GC() took %v while %s ran, more than %v", worst, name, gcBound)
			}
			if worstPause > pauseBound {
				t.Fatalf("a stop-the-world pause took %v while %s ran, more than %v", worstPause, name, pauseBound)
			}
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error = %v, want context.Canceled", err)
				}
				t.Logf("cancelled %s in %v", name, time.Since(start))
			case <-time.After(stopBound):
				t.Fatalf("cancelling %s did not stop it within %v", name, stopBound)
			}
		})
	}
}
