package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/sandbox/internal/interrupt"
)

// Mode says how a module is invoked.
type Mode string

// The two module kinds.
const (
	ModeCommand Mode = "command" // WASI _start, fresh instance per call
	ModeReactor Mode = "reactor" // vouch_run on warm instances
)

// HostModule is the import module name of vouch's host functions.
const HostModule = "vouch"

// Config configures an Engine.
type Config struct {
	// CacheDir holds wazero's compilation cache, so that a restart does not
	// compile every module again. Empty means an in-memory cache.
	CacheDir string
	// MaxInstances bounds how many invocations of one function run at once
	// (and so how many warm instances it keeps, and the linear memory it
	// holds: MaxInstances × memory_mib). Zero means 2×GOMAXPROCS, at least
	// 4. Further callers wait their turn.
	MaxInstances int
	// MinLoadTimeout is the least time a reactor's start-up (its start
	// function and _initialize) gets when a function is loaded at deploy
	// or after a restart: max(the function's timeout, MinLoadTimeout).
	// Start-up runs once, possibly while the machine is busy compiling
	// other modules, so it gets more room than one invocation; it is still
	// bounded, so a module that loops at start-up is refused. Zero means
	// DefaultMinLoadTimeout.
	MinLoadTimeout time.Duration
	// IdleTimeout is how often a reactor's warm instances are trimmed to
	// the most that ran at once since the last trim (at least one stays
	// warm). Each instance holds its own linear memory, a few MiB for a Go
	// guest. Zero means DefaultIdleTimeout; negative never trims.
	IdleTimeout time.Duration
	// ReleaseMemory runs the garbage collector and returns the free heap
	// to the operating system after each Load and after a trim that closed
	// instances (debug.FreeOSMemory), so that the garbage compilation
	// leaves does not stay resident in a process at rest.
	ReleaseMemory bool
}

// DefaultMinLoadTimeout is the default of Config.MinLoadTimeout.
const DefaultMinLoadTimeout = 10 * time.Second

// Engine compiles and runs functions. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	cache wazero.CompilationCache
}

// NewEngine returns an Engine.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if cfg.MinLoadTimeout <= 0 {
		cfg.MinLoadTimeout = DefaultMinLoadTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	return &Engine{cfg: cfg, cache: cache}, nil
}

// Close releases the compilation cache. Functions loaded by the engine must
// be closed first.
func (e *Engine) Close(ctx context.Context) error { return e.cache.Close(ctx) }

// Function is a compiled function ready to invoke. It is safe for
// concurrent use.
type Function struct {
	mode     Mode
	stateful bool
	hasStart bool // the module had a start section, now StartExport
	limits   bundle.Limits
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	sem      chan struct{}
	idle     chan *instance
	peak     atomic.Int32 // most invocations at once since the last trimIdle

	closeOnce sync.Once
	closed    chan struct{}
	// life ends at Close; kill ends it, interrupting the invocations
	// under way.
	life context.Context
	kill context.CancelFunc
	// stopped is closed once Close has released the instances.
	stopped chan struct{}
	stopErr error
}

// allowedImports lists what a function may import. Everything else, such as
// WASI sockets, is refused at load time.
var allowedImports = map[string]bool{
	wasi_snapshot_preview1.ModuleName: true,
	HostModule:                        true,
}

// memoryOverLimit matches wazero's error about a memory larger than the
// runtime's limit: "min 2048 pages (128 Mi) over limit of 1024 pages (64 Mi)".
var memoryOverLimit = regexp.MustCompile(`\b(min|max) (\d+) pages \([^)]*\) over limit`)

// compile is rt.CompileModule, with a panic in the compiler turned into an
// error: wazero 1.12's validator panics on some malformed modules
// (FuzzInstrument found one, testdata/fuzz/FuzzInstrument), and a bundle
// from a client must not take the runtime down.
func compile(ctx context.Context, rt wazero.Runtime, module []byte) (c wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("the WebAssembly compiler failed on this module (wazero panicked: %v); it is malformed", p)
		}
	}()
	return rt.CompileModule(ctx, module)
}

