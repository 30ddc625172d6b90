package enclave_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wat"
)

// rssOverhead is what the runtime may hold beyond its functions' memory
// limits while the suite runs: the Go heap of the server and the test,
// compiled code and, under the race detector, its shadow memory.
const rssOverhead = 128 << 20

// hostile is one module of testdata/hostile and what must happen to it.
type hostile struct {
	file     string
	manifest string
	// kind is the run's error kind; "invalid_module" means that the
	// deploy is refused.
	kind string
	msg  string
	// within bounds how long the run (or deploy) may take.
	within time.Duration
	// resident bounds the process's resident memory during the run,
	// above what it was before, not counting rssOverhead.
	resident int64
	// raceShadow is what the race detector's shadow of the Go heap the run
	// allocated keeps resident after the heap is freed: its shadow is
	// never unmapped. Only under -race.
	raceShadow int64
}

// The hostile modules. Each fails its own caller with the right error,
// within a bound, while another function and /healthz go on being served
// and resident memory stays within the function's memory limit.
var hostileModules = []hostile{
	{"fill-loop.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s"}}`,
		"timeout", "did not finish within its 1s timeout", 10 * time.Second, 64 << 20, 0},
	{"copy-loop.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s"}}`,
		"timeout", "did not finish within its 1s timeout", 10 * time.Second, 64 << 20, 0},
	{"grow-pages-trap.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "60s", "memory_mib": 1024}}`,
		"out_of_memory", "ran out of memory (limit 1024 MiB)", 60 * time.Second, 1024 << 20, 0},
	{"grow-pages-spin.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s", "memory_mib": 64}}`,
		"out_of_memory", "ran out of memory (limit 64 MiB)", 10 * time.Second, 64 << 20, 0},
	// wazero's call stack lives on the Go heap, up to 400 MB of it and
	// whatever copies growing it leaves for the collector: memory_mib
	// does not bound it.
	{"recurse.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "20s", "memory_mib": 1}}`,
		"trap", "stack overflow", 20 * time.Second, 1 << 30, 512 << 20},
	{"stdout-flood.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "20s", "memory_mib": 1}}`,
		"output_too_large", "output is more than the function's limit", 10 * time.Second, 16 << 20, 0},
	{"stderr-flood.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s", "memory_mib": 1}}`,
		"timeout", "did not finish within its 1s timeout", 10 * time.Second, 16 << 20, 0},
	{"stdin-loop.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s", "memory_mib": 1}}`,
		"timeout", "did not finish within its 1s timeout", 10 * time.Second, 16 << 20, 0},
	// Start-up gets max(timeout, sandbox.DefaultMinLoadTimeout = 10s).
	{"init-loop.wat", `{"allow_plaintext_input": true, "limits": {"timeout": "1s", "memory_mib": 1}}`,
		"invalid_module", "did not finish within the 10s its start-up gets", 60 * time.Second, 16 << 20, 0},
}

// TestHostileModules runs each hostile module in a child process of its
// own, against a real runtime there: a module that freezes the runtime
// (a stop-the-world collection waiting on a guest that never reaches a
// safe point) freezes the child, and the parent reports it instead of
// hanging. Each child also starts from its own resident memory.
func TestHostileModules(t *testing.T) {
	if _, err := residentBytes(); err != nil {
		t.Fatalf("this suite reads /proc/self/status: %v", err)
	}
	cache := t.TempDir() // shared by the children: the leader compiles once
	for _, h := range hostileModules {
		t.Run(strings.TrimSuffix(h.file, ".wat"), func(t *testing.T) {
			limit := h.within + 90*time.Second
			cctx, cancel := context.WithTimeout(ctx, limit)
			defer cancel()
			cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestHostileModule$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), hostileEnv+"="+h.file, hostileCacheEnv+"="+cache)
			out, err := cmd.CombinedOutput()
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "hostile_test.go") {
					t.Log(strings.TrimSpace(line))
				}
			}
			switch {
			case cctx.Err() != nil:
				t.Fatalf("the runtime froze: the run did not end within %v and its process was killed; its output:\n%s", limit, out)
			case err != nil:
				t.Fatalf("%v; output:\n%s", err, out)
			case !bytes.Contains(out, []byte("--- PASS: TestHostileModule ")):
				t.Fatalf("the child did not run the case; output:\n%s", out)
			}
		})
	}
}

// Environment variables that make TestHostileModule, in a child process,
// run one case of TestHostileModules.
const (
	hostileEnv      = "VOUCH_TEST_HOSTILE_MODULE"
	hostileCacheEnv = "VOUCH_TEST_HOSTILE_CACHE"
)

