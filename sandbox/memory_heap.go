//go:build !(linux || darwin || freebsd)

package sandbox

// heapMemory is a linear memory on the Go heap, for systems without mmap:
// its capacity is the maximum from the start, so growth never copies.
type heapMemory struct{ buf []byte }

func newLinearMemory(max uint64) *heapMemory { return &heapMemory{buf: make([]byte, 0, max)} }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(cap(m.buf)) {
		return nil
	}
	return m.buf[:size:size]
}

func (m *heapMemory) Free() { m.buf = nil }
