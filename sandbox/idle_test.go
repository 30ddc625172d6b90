package sandbox

import (
	"context"
	"runtime/metrics"
	"testing"
	"time"
)

// fillIdle starts warm instances until f's idle pool holds n, and returns
// the pool's instances. Only for a function nothing else calls or trims.
func fillIdle(t *testing.T, f *Function, n int) []*instance {
	t.Helper()
	for len(f.idle) < n {
		inst, err := f.newInstance(context.Background(), 10*time.Second)
		if err != nil {
			t.Fatalf("newInstance: %v", err)
		}
		f.idle <- inst
	}
	pool := make([]*instance, 0, n)
	for range n {
		pool = append(pool, <-f.idle)
	}
	for _, inst := range pool {
		f.idle <- inst
	}
	return pool
}

func closedCount(insts []*instance) int {
	n := 0
	for _, inst := range insts {
		if inst.mod.IsClosed() {
			n++
		}
	}
	return n
}

func newTestEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.CacheDir = cacheDir // compiled once for all the tests
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func loadWith(t *testing.T, e *Engine) *Function {
	t.Helper()
	f, err := e.Load(context.Background(), testfnReac, limits(5*time.Second, 64))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

func TestTrimIdleKeepsWhatRanAtOnce(t *testing.T) {
	f := loadWith(t, newTestEngine(t, Config{MaxInstances: 4, IdleTimeout: -1}))

	// No call since the last trim: one instance stays warm.
	pool := fillIdle(t, f, 4)
	if n := f.trimIdle(); n != 3 || len(f.idle) != 1 {
		t.Fatalf("idle function: trimIdle closed %d, %d idle left; want 3 closed, 1 left", n, len(f.idle))
	}
	if closed := closedCount(pool); closed != 3 {
		t.Fatalf("%d of the 4 instances closed, want 3", closed)
	}

	// Three calls ran at once: three instances stay.
	fillIdle(t, f, 4)
	for range 3 {
		f.sem <- struct{}{}
	}
	f.noteInUse()
	for range 3 {
		<-f.sem
	}
	if n := f.trimIdle(); n != 1 || len(f.idle) != 3 {
		t.Fatalf("after 3 calls at once: trimIdle closed %d, %d idle left; want 1 closed, 3 left", n, len(f.idle))
	}
	if p := f.peak.Load(); p != 0 {
		t.Fatalf("peak after trimIdle = %d, want 0", p)
	}

	// The trimmed function still serves, and a call counts towards the
	// next period.
	res, err := f.Invoke(context.Background(), []byte("echo:x"), nil)
	if err != nil || string(res.Output) != "x" {
		t.Fatalf("Invoke after trim: %v", err)
	}
	if p := f.peak.Load(); p != 1 {
		t.Fatalf("peak after one call = %d, want 1", p)
	}
	if n := f.trimIdle(); n != 2 || len(f.idle) != 1 {
		t.Fatalf("after 1 call: trimIdle closed %d, %d idle left; want 2 closed, 1 left", n, len(f.idle))
	}
}

func TestIdleInstancesTrimmed(t *testing.T) {
	f := loadWith(t, newTestEngine(t, Config{MaxInstances: 3, IdleTimeout: 20 * time.Millisecond}))
	var extra []*instance
	for range 2 {
		inst, err := f.newInstance(context.Background(), 10*time.Second)
		if err != nil {
			t.Fatalf("newInstance: %v", err)
		}
		extra = append(extra, inst)
		f.idle <- inst
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(f.idle) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle instances after 30 s, want 1", len(f.idle))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The first instance, or one of the extra, stays warm.
	if n := closedCount(extra); n < 1 {
		t.Fatalf("%d of the 2 extra instances closed, want at least 1", n)
	}
	res, err := f.Invoke(context.Background(), []byte("echo:x"), nil)
	if err != nil || string(res.Output) != "x" {
		t.Fatalf("Invoke after trim: %v", err)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func forcedGCs() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestReleaseMemoryAfterLoad(t *testing.T) {
	for _, release := range []bool{false, true} {
		e := newTestEngine(t, Config{ReleaseMemory: release, IdleTimeout: -1})
		before := forcedGCs()
		loadWith(t, e)
		if got := forcedGCs() > before; got != release {
			t.Errorf("ReleaseMemory %v: a forced GC during Load = %v", release, got)
		}
	}
}
