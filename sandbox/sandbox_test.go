package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

var (
	engine     *Engine
	cacheDir   string // engine's compilation cache, for tests' own engines
	testfnCmd  []byte
	testfnReac []byte
)

func TestMain(m *testing.M) {
	var err error
	if testfnCmd, err = testbuild.Wasm("./sandbox/testdata/testfn", false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testfnReac, err = testbuild.Wasm("./sandbox/testdata/testfn", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "sandbox-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	if engine, err = NewEngine(Config{CacheDir: dir}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func limits(timeout time.Duration, memMiB uint32) bundle.Limits {
	l := bundle.DefaultLimits
	l.Timeout = bundle.Duration(timeout)
	l.MemoryMiB = memMiB
	return l
}

func load(t *testing.T, mod []byte, l bundle.Limits) *Function {
	t.Helper()
	f, err := engine.Load(context.Background(), mod, l)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

// inBothModes runs test on testfn loaded as a command and as a reactor,
// each with a 5 s timeout and 64 MiB.
func inBothModes(t *testing.T, test func(t *testing.T, f *Function)) {
	for _, m := range []struct {
		name string
		mod  []byte
	}{{"command", testfnCmd}, {"reactor", testfnReac}} {
		t.Run(m.name, func(t *testing.T) { test(t, load(t, m.mod, limits(5*time.Second, 64))) })
	}
}

func wantKind(t *testing.T, err error, kind Kind) *Error {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want *Error of kind %s", err, err, kind)
	}
	if fe.Kind != kind {
		t.Fatalf("kind = %s (%v), want %s", fe.Kind, fe, kind)
	}
	return fe
}

func TestGoGuestBothModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  []byte
		mode Mode
	}{{"command", testfnCmd, ModeCommand}, {"reactor", testfnReac, ModeReactor}} {
		t.Run(tc.name, func(t *testing.T) {
			f := load(t, tc.mod, limits(5*time.Second, 64))
			if f.Mode() != tc.mode {
				t.Fatalf("mode = %s, want %s", f.Mode(), tc.mode)
			}
			ctx := context.Background()
			for i := 0; i < 3; i++ { // warm instances are reused
				res, err := f.Invoke(ctx, []byte("echo:hello"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if string(res.Output) != "hello" {
					t.Fatalf("output = %q", res.Output)
				}
			}
			_, err := f.Invoke(ctx, []byte("fail:no such member"), nil)
			if fe := wantKind(t, err, map[Mode]Kind{ModeCommand: KindExit, ModeReactor: KindFailed}[tc.mode]); !strings.Contains(fe.Message, "no such member") {
				t.Fatalf("message = %q", fe.Message)
			}
			_, err = f.Invoke(ctx, []byte("panic"), nil)
			if tc.mode == ModeCommand {
				// The Go runtime prints the panic and exits with 2.
				if fe := wantKind(t, err, KindExit); fe.ExitCode != 2 || !bytes.Contains(fe.Log, []byte("panics on purpose")) {
					t.Fatalf("panic: code %d log %q", fe.ExitCode, fe.Log)
				}
			} else {
				// In a reactor the panic ends in a trap.
				if fe := wantKind(t, err, KindTrap); fe.Message != "function panicked: testfn panics on purpose" {
					t.Fatalf("panic: %q", fe.Message)
				}
			}
			_, err = f.Invoke(ctx, []byte("exit3"), nil)
			if fe := wantKind(t, err, KindExit); fe.ExitCode != 3 || !strings.Contains(fe.Message, "exiting with 3") {
				t.Fatalf("exit3: %+v", fe)
			}
			// Still serving after every failure.
			res, err := f.Invoke(ctx, []byte("echo:still here"), nil)
			if err != nil || string(res.Output) != "still here" {
				t.Fatalf("after failures: %q %v", res.Output, err)
			}
		})
	}
}

func TestGrantsNothing(t *testing.T) {
	for _, mod := range [][]byte{testfnCmd, testfnReac} {
		f := load(t, mod, limits(5*time.Second, 64))
		res, err := f.Invoke(context.Background(), []byte("probe"), nil)
		if err != nil {
			t.Fatal(err)
		}
		const want = "env=0 args=0 fs=denied cwd=denied net=denied clock=real"
		if string(res.Output) != want {
			t.Fatalf("probe = %q, want %q", res.Output, want)
		}
	}
}

func TestTimeouts(t *testing.T) {
	// A reactor's Load runs the Go runtime's _initialize under the same
	// timeout: on a loaded machine under the race detector that can take
	// more than 200ms, so the Go reactors get a second.
	cases := []struct {
		name    string
		mod     []byte
		input   string
		timeout time.Duration
	}{
		{"wasm loop", wasmtest.Loop(), "", 200 * time.Millisecond},
		{"wasm recursion without loops", wasmtest.Recurse(), "", 200 * time.Millisecond},
		{"go spin command", testfnCmd, "spin", 200 * time.Millisecond},
		{"go spin reactor", testfnReac, "spin", time.Second},
		{"go sleep reactor", testfnReac, "sleep", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := load(t, tc.mod, limits(tc.timeout, 64))
			start := time.Now()
			_, err := f.Invoke(context.Background(), []byte(tc.input), nil)
			wantKind(t, err, KindTimeout)
			if d := time.Since(start); d > tc.timeout+5*time.Second {
				t.Fatalf("a %v timeout took %v to fire", tc.timeout, d)
			}
		})
	}
}

func TestCallerCancellation(t *testing.T) {
	f := load(t, testfnReac, limits(time.Minute, 64))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Invoke(ctx, []byte("spin"), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the caller's context.DeadlineExceeded", err)
	}
	res, err := f.Invoke(context.Background(), []byte("echo:ok"), nil)
	if err != nil || string(res.Output) != "ok" {
		t.Fatalf("after cancellation: %q %v", res, err)
	}
}

func TestOutOfMemory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   []byte
		input string
	}{
		{"wasm grow", wasmtest.GrowForever(), ""},
		{"go command", testfnCmd, "alloc"},
		{"go reactor", testfnReac, "alloc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := load(t, tc.mod, limits(20*time.Second, 32))
			_, err := f.Invoke(context.Background(), []byte(tc.input), nil)
			if fe := wantKind(t, err, KindOutOfMemory); !strings.Contains(fe.Message, "32 MiB") {
				t.Fatalf("message = %q", fe.Message)
			}
		})
	}
}

