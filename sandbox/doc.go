// Package sandbox runs WebAssembly functions under wazero with limits.
//
// An Engine owns the on-disk compilation cache. Engine.Load compiles a
// bundle once into a Function; Function.Invoke runs it.
//
// A function is granted, and only granted (docs/ARCHITECTURE.md):
//
//   - its input on stdin (command modules) or through vouch.input_read
//     (reactor modules), and its output on stdout or vouch.output_write;
//   - stderr, captured as the invocation's log and cut at the log limit;
//   - the real wall and monotonic clocks, and random bytes from crypto/rand;
//   - the host functions of the "vouch" import module (docs/FORMATS.md).
//
// It gets no network, no host filesystem, no arguments and no environment
// variables. Modules that import anything else are refused at load time.
//
// Two kinds of module are accepted:
//
//   - WASI commands (export _start): a fresh instance per invocation. This is
//     the contract for any language.
//   - vouch reactors (export _initialize and vouch_run, built with the guest
//     package and -buildmode=c-shared): warm instances are kept in a pool and
//     reused, so a call costs tens of microseconds instead of milliseconds.
//
// Every invocation is bounded by a wall-clock timeout, a memory limit and
// input, output and log sizes. The timeout covers the module's start
// function too: a start section is turned into an export that is called
// under the same interrupt flag as _start. The memory limit bounds linear
// memory and, separately, tables (which wazero keeps on the Go heap): all
// of a module's tables together may hold memory_mib × 131072 elements, 8
// bytes each. A larger table minimum is refused at load; tables without a
// maximum (Go emits them) get one within that bound. Each instance's linear
// memory is a mapping of its own, grown in place and unmapped when the
// instance closes, so a function holds at most MaxInstances × memory_mib of
// it (docs/RATIONALE.md). Out of memory is
// reported only on evidence: a memory.grow or table.grow that failed during
// the invocation, or the Go runtime's "out of memory" on stderr.
//
// A trap, a timeout, running out of memory or a non-zero exit fails that
// invocation with an *Error; the instance it ran in is thrown away and
// every other caller is unaffected.
package sandbox