// TestHostileModule runs one hostile module: the one TestHostileModules
// names in its child's environment.
func TestHostileModule(t *testing.T) {
	file := os.Getenv(hostileEnv)
	if file == "" {
		t.Skip("runs in a child process of TestHostileModules")
	}
	i := slices.IndexFunc(hostileModules, func(h hostile) bool { return h.file == file })
	if i < 0 {
		t.Fatalf("no hostile module %q", file)
	}
	h := hostileModules[i]
	env := enclavetest.Start(t, enclavetest.WithCacheDir(os.Getenv(hostileCacheEnv)))
	leader := env.DeployLeader()
	c := env.Client(client.Options{Plaintext: true})
	mod := assemble(t, h.file)
	b, err := bundle.New(mod, []byte(h.manifest))
	if err != nil {
		t.Fatal(err)
	}
	before := settledResident(t)
	w := watch(t, env, c, leader)
	start := time.Now()
	d, err := c.Deploy(ctx, b, "")
	if h.kind == "invalid_module" {
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeInvalidModule || !strings.Contains(ae.Message, h.msg) {
			t.Fatalf("deploy: %v, want invalid_module containing %q", err, h.msg)
		}
	} else {
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Run(ctx, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeFunctionFailed || ae.Kind != h.kind || !strings.Contains(ae.Message, h.msg) {
			t.Fatalf("run: %v, want %s containing %q", err, h.kind, h.msg)
		}
	}
	elapsed := time.Since(start)
	peak, worst := w.stop()
	t.Logf("%s ended in %v; resident +%d MiB at peak; slowest /healthz or other function %v", h.file, elapsed.Round(time.Millisecond), (peak-before)>>20, worst.Round(time.Millisecond))
	if elapsed > h.within {
		t.Errorf("took %v, more than %v", elapsed, h.within)
	}
	if worst > servedWithin {
		t.Errorf("meanwhile /healthz or another function waited %v, more than %v", worst, servedWithin)
	}
	if peak-before > h.resident+rssOverhead {
		t.Errorf("resident memory rose by %d MiB, more than %d MiB and %d MiB of overhead", (peak-before)>>20, h.resident>>20, rssOverhead>>20)
	}
	if d != nil {
		if err := c.Delete(ctx, d.FunctionID); err != nil {
			t.Fatal(err)
		}
	}
	limit := before + rssOverhead
	if raceEnabled {
		limit += h.raceShadow
	}
	waitResidentBelow(t, limit)
}

// A reactor keeps its warm instances and their memory: up to memory_mib for
// each of the MaxInstances it may run at once. Deleting it gives the memory
// back.
func TestReactorMemoryIsBoundedAndReturned(t *testing.T) {
	const instances, mib = 4, 64
	env := enclavetest.Start(t, func(c *enclave.Config) { c.MaxInstances = instances })
	c := env.Client(client.Options{Plaintext: true})
	b, err := bundle.New(assemble(t, "reactor-grow.wat"), []byte(fmt.Sprintf(`{"allow_plaintext_input": true, "limits": {"timeout": "20s", "memory_mib": %d}}`, mib)))
	if err != nil {
		t.Fatal(err)
	}
	before := settledResident(t)
	w := watch(t, env, c, client.FunctionRef{})
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	// Twice as many runs at once as instances: the others queue.
	var wg sync.WaitGroup
	errs := make(chan error, 2*instances)
	for range 2 * instances {
		wg.Go(func() {
			if _, err := c.Run(ctx, ref, nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	peak, _ := w.stop()
	t.Logf("resident +%d MiB at peak with %d instances of %d MiB", (peak-before)>>20, instances, mib)
	if bound := int64(instances*mib)<<20 + rssOverhead; peak-before > bound {
		t.Errorf("resident memory rose by %d MiB, more than %d instances × %d MiB and %d MiB of overhead", (peak-before)>>20, instances, mib, rssOverhead>>20)
	}
	if err := c.Delete(ctx, d.FunctionID); err != nil {
		t.Fatal(err)
	}
	waitResidentBelow(t, before+rssOverhead)
}

func assemble(t *testing.T, file string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "hostile", file))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := wat.Assemble(string(src))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return mod
}

// watcher keeps asking /healthz and, if given, another function, and
// samples resident memory.
type watcher struct {
	t     *testing.T
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peak  int64
	worst time.Duration
	err   error
}

func watch(t *testing.T, env *enclavetest.Env, c *client.Client, other client.FunctionRef) *watcher {
	w := &watcher{t: t, done: make(chan struct{})}
	w.peak, _ = residentBytes()
	resetPeak()
	w.wg.Go(func() {
		for {
			select {
			case <-w.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if r, err := residentBytes(); err == nil {
				w.mu.Lock()
				w.peak = max(w.peak, r)
				w.mu.Unlock()
			}
		}
	})
	w.wg.Go(func() {
		hc := &http.Client{Timeout: time.Minute}
		for {
			select {
			case <-w.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			start := time.Now()
			resp, err := hc.Get(env.URL + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("/healthz: %s", resp.Status)
				}
			}
			d := time.Since(start)
			if err == nil && other.ID != "" {
				start = time.Now()
				_, err = c.Run(ctx, other, []byte(leaderInput))
				d = max(d, time.Since(start))
			}
			w.mu.Lock()
			w.worst = max(w.worst, d)
			if err != nil && w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	})
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the watch and returns the peak resident memory and the
// longest one request (to /healthz, or a run of the other function) took.
func (w *watcher) stop() (int64, time.Duration) {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
	if hwm, err := statusField("VmHWM:"); err == nil && peakResettable {
		w.peak = max(w.peak, hwm)
	}
	if w.err != nil {
		w.t.Errorf("the runtime stopped serving: %v", w.err)
		w.err = nil
	}
	return w.peak, w.worst
}

// peakResettable is whether VmHWM was reset, so that it is this watch's
// peak.
var peakResettable bool

func resetPeak() {
	peakResettable = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func residentBytes() (int64, error) { return statusField("VmRSS:") }

func statusField(name string) (int64, error) {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(f))
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), name); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", name)
}

// settledResident returns resident memory after a collection has returned
// what it can.
func settledResident(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	r, err := residentBytes()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitResidentBelow polls until resident memory is under limit.
func waitResidentBelow(t *testing.T, limit int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := settledResident(t)
		if r <= limit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resident memory stays at %d MiB, over %d MiB, after the function is gone", r>>20, limit>>20)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