// Load compiles a module under limits (already resolved against defaults),
// checks what it imports and exports and, for reactors, starts one instance
// to prove that it initialises.
func (e *Engine) Load(ctx context.Context, module []byte, limits bundle.Limits) (*Function, error) {
	pages := uint32(uint64(limits.MemoryMiB) << 20 >> 16)
	if pages == 0 || pages > 65536 {
		return nil, fmt.Errorf("%w: memory limit %d MiB is outside 1..4096", ErrModule, limits.MemoryMiB)
	}
	if e.cfg.ReleaseMemory {
		defer releaseMemory()
	}
	rcfg := wazero.NewRuntimeConfig().
		WithCompilationCache(e.cache).
		WithMemoryLimitPages(pages).
		WithDebugInfoEnabled(false)
	rt := wazero.NewRuntimeWithConfig(ctx, rcfg)
	f := &Function{rt: rt, limits: limits, closed: make(chan struct{}), stopped: make(chan struct{})}
	f.life, f.kill = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			rt.Close(ctx)
		}
	}()
	instrumented, err := interrupt.Instrument(module, interrupt.Options{MaxTableElements: maxTableElements(limits.MemoryMiB)})
	if te := (*interrupt.TableLimitError)(nil); errors.As(err, &te) {
		return nil, memoryLimitError("its tables start with %d elements, more than the %d a memory limit of %d MiB allows (tables may hold %d elements, 8 bytes each, per MiB of the limit)",
			te.Min, te.Max, limits.MemoryMiB, maxTableElements(1))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModule, err)
	}
	compiled, err := compile(ctx, rt, instrumented)
	if err != nil {
		msg := firstLine(err.Error())
		if m := memoryOverLimit.FindStringSubmatch(msg); m != nil {
			pages, _ := strconv.ParseUint(m[2], 10, 32)
			return nil, memoryLimitError("its memory %s at %d pages of 64 KiB (%.1f MiB), more than the memory limit of %d MiB",
				map[string]string{"min": "starts", "max": "can grow"}[m[1]], pages, float64(pages)/16, limits.MemoryMiB)
		}
		return nil, fmt.Errorf("%w: %s", ErrModule, msg)
	}
	f.compiled = compiled
	for _, imp := range compiled.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if !allowedImports[mod] {
			return nil, fmt.Errorf("%w: it imports %s.%s, but functions may import only from %q and %q (no network, no host access)", ErrModule, mod, name, wasi_snapshot_preview1.ModuleName, HostModule)
		}
		if mod == HostModule {
			stateful, ok := hostFunctionNames[name]
			if !ok {
				return nil, fmt.Errorf("%w: it imports vouch.%s, which this runtime does not provide (is the guest package newer than the runtime?)", ErrModule, name)
			}
			f.stateful = f.stateful || stateful
		}
	}
	if len(compiled.ImportedMemories()) > 0 {
		return nil, fmt.Errorf("%w: it imports a memory; a function must define its own", ErrModule)
	}
	exports := compiled.ExportedFunctions()
	if def := exports[interrupt.StartExport]; def != nil {
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return nil, fmt.Errorf("%w: its start function must take no parameters and return nothing", ErrModule)
		}
		f.hasStart = true
	}
	switch {
	case exports["vouch_run"] != nil && exports["_initialize"] != nil:
		f.mode = ModeReactor
		if def := exports["vouch_run"]; len(def.ParamTypes()) != 1 || len(def.ResultTypes()) != 1 ||
			def.ParamTypes()[0] != api.ValueTypeI32 || def.ResultTypes()[0] != api.ValueTypeI32 {
			return nil, fmt.Errorf("%w: vouch_run must have the signature (i32) -> i32", ErrModule)
		}
	case exports["_start"] != nil:
		f.mode = ModeCommand
	default:
		return nil, fmt.Errorf("%w: it exports neither _start (a WASI command) nor _initialize and vouch_run (a reactor built with the vouch guest package and -buildmode=c-shared)", ErrModule)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiate host module: %w", err)
	}
	f.sem = make(chan struct{}, e.cfg.MaxInstances)
	f.idle = make(chan *instance, e.cfg.MaxInstances)
	if f.mode == ModeReactor {
		// Start one instance now: a module whose runtime cannot start
		// is refused at deploy time rather than at its first run.
		timeout := max(time.Duration(limits.Timeout), e.cfg.MinLoadTimeout)
		ictx, cancel := context.WithTimeout(ctx, timeout)
		inst, err := f.newInstance(ictx, timeout)
		cancel()
		if err != nil {
			var fe *Error
			if errors.As(err, &fe) {
				return nil, fmt.Errorf("%w: it failed to initialise: %w", ErrModule, fe)
			}
			return nil, err
		}
		f.idle <- inst
		if e.cfg.IdleTimeout > 0 {
			go f.trimLoop(e.cfg.IdleTimeout, e.cfg.ReleaseMemory)
		}
	}
	ok = true
	return f, nil
}

