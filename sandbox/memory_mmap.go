//go:build linux || darwin || freebsd

package sandbox

import (
	"sync"
	"syscall"
)

// mmapMemory is a linear memory in its own mapping. The mapping reserves
// the memory's maximum once, inaccessible; growing makes more of it
// readable and writable in place. Growth never copies, so no old copy waits
// for Go's garbage collector, and Free unmaps, so a closed instance's pages
// go back to the operating system at once. Pages count towards the
// process's resident memory only once the guest touches them.
type mmapMemory struct {
	mu   sync.Mutex
	buf  []byte // the whole reservation; nil once freed
	size uint64 // bytes accessible
}

func newLinearMemory(max uint64) *mmapMemory {
	m := &mmapMemory{}
	if max == 0 {
		return m
	}
	buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		m.buf = buf
	}
	return m
}

// Reallocate implements experimental.LinearMemory: it returns the first
// size bytes, or nil when they are more than the reservation or the
// operating system refuses them (wazero then fails the memory.grow).
func (m *mmapMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size == 0 {
		return []byte{}
	}
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil
	}
	if size > m.size {
		if err := syscall.Mprotect(m.buf[m.size:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.size = size
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory. No code may run on the
// memory any more: the caller makes sure the instance is not running.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf != nil {
		syscall.Munmap(m.buf)
		m.buf, m.size = nil, 0
	}
}
