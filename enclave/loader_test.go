package enclave

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/sandbox"
)

// compiledFunction returns a real compiled function to hand out.
func compiledFunction(t *testing.T) *sandbox.Function {
	t.Helper()
	ctx := context.Background()
	e, err := sandbox.NewEngine(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fn, err := e.Load(ctx, wasmtest.Exit(0), bundle.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Close(ctx); e.Close(ctx) })
	return fn
}

// A caller that gives up while the function loads does not cancel the
// load: the next caller gets its result, and the function's description
// is never blocked meanwhile.
func TestCallersWaitForTheLoadWithoutCancellingIt(t *testing.T) {
	fn := compiledFunction(t)
	release := make(chan struct{})
	var loads atomic.Int32
	s := &Server{}
	s.loader = newLoader(1, func(ctx context.Context, f *function) (*sandbox.Function, error) {
		loads.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return fn, nil
	}, func(*function, error) { t.Error("load failed") })
	defer s.loader.stop()
	f := &function{rec: &store.Function{ID: "f"}}
	s.loadAll() // nothing registered: no-op
	f.mu.Lock()
	s.loader.start(f)
	f.mu.Unlock()

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.instance(short, f); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller: %v", err)
	}
	if f.mode() != "" {
		t.Fatal("mode set before the load ended")
	}
	close(release)
	got, err := s.instance(context.Background(), f)
	if err != nil || got != fn {
		t.Fatalf("patient caller: %v, %v", got, err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
	if f.mode() != sandbox.ModeCommand {
		t.Fatalf("mode %q after the load", f.mode())
	}
}

// A load that failed for a passing reason is tried again by the next
// caller; an invalid module is not.
func TestFailedLoads(t *testing.T) {
	fn := compiledFunction(t)
	var loads atomic.Int32
	var failures atomic.Int32
	s := &Server{}
	s.loader = newLoader(1, func(ctx context.Context, f *function) (*sandbox.Function, error) {
		n := loads.Add(1)
		switch {
		case f.rec.ID == "invalid":
			return nil, fmt.Errorf("%w: no good", sandbox.ErrModule)
		case n == 1:
			return nil, errors.New("disk hiccup")
		}
		return fn, nil
	}, func(*function, error) { failures.Add(1) })
	defer s.loader.stop()

	f := &function{rec: &store.Function{ID: "f"}}
	var le *loadError
	if _, err := s.instance(context.Background(), f); !errors.As(err, &le) {
		t.Fatalf("first load: %v", err)
	}
	if got, err := s.instance(context.Background(), f); err != nil || got != fn {
		t.Fatalf("second load: %v, %v", got, err)
	}
	bad := &function{rec: &store.Function{ID: "invalid"}}
	before := loads.Load()
	for i := 0; i < 3; i++ {
		if _, err := s.instance(context.Background(), bad); !errors.As(err, &le) || !errors.Is(err, sandbox.ErrModule) {
			t.Fatalf("invalid module: %v", err)
		}
	}
	if n := loads.Load() - before; n != 1 {
		t.Fatalf("an invalid module was loaded %d times", n)
	}
	if failures.Load() != 2 {
		t.Fatalf("%d failures logged, want 2", failures.Load())
	}
	s.loader.stop()
	if _, err := s.instance(context.Background(), &function{rec: &store.Function{ID: "late"}}); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("after stop: %v", err)
	}
}