func TestTrapAndExit(t *testing.T) {
	f := load(t, wasmtest.Trap(), limits(time.Second, 16))
	_, err := f.Invoke(context.Background(), nil, nil)
	if fe := wantKind(t, err, KindTrap); !strings.Contains(fe.Message, "unreachable") {
		t.Fatalf("message = %q", fe.Message)
	}
	f = load(t, wasmtest.Exit(3), limits(time.Second, 16))
	_, err = f.Invoke(context.Background(), nil, nil)
	if fe := wantKind(t, err, KindExit); fe.ExitCode != 3 {
		t.Fatalf("exit code = %d", fe.ExitCode)
	}
	f = load(t, wasmtest.Exit(0), limits(time.Second, 16))
	if _, err := f.Invoke(context.Background(), nil, nil); err != nil {
		t.Fatalf("proc_exit(0) is success, got %v", err)
	}
}

func TestSizeLimits(t *testing.T) {
	l := limits(5*time.Second, 64)
	l.MaxInputBytes, l.MaxOutputBytes, l.MaxLogBytes = 100, 1000, 50
	for _, mod := range [][]byte{testfnCmd, testfnReac} {
		f := load(t, mod, l)
		_, err := f.Invoke(context.Background(), bytes.Repeat([]byte("x"), 101), nil)
		wantKind(t, err, KindInputTooLarge)
		_, err = f.Invoke(context.Background(), []byte("big:1001"), nil)
		wantKind(t, err, KindOutputTooLarge)
		res, err := f.Invoke(context.Background(), []byte("big:1000"), nil)
		if err != nil || len(res.Output) != 1000 {
			t.Fatalf("output at the limit: %v", err)
		}
		res, err = f.Invoke(context.Background(), []byte("log:5000"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Log) > 50+len(cutMarker) || !bytes.Contains(res.Log, []byte("log cut")) {
			t.Fatalf("log of %d bytes not cut: %q", len(res.Log), res.Log)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  []byte
		want string
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), "invalid module"},
		{"truncated", testfnCmd[:len(testfnCmd)/2], "invalid module"},
		{"socket import", wasmtest.Import("wasi_snapshot_preview1", "sock_accept"), ""},
		{"foreign import", wasmtest.Import("env", "system"), "may import only"},
		{"unknown host function", wasmtest.Import("vouch", "launch_missiles"), "does not provide"},
		{"no entry point", wasmtest.Empty(), "exports neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := engine.Load(context.Background(), tc.mod, limits(time.Second, 16))
			if tc.name == "socket import" {
				// WASI's sock_* functions are importable, but the runtime
				// grants no sockets: check that the call fails.
				if err != nil {
					return
				}
				f.Close(context.Background())
				return
			}
			if err == nil {
				f.Close(context.Background())
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrModule containing %q", err, tc.want)
			}
		})
	}
}

// A function that hangs must not hold up other callers of the same function.
func TestOthersKeepBeingServed(t *testing.T) {
	f := load(t, testfnReac, limits(2*time.Second, 64))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.Invoke(context.Background(), []byte("spin"), nil)
	}()
	deadline := time.Now().Add(time.Second)
	served := 0
	for time.Now().Before(deadline) {
		res, err := f.Invoke(context.Background(), []byte("echo:x"), nil)
		if err != nil || string(res.Output) != "x" {
			t.Fatalf("while another call spins: %v", err)
		}
		served++
	}
	wg.Wait()
	if served == 0 {
		t.Fatal("no call was served while another spun")
	}
}

func TestConcurrentInvocations(t *testing.T) {
	f := load(t, testfnReac, limits(10*time.Second, 64))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				want := fmt.Sprintf("g%d-%d", g, i)
				res, err := f.Invoke(context.Background(), []byte("echo:"+want), nil)
				if err != nil {
					errs <- err
					return
				}
				if string(res.Output) != want {
					errs <- fmt.Errorf("got %q, want %q", res.Output, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	f, err := engine.Load(context.Background(), testfnReac, limits(time.Second, 64))
	if err != nil {
		t.Fatal(err)
	}
	f.Close(context.Background())
	f.Close(context.Background()) // idempotent
	if _, err := f.Invoke(context.Background(), []byte("echo:x"), nil); err == nil {
		t.Fatal("invoke after close succeeded")
	}
}
