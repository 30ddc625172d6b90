package enclave

import (
	"context"
	"sync"

	"vouch/bundle"
	"vouch/internal/store"
	"vouch/receipt"
	"vouch/sandbox"
)

// function is a deployed function as the server holds it in memory.
type function struct {
	rec       *store.Function
	manifest  bundle.Manifest
	limits    bundle.Limits
	statement receipt.Statement

	mu       sync.Mutex
	compiled *sandbox.Function // nil until first use after a restart
	closed   bool

	// stateMu serialises the invocations of a stateful function, from the
	// start of the invocation to the commit of its writes.
	stateMu sync.Mutex
}

// registry maps function IDs to functions. Modules are compiled when
// deployed, or on first use after a restart (the on-disk compilation cache
// makes that cheap).
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

// instance returns the compiled function, compiling it with load if needed.
func (f *function) instance(load func() (*sandbox.Function, error)) (*sandbox.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, sandbox.ErrClosed
	}
	if f.compiled == nil {
		c, err := load()
		if err != nil {
			return nil, err
		}
		f.compiled = c
	}
	return f.compiled, nil
}

func (f *function) close(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.compiled != nil {
		f.compiled.Close(ctx)
	}
}
