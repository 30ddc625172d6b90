package sandbox

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/wat"
)

// growPages grows memory a page at a time and writes every new page; once
// memory.grow fails it traps, or with spin goes on trying.
func growPages(spin bool) []byte {
	onFail := "(then unreachable)"
	if spin {
		onFail = "(then (br $grow))"
	}
	return wat.MustAssemble(`(module
  (memory (export "memory") 1)
  (func (export "_start") (local $page i32)
    (loop $grow
      (local.set $page (memory.grow (i32.const 1)))
      (if (i32.eq (local.get $page) (i32.const -1)) ` + onFail + `)
      (memory.fill (i32.shl (local.get $page) (i32.const 16)) (i32.const 1) (i32.const 65536))
      (br $grow))))`)
}

func resident(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(f), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// Linear memory is mapped for the instance and unmapped when it closes:
// growing it copies nothing for the collector to find, and a closed
// instance's pages leave the process at once.
func TestLinearMemoryIsReturned(t *testing.T) {
	const mib = 256
	f := load(t, growPages(false), limits(60*time.Second, mib))
	before := resident(t)
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := f.Invoke(context.Background(), nil, nil)
		wantKind(t, err, KindOutOfMemory)
	}()
	for wait := true; wait; {
		select {
		case <-done:
			wait = false
		case <-time.After(2 * time.Millisecond):
		}
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
					peak = max(peak, kb<<10)
				}
			}
		}
	}
	t.Logf("resident +%d MiB at peak under a %d MiB limit", (peak-before)>>20, mib)
	// Growth by copying Go slices held about 2.25 times the memory at the
	// last copy, and the collector's garbage on top.
	if grown := peak - before; grown > (mib+64)<<20 {
		t.Errorf("resident memory rose by %d MiB under a %d MiB limit", grown>>20, mib)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		after := resident(t)
		if after-before < 32<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resident memory stays %d MiB above where it was after the instance closed", (after-before)>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A guest that goes on after a failed grow until its deadline ran out of
// memory: that, not the timeout, is what it is told.
func TestFailedGrowThenTimeoutIsOutOfMemory(t *testing.T) {
	f := load(t, growPages(true), limits(time.Second, 64))
	start := time.Now()
	_, err := f.Invoke(context.Background(), nil, nil)
	fe := wantKind(t, err, KindOutOfMemory)
	if !strings.Contains(fe.Message, "limit 64 MiB") || !strings.Contains(fe.Message, "1s timeout") {
		t.Fatalf("message = %q", fe.Message)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a 1s timeout took %v", d)
	}
}

// A looping _initialize at load is stopped at max(timeout, MinLoadTimeout),
// and the error names that time, not the function's own timeout.
func TestStartUpTimeoutNamesTheTimeoutThatApplied(t *testing.T) {
	e, err := NewEngine(Config{MinLoadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	mod := wat.MustAssemble(`(module (memory (export "memory") 1)
  (func (export "_initialize") (loop $l (br $l)))
  (func (export "vouch_run") (param i32) (result i32) (i32.const 0)))`)
	f, err := e.Load(context.Background(), mod, limits(10*time.Millisecond, 1))
	if err == nil {
		f.Close(context.Background())
		t.Fatal("a reactor whose _initialize loops loaded")
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindTimeout || !strings.Contains(fe.Message, "300ms its start-up gets") || !strings.Contains(fe.Message, "10ms timeout") {
		t.Fatalf("error = %v", err)
	}
}

// Close interrupts the invocations under way and waits for them before it
// unmaps their memory: nothing runs on unmapped memory.
func TestCloseInterruptsAndWaits(t *testing.T) {
	mod := wat.MustAssemble(`(module (memory (export "memory") 16)
  (func (export "_start") (loop $l (i32.store (i32.const 4096) (i32.add (i32.load (i32.const 4096)) (i32.const 1))) (br $l))))`)
	f, err := engine.Load(context.Background(), mod, limits(time.Minute, 16))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.Invoke(context.Background(), nil, nil)
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them start; not an assertion
	closed := make(chan error, 1)
	go func() { closed <- f.Close(context.Background()) }()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("invocation under way at Close: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not interrupt the invocations")
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := f.Invoke(context.Background(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A guest that floods stdout is stopped as soon as its output is over the
// limit, not at its timeout.
func TestOutputFloodIsStoppedAtTheLimit(t *testing.T) {
	mod := wat.MustAssemble(`(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))`)
	f := load(t, mod, limits(time.Minute, 1))
	start := time.Now()
	_, err := f.Invoke(context.Background(), nil, nil)
	wantKind(t, err, KindOutputTooLarge)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("stopped after %v; the timeout is a minute", d)
	}
}

// A module whose data segment does not fit fails to instantiate; the
// memory mapped for it is unmapped all the same.
func TestFailedInstantiationFreesMemory(t *testing.T) {
	mod := wat.MustAssemble(`(module (memory (export "memory") 1024 1024)
  (data (i32.const 67108860) "too long")
  (func (export "_start")))`)
	f := load(t, mod, limits(time.Second, 64))
	before := mappings(t)
	for range 50 {
		if _, err := f.Invoke(context.Background(), nil, nil); err == nil {
			t.Fatal("a data segment out of bounds instantiated")
		}
	}
	if after := mappings(t); after > before+10 {
		t.Fatalf("50 failed instantiations left %d more mappings", after-before)
	}
}

// mappings counts the process's memory mappings.
func mappings(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	return strings.Count(string(b), "\n")
}
