package sandbox

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	wazeroapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vouch-dev/vouch/internal/harness/testbuild"
	"github.com/vouch-dev/vouch/sandbox/internal/interrupt"
)

// leaderInput returns the election function's input for n members.
func leaderInput(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint(5000+i))
	}
	return []byte(`{"cluster":"demo","node_list":[` + strings.Join(ids, ",") + `]}`)
}

func benchInvoke(b *testing.B, reactor bool, input []byte) {
	mod, err := testbuild.Wasm("./functions/leader", reactor)
	if err != nil {
		b.Fatal(err)
	}
	f, err := engine.Load(context.Background(), mod, limits(5*time.Second, 64))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close(context.Background())
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Invoke(ctx, input, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke measures one call of the built-in leader function: a warm
// reactor call against a fresh command instance, for 1 and 100 members.
func BenchmarkInvoke(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("reactor/members=%d", n), func(b *testing.B) { benchInvoke(b, true, leaderInput(n)) })
		b.Run(fmt.Sprintf("command/members=%d", n), func(b *testing.B) { benchInvoke(b, false, leaderInput(n)) })
	}
}

// BenchmarkInterrupt compares three ways of compiling the same reactor, the
// built-in leader function with 100 members, on a warm instance:
//
//   - instrumented: what the sandbox does (package interrupt's checks,
//     stopped by setting the flag from context.AfterFunc);
//   - close-on-context-done: the module as built, compiled with wazero's
//     RuntimeConfig.WithCloseOnContextDone, which leaves compiled code for
//     a Go check at every loop header and function entry;
//   - unstoppable: the module as built, with neither: the floor, but a
//     guest that spins could never be stopped (nor preempted).
//
// Every call gets a context with the function's timeout and the
// invocation, as Invoke gives it. The ratio to "unstoppable" is the cost of
// being able to stop a guest.
func BenchmarkInterrupt(b *testing.B) {
	mod, err := testbuild.Wasm("./functions/leader", true)
	if err != nil {
		b.Fatal(err)
	}
	input := leaderInput(100)
	for _, v := range []struct {
		name                    string
		instrument, closeOnDone bool
	}{
		{"instrumented", true, false},
		{"close-on-context-done", false, true},
		{"unstoppable", false, false},
	} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
				WithMemoryLimitPages(1024).
				WithCloseOnContextDone(v.closeOnDone))
			defer rt.Close(ctx)
			code := mod
			if v.instrument {
				if code, err = interrupt.Instrument(mod, interrupt.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			compiled, err := rt.CompileModule(ctx, code)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
				b.Fatal(err)
			}
			if err := instantiateHost(ctx, rt); err != nil {
				b.Fatal(err)
			}
			m, err := rt.InstantiateModule(ctx, compiled, baseModuleConfig().WithStdout(io.Discard).WithStderr(io.Discard))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.ExportedFunction("_initialize").Call(ctx); err != nil {
				b.Fatal(err)
			}
			run := m.ExportedFunction("vouch_run")
			flag, _ := m.ExportedGlobal(interrupt.ExportName).(wazeroapi.MutableGlobal)
			call := func() error {
				inv := &invocation{input: input, maxOutput: 1 << 20}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				cctx = context.WithValue(cctx, invocationKey{}, inv)
				var res []uint64
				var err error
				if flag != nil {
					res, err = callWithFlag(cctx, m, flag, run, uint64(len(input)))
				} else {
					res, err = run.Call(cctx, uint64(len(input)))
				}
				if err == nil && (res[0] != 0 || len(inv.output) == 0) {
					err = fmt.Errorf("vouch_run returned %d: %s", res[0], inv.errMsg)
				}
				return err
			}
			for range 1000 { // let the guest's heap reach its working size
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			// The guest runs on this goroutine: on a locked thread, the
			// thread's CPU time is the call's, whatever the load.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := threadCPU()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := threadCPU() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkInvokeParallel is BenchmarkInvoke with 8 callers at once on
// the machine's CPUs, as the runtime sees them under `vouch-bench run -c 8`.
func BenchmarkInvokeParallel(b *testing.B) {
	mod, err := testbuild.Wasm("./functions/leader", true)
	if err != nil {
		b.Fatal(err)
	}
	f, err := engine.Load(context.Background(), mod, limits(5*time.Second, 64))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close(context.Background())
	input := leaderInput(100)
	// Let every warm instance's heap reach its working size.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, err := f.Invoke(context.Background(), input, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Invoke(context.Background(), input, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
