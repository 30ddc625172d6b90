package sandbox

import (
	"context"
	"runtime/debug"
	"time"
)

// DefaultIdleTimeout is the default of Config.IdleTimeout.
const DefaultIdleTimeout = 30 * time.Second

// noteInUse records how many invocations of f run at once, for trimIdle.
// It is on the call path: a channel length and an atomic load, and a
// compare-and-swap only when the peak rises.
func (f *Function) noteInUse() {
	n := int32(len(f.sem))
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// trimIdle closes the warm instances that the last period's traffic did
// not need: it keeps as many instances, idle and running, as ran at once
// since the previous trim, and at least one. It reports how many it closed.
// A call that arrives while it trims may find no idle instance and start
// one, as a first call does.
func (f *Function) trimIdle() int {
	keep := max(1, int(f.peak.Swap(0))) - len(f.sem)
	// Hold a slot so that Close, which takes them all before closing the
	// runtime, does not run meanwhile.
	select {
	case f.sem <- struct{}{}:
	default:
		return 0 // every slot busy: nothing is idle
	}
	defer func() { <-f.sem }()
	closed := 0
	for len(f.idle) > keep {
		select {
		case inst := <-f.idle:
			inst.mod.Close(context.Background())
			closed++
		default:
			return closed
		}
	}
	return closed
}

// trimLoop calls trimIdle every period until f is closed, and releases
// memory after a trim that closed instances if the engine is so
// configured.
func (f *Function) trimLoop(every time.Duration, release bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.life.Done():
			return
		case <-t.C:
			if f.trimIdle() > 0 && release {
				releaseMemory()
			}
		}
	}
}

// releaseMemory runs the garbage collector and returns the free heap to
// the operating system. Compiling a module leaves tens of MiB of garbage;
// in a process at rest no allocation triggers a collection, so without
// this the heap keeps that size until the Go runtime's periodic collection
// (every 2 minutes) and its scavenger give it back.
func releaseMemory() { debug.FreeOSMemory() }