// Stateful reports whether the function imports the state or counter host
// functions. The runtime serialises the invocations of a stateful function
// and commits each one's writes before the next starts.
func (f *Function) Stateful() bool { return f.stateful }

// Mode reports how the function is invoked.
func (f *Function) Mode() Mode { return f.mode }

// Limits returns the limits the function runs under.
func (f *Function) Limits() bundle.Limits { return f.limits }

// Close stops the function's instances and gives their memory back.
// Invocations under way are interrupted and fail with ErrClosed; Close waits
// for them, since an instance's memory cannot be unmapped while it runs. If
// ctx ends first, Close returns ctx.Err() and the instances are released
// once the last invocation ends.
func (f *Function) Close(ctx context.Context) error {
	f.closeOnce.Do(func() {
		close(f.closed)
		f.kill()
		go func() {
			for range cap(f.sem) {
				f.sem <- struct{}{}
			}
			f.stopErr = f.rt.Close(context.Background())
			close(f.stopped)
		}()
	})
	select {
	case <-f.stopped:
		return f.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Result is a successful invocation's outcome.
type Result struct {
	Output []byte
	// Log is what the function wrote to stderr (and, for reactors,
	// stdout), cut at the log limit.
	Log []byte
	// Elapsed is the time spent running the function, queueing excluded.
	Elapsed time.Duration
}

// Invoke runs the function once on input. A function failure returns an
// *Error; ctx cancellation and shutdown return ctx.Err() or ErrClosed.
func (f *Function) Invoke(ctx context.Context, input []byte, host Host) (*Result, error) {
	if int64(len(input)) > f.limits.MaxInputBytes {
		return nil, &Error{Kind: KindInputTooLarge, Message: fmt.Sprintf("input is %d bytes, more than the function's limit of %d", len(input), f.limits.MaxInputBytes)}
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.closed:
		return nil, ErrClosed
	}
	defer func() { <-f.sem }()
	select {
	case <-f.closed:
		return nil, ErrClosed // Close won the race for the slot's release
	default:
	}
	f.noteInUse()

	inv := &invocation{input: input, maxOutput: f.limits.MaxOutputBytes, host: host, timeout: time.Duration(f.limits.Timeout)}
	inv.log.max = f.limits.MaxLogBytes
	inv.parent = ctx
	ctx, cancel := context.WithTimeout(ctx, inv.timeout)
	defer cancel()
	inv.cancel = cancel
	defer context.AfterFunc(f.life, cancel)()
	ctx = context.WithValue(ctx, invocationKey{}, inv)
	start := time.Now()
	var err error
	if f.mode == ModeReactor {
		err = f.invokeReactor(ctx, inv)
	} else {
		err = f.invokeCommand(ctx, inv)
	}
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	return &Result{Output: inv.output, Log: inv.log.Bytes(), Elapsed: elapsed}, nil
}

func (f *Function) invokeCommand(ctx context.Context, inv *invocation) error {
	out := &limitedBuffer{max: inv.maxOutput, failOnOverflow: true, onOverflow: inv.stop}
	cfg := baseModuleConfig().
		WithStdin(bytes.NewReader(inv.input)).
		WithStdout(out).
		WithStderr(&inv.log)
	mod, grow, err := f.instantiate(ctx, cfg)
	if err != nil {
		return f.classify(ctx, err, inv, grow)
	}
	defer mod.Close(context.Background())
	if !mod.IsClosed() { // the start function may have called proc_exit(0)
		_, err = callInterruptible(ctx, mod, "_start")
	}
	if out.overflow {
		return &Error{Kind: KindOutputTooLarge, Message: fmt.Sprintf("output is more than the function's limit of %d bytes", inv.maxOutput), Log: inv.log.Bytes()}
	}
	if err != nil {
		return f.classify(ctx, err, inv, grow)
	}
	if inv.fail != nil {
		inv.fail.Log = inv.log.Bytes()
		return inv.fail
	}
	switch {
	case len(inv.output) > 0 && out.Len() > 0:
		return &Error{Kind: KindFailed, Message: "function wrote its output both to stdout and with vouch.output_write; use one", Log: inv.log.Bytes()}
	case len(inv.output) == 0:
		inv.output = out.Bytes()
	}
	return nil
}

// growFlag is an instance's GrowFailedExport global.
type growFlag struct{ g api.MutableGlobal }

// failed reports whether a memory.grow or table.grow failed since the last
// reset.
func (g growFlag) failed() bool { return g.g != nil && g.g.Get() != 0 }

func (g growFlag) reset() {
	if g.g != nil {
		g.g.Set(0)
	}
}

// instantiate creates an instance and, if the module had a start section,
// runs its start function under the interrupt flag: wasm would have run it
// inside InstantiateModule, where nothing can stop it.
func (f *Function) instantiate(ctx context.Context, cfg wazero.ModuleConfig) (api.Module, growFlag, error) {
	mem := &instanceMemory{}
	mod, err := f.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), f.compiled, cfg)
	if err != nil {
		mem.free() // wazero does not close an instance that failed
		return nil, growFlag{}, err
	}
	g, _ := mod.ExportedGlobal(interrupt.GrowFailedExport).(api.MutableGlobal)
	grow := growFlag{g}
	if f.hasStart {
		if _, err := callInterruptible(ctx, mod, interrupt.StartExport); err != nil {
			mod.Close(context.Background())
			return nil, grow, err
		}
	}
	return mod, grow, nil
}

