package sandbox

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// A start section runs during instantiation. It must be as stoppable as
// _start: a loop there times out, for commands at their run and for
// reactors at load, and the engine keeps serving.
func TestStartSectionIsBoundedByTheTimeout(t *testing.T) {
	t.Run("command", func(t *testing.T) {
		f := load(t, wasmtest.StartLoop(false), limits(200*time.Millisecond, 16))
		start := time.Now()
		_, err := f.Invoke(context.Background(), nil, nil)
		wantKind(t, err, KindTimeout)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a 200ms timeout took %v to fire", d)
		}
	})
	t.Run("reactor", func(t *testing.T) {
		// Start-up at load gets max(timeout, MinLoadTimeout): keep the
		// latter short here.
		quick, err := NewEngine(Config{MinLoadTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer quick.Close(context.Background())
		start := time.Now()
		f, err := quick.Load(context.Background(), wasmtest.StartLoop(true), limits(200*time.Millisecond, 16))
		if err == nil {
			f.Close(context.Background())
			t.Fatal("a reactor that loops in its start section loaded")
		}
		if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), "failed to initialise") || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("error = %v", err)
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindTimeout {
			t.Fatalf("error %v does not wrap a timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a 200ms timeout took %v to fire", d)
		}
	})
	// The start function still runs, once, before _start.
	f := load(t, wasmtest.StartSetsGlobal(), limits(time.Second, 16))
	for i := 0; i < 2; i++ {
		if _, err := f.Invoke(context.Background(), nil, nil); err != nil {
			t.Fatalf("start function did not run before _start: %v", err)
		}
	}
	g := load(t, testfnReac, limits(5*time.Second, 64))
	if res, err := g.Invoke(context.Background(), []byte("echo:ok"), nil); err != nil || string(res.Output) != "ok" {
		t.Fatalf("after start-section loops: %q %v", res, err)
	}
}

// Tables live on the Go heap, outside linear memory: they are bounded by
// the memory limit too.
func TestTablesAreBoundedByTheMemoryLimit(t *testing.T) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := load(t, wasmtest.GrowTableForever(), limits(20*time.Second, 1))
	_, err := f.Invoke(context.Background(), nil, nil)
	if fe := wantKind(t, err, KindOutOfMemory); !strings.Contains(fe.Message, "1 MiB") {
		t.Fatalf("message = %q", fe.Message)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// 1 MiB of table at most, with append's slack; unbounded, the loop
	// takes gigabytes.
	if grown := int64(after.TotalAlloc - before.TotalAlloc); grown > 64<<20 {
		t.Fatalf("growing a table allocated %d MiB under a 1 MiB limit", grown>>20)
	}

	// A minimum over the bound is refused at load, naming the memory limit.
	_, err = engine.Load(context.Background(), wasmtest.Table(1<<20, 0), limits(time.Second, 4))
	if !errors.Is(err, ErrModule) || !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "4 MiB") {
		t.Fatalf("huge table minimum: %v", err)
	}
	// Go declares tables without a maximum, and some toolchains declare a
	// huge one: both load and run, with a maximum within the bound.
	for _, mod := range [][]byte{wasmtest.Table(6000, 0), wasmtest.Table(10, 0xffffffff), wasmtest.Table(5, 5)} {
		f := load(t, mod, limits(time.Second, 1))
		if _, err := f.Invoke(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMemoryMinimumOverTheLimit(t *testing.T) {
	// testfn's memory starts above 1 MiB.
	_, err := engine.Load(context.Background(), testfnCmd, limits(time.Second, 1))
	if !errors.Is(err, ErrModule) || !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "more than the memory limit of 1 MiB") {
		t.Fatalf("error = %v", err)
	}
}

// Out of memory is reported on evidence, not because the memory is close
// to the limit: with a 1 MiB limit every module is within a MiB of it.
func TestOutOfMemoryNeedsEvidence(t *testing.T) {
	f := load(t, wasmtest.Exit(3), limits(time.Second, 1))
	_, err := f.Invoke(context.Background(), nil, nil)
	if fe := wantKind(t, err, KindExit); fe.ExitCode != 3 {
		t.Fatalf("exit code = %d", fe.ExitCode)
	}
	f = load(t, wasmtest.Trap(), limits(time.Second, 1))
	_, err = f.Invoke(context.Background(), nil, nil)
	wantKind(t, err, KindTrap)
	f = load(t, wasmtest.GrowForever(), limits(time.Second, 1))
	_, err = f.Invoke(context.Background(), nil, nil)
	wantKind(t, err, KindOutOfMemory)

	// A grow that failed in an earlier invocation of a warm instance is
	// not evidence for this one.
	f = load(t, wasmtest.GrowFailsThenTraps(), limits(time.Second, 1))
	if _, err := f.Invoke(context.Background(), []byte("x"), nil); err != nil {
		t.Fatalf("failed grow, handled: %v", err)
	}
	_, err = f.Invoke(context.Background(), []byte("xy"), nil)
	wantKind(t, err, KindTrap)
}

// A reactor's start-up at load gets max(its timeout, MinLoadTimeout), so a
// busy machine does not refuse a healthy module whose run timeout is short.
func TestLoadGivesStartUpAtLeastMinLoadTimeout(t *testing.T) {
	const min = 300 * time.Millisecond
	e, err := NewEngine(Config{MinLoadTimeout: min})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	start := time.Now()
	f, err := e.Load(context.Background(), wasmtest.StartLoop(true), limits(10*time.Millisecond, 16))
	if err == nil {
		f.Close(context.Background())
		t.Fatal("a reactor that loops in its start section loaded")
	}
	if d := time.Since(start); d < min {
		t.Fatalf("start-up was stopped after %v, before MinLoadTimeout %v", d, min)
	}
}
