package sandbox

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// instanceMemory allocates the linear memories of one instantiation. The
// host keeps it so that a failed instantiation, which wazero does not close,
// still gives its memory back.
type instanceMemory struct {
	mu   sync.Mutex
	mems []experimental.LinearMemory
}

// Allocate implements experimental.MemoryAllocator.
func (a *instanceMemory) Allocate(cap, max uint64) experimental.LinearMemory {
	m := newLinearMemory(max)
	a.mu.Lock()
	a.mems = append(a.mems, m)
	a.mu.Unlock()
	return m
}

// free releases every memory allocated so far. Only for an instance that
// never ran: wazero frees the memories of instances it closes.
func (a *instanceMemory) free() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.mems {
		m.Free()
	}
	a.mems = nil
}
