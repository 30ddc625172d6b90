package enclave

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/sandbox"
)

// function is a deployed function as the server holds it in memory.
type function struct {
	rec       *store.Function
	manifest  bundle.Manifest
	limits    bundle.Limits
	statement receipt.Statement

	// mu guards the fields below. It is held only for a moment, never
	// while a module compiles.
	mu       sync.Mutex
	compiled *sandbox.Function // nil until loaded after a restart
	loading  chan struct{}     // closed when the load under way ends; nil when none runs
	loadErr  error             // why the last load failed, if it did
	closed   bool

	// stateMu serialises the invocations of a stateful function, from the
	// start of the invocation to the commit of its writes.
	stateMu sync.Mutex
}

// registry maps function IDs to functions. Modules are compiled when
// deployed; after a restart, the server loads them all in the background
// (from the on-disk compilation cache) as soon as it opens.
type registry struct {
	mu  sync.RWMutex
	fns map[string]*function
}

func (r *registry) get(id string) *function {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.fns[id]
}

func (r *registry) put(f *function) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fns[f.rec.ID] = f
}

func (r *registry) remove(id string) *function {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fns[id]
	delete(r.fns, id)
	return f
}

func (r *registry) all() []*function {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*function, 0, len(r.fns))
	for _, f := range r.fns {
		out = append(out, f)
	}
	return out
}

// mode returns the loaded function's mode, or "" while it is not loaded.
func (f *function) mode() sandbox.Mode {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.compiled == nil {
		return ""
	}
	return f.compiled.Mode()
}

func (f *function) close(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.compiled != nil {
		f.compiled.Close(ctx)
	}
}

// loadError is a function that the runtime could not load after a
// restart.
type loadError struct{ err error }

func (e *loadError) Error() string { return "loading the function: " + e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// loader compiles stored functions in the background, under a context the
// server owns: no caller's deadline or disconnection cancels a load.
type loader struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // bounds the loads that run at once
	load   func(context.Context, *function) (*sandbox.Function, error)
	failed func(*function, error) // logs a failed load

	mu     sync.Mutex // guards closed and the WaitGroup's Add
	closed bool
	wg     sync.WaitGroup
}

func newLoader(parallel int, load func(context.Context, *function) (*sandbox.Function, error), failed func(*function, error)) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	return &loader{ctx: ctx, cancel: cancel, sem: make(chan struct{}, max(1, parallel)), load: load, failed: failed}
}

// stop cancels the loads under way and waits for them to end.
func (l *loader) stop() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// start begins loading f unless a load is under way or f is loaded. f.mu
// must be held. It reports false once the loader is stopped.
func (l *loader) start(f *function) bool {
	if f.loading != nil || f.compiled != nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	done := make(chan struct{})
	f.loading, f.loadErr = done, nil
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var c *sandbox.Function
		var err error
		select {
		case l.sem <- struct{}{}:
			c, err = l.load(l.ctx, f)
			<-l.sem
		case <-l.ctx.Done():
			err = sandbox.ErrClosed
		}
		if err != nil && l.ctx.Err() != nil {
			err = sandbox.ErrClosed // stopped, not failed
		}
		if err != nil && !errors.Is(err, sandbox.ErrClosed) {
			l.failed(f, err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.loading = nil
		close(done)
		if f.closed {
			if c != nil {
				c.Close(context.Background())
			}
			return
		}
		f.compiled, f.loadErr = c, err
	}()
	return true
}

// instance returns f's compiled form. While it is being loaded, the caller
// waits, at most until ctx ends; that does not stop the load. A load that
// failed for a passing reason (not an invalid module) is tried again by the
// next caller.
func (s *Server) instance(ctx context.Context, f *function) (*sandbox.Function, error) {
	f.mu.Lock()
	if f.compiled == nil && f.loading == nil && !f.closed && (f.loadErr == nil || !errors.Is(f.loadErr, sandbox.ErrModule)) {
		if !s.loader.start(f) {
			f.mu.Unlock()
			return nil, sandbox.ErrClosed
		}
	}
	for {
		switch {
		case f.closed:
			f.mu.Unlock()
			return nil, sandbox.ErrClosed
		case f.compiled != nil:
			c := f.compiled
			f.mu.Unlock()
			return c, nil
		case f.loading == nil:
			err := f.loadErr
			f.mu.Unlock()
			if err == nil || errors.Is(err, sandbox.ErrClosed) {
				return nil, sandbox.ErrClosed // the runtime is shutting down
			}
			return nil, &loadError{err}
		}
		done := f.loading
		f.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		f.mu.Lock()
	}
}

// loadAll starts loading every function that is not loaded yet.
func (s *Server) loadAll() {
	for _, f := range s.fns.all() {
		f.mu.Lock()
		s.loader.start(f)
		f.mu.Unlock()
	}
}

// logLoadFailure logs why a function could not be loaded. It never logs
// what the function wrote: a reactor that failed to initialise is logged
// with how it failed only.
func (s *Server) logLoadFailure(f *function, err error) {
	var fe *sandbox.Error
	if errors.As(err, &fe) {
		err = fmt.Errorf("the module failed to initialise (%s)", fe.Kind)
	}
	s.log.Error("cannot load function", "function_id", f.rec.ID, "err", err)
}