// callInterruptible calls an exported function and, if ctx ends first, sets
// the module's interrupt flag so that the call traps at its next host call
// (package interrupt bounds the work between two). It reports whether the flag may have been set,
// in which case the instance must not be reused.
func callInterruptible(ctx context.Context, mod api.Module, name string, params ...uint64) (res []uint64, err error) {
	flag, fn, err := exports(mod, name)
	if err != nil {
		return nil, err
	}
	return callWithFlag(ctx, mod, flag, fn, params...)
}

// exports looks up a module's interrupt flag and the exported function
// name.
func exports(mod api.Module, name string) (api.MutableGlobal, api.Function, error) {
	flag, _ := mod.ExportedGlobal(interrupt.ExportName).(api.MutableGlobal)
	fn := mod.ExportedFunction(name)
	if flag == nil || fn == nil {
		return nil, nil, fmt.Errorf("module lost its %s export", name)
	}
	return flag, fn, nil
}

// callWithFlag is callInterruptible with the flag and the function already
// looked up. fn is not safe for concurrent use: a caller reusing it must
// make sure that only one call runs at a time.
func callWithFlag(ctx context.Context, mod api.Module, flag api.MutableGlobal, fn api.Function, params ...uint64) (res []uint64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { flag.Set(1) })
	res, err = fn.Call(ctx, params...)
	if !stop() {
		// The flag was set (or is being set): this instance is done.
		mod.Close(context.Background())
		if err == nil {
			err = ctx.Err()
		}
		return res, &interrupted{cause: err}
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil // proc_exit(0) is success
	}
	return res, err
}

// interrupted marks an invocation stopped by its context.
type interrupted struct{ cause error }

func (e *interrupted) Error() string { return "interrupted: " + e.cause.Error() }
func (e *interrupted) Unwrap() error { return e.cause }

func (f *Function) invokeReactor(ctx context.Context, inv *invocation) error {
	var inst *instance
	select {
	case inst = <-f.idle:
	default:
		var err error
		if inst, err = f.newInstance(ctx, inv.timeout); err != nil {
			return err
		}
	}
	inst.stdio.target = &inv.log
	inst.grow.reset()
	res, err := callWithFlag(ctx, inst.mod, inst.flag, inst.run, uint64(len(inv.input)))
	inst.stdio.target = nil
	if err != nil || inst.mod.IsClosed() {
		inst.mod.Close(context.Background())
		if err == nil {
			err = errors.New("module closed itself")
		}
		return f.classify(ctx, err, inv, inst.grow)
	}
	// The instance is healthy: even a handler error leaves it usable.
	select {
	case f.idle <- inst:
	default:
		inst.mod.Close(context.Background())
	}
	if inv.fail != nil {
		inv.fail.Log = inv.log.Bytes()
		return inv.fail
	}
	if api.DecodeU32(res[0]) != 0 {
		msg := inv.errMsg
		if msg == "" {
			msg = "function reported failure without a message"
		}
		return &Error{Kind: KindFailed, Message: msg, Log: inv.log.Bytes()}
	}
	return nil
}

// instance is one warm reactor instance. It serves one invocation at a time.
type instance struct {
	mod   api.Module
	stdio *switchWriter
	// flag and run are looked up once: wazero allocates a call engine,
	// with its stack, for every ExportedFunction.
	flag api.MutableGlobal
	run  api.Function
	grow growFlag
}

// newInstance starts a reactor instance under ctx, whose deadline is
// timeout away: the timeout an error reports.
func (f *Function) newInstance(ctx context.Context, timeout time.Duration) (*instance, error) {
	sw := &switchWriter{}
	cfg := baseModuleConfig().
		WithStdout(sw).
		WithStderr(sw)
	inv := &invocation{timeout: timeout}
	inv.log.max = f.limits.MaxLogBytes
	sw.target = &inv.log
	mod, grow, err := f.instantiate(ctx, cfg)
	if err != nil {
		sw.target = nil
		return nil, f.classify(ctx, err, inv, grow)
	}
	_, err = callInterruptible(ctx, mod, "_initialize")
	sw.target = nil
	if err != nil {
		mod.Close(context.Background())
		return nil, f.classify(ctx, err, inv, grow)
	}
	flag, run, err := exports(mod, "vouch_run")
	if err != nil {
		mod.Close(context.Background())
		return nil, err
	}
	return &instance{mod: mod, stdio: sw, flag: flag, run: run, grow: grow}, nil
}

// baseModuleConfig grants the clocks and crypto/rand, and nothing else.
// Start functions are called by hand, under the interrupt flag. Sleeping is
// left as wazero's default no-op, so a guest that sleeps spins through its
// loop checks instead of blocking in the host past its deadline.
func baseModuleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
}

// classify turns a wazero error into an *Error that says what happened.
// grow is the failed instance's record of failed memory.grow and
// table.grow instructions.
func (f *Function) classify(ctx context.Context, err error, inv *invocation, grow growFlag) error {
	select {
	case <-f.closed:
		return ErrClosed
	default:
	}
	log := inv.log.Bytes()
	var intr *interrupted
	if errors.As(err, &intr) {
		if inv.stopped && inv.fail != nil {
			inv.fail.Log = log
			return inv.fail // stopped for writing too much output
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && (inv.parent == nil || inv.parent.Err() == nil) {
			if outOfMemory(log, grow) {
				// The guest went on after a failed grow until the
				// deadline: the failed grow is the news.
				return &Error{Kind: KindOutOfMemory, Message: fmt.Sprintf("function ran out of memory (limit %d MiB): a memory.grow or table.grow failed, and it then did not finish within %s", f.limits.MemoryMiB, f.timeoutText(inv.timeout)), Log: log}
			}
			return &Error{Kind: KindTimeout, Message: fmt.Sprintf("function did not finish within %s", f.timeoutText(inv.timeout)), Log: log}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if outOfMemory(log, grow) {
			return &Error{Kind: KindOutOfMemory, ExitCode: exit.ExitCode(), Message: fmt.Sprintf("function ran out of memory (limit %d MiB)", f.limits.MemoryMiB), Log: log}
		}
		return &Error{Kind: KindExit, ExitCode: exit.ExitCode(), Message: exitMessage(exit.ExitCode(), log), Log: log}
	}
	if inv.fail != nil {
		inv.fail.Log = log
		return inv.fail
	}
	if outOfMemory(log, grow) {
		return &Error{Kind: KindOutOfMemory, Message: fmt.Sprintf("function ran out of memory (limit %d MiB)", f.limits.MemoryMiB), Log: log}
	}
	msg := strings.TrimPrefix(firstLine(err.Error()), "wasm error: ")
	if p := panicLine(log); p != "" {
		// A Go guest that panics in reactor mode ends in a trap; its
		// stderr says why.
		return &Error{Kind: KindTrap, Message: "function panicked: " + p, Log: log}
	}
	return &Error{Kind: KindTrap, Message: "function trapped: " + msg, Log: log}
}

// timeoutText names the timeout that applied: the function's own, or the
// longer one its start-up got at load.
func (f *Function) timeoutText(applied time.Duration) string {
	if applied == 0 || applied == time.Duration(f.limits.Timeout) {
		return fmt.Sprintf("its %s timeout", f.limits.Timeout)
	}
	return fmt.Sprintf("the %s its start-up gets (the longer of its %s timeout and the runtime's minimum start-up time)", applied, f.limits.Timeout)
}

// panicLine returns the "panic: ..." line of a Go guest's stderr.
func panicLine(log []byte) string {
	i := bytes.Index(log, []byte("panic: "))
	if i < 0 {
		return ""
	}
	line := log[i+len("panic: "):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	if len(line) > 200 {
		line = append(line[:200:200], "…"...)
	}
	return string(line)
}

// outOfMemory reports whether a failed instance ran out of memory, on
// evidence only: a memory.grow or table.grow that failed during the
// invocation, or the Go runtime's own message on stderr. How much memory the
// instance had proves nothing: a module may trap or exit for its own reasons
// with its memory at the limit.
func outOfMemory(log []byte, grow growFlag) bool {
	return grow.failed() || bytes.Contains(log, []byte("fatal error: out of memory"))
}

// maxTableElements is how many table elements a function with a memory
// limit of mib MiB may have in all its tables: as many as fit in mib MiB
// at 8 bytes each (wazero keeps one pointer per element on the heap).
func maxTableElements(mib uint32) uint64 { return uint64(mib) << 20 / 8 }

func exitMessage(code uint32, log []byte) string {
	msg := fmt.Sprintf("function exited with code %d", code)
	if last := lastLine(log); last != "" {
		msg += ": " + last
	}
	return msg
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLine(log []byte) string {
	s := strings.TrimSpace(string(log))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
