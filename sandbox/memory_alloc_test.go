package sandbox

import (
	"testing"
	"unsafe"
)

// A linear memory grows in place up to its maximum, keeps what was
// written, refuses to grow past the maximum and is gone once freed.
func TestLinearMemoryGrowsInPlace(t *testing.T) {
	const page = 64 << 10
	a := &instanceMemory{}
	m := a.Allocate(page, 4*page)
	b := m.Reallocate(page)
	if len(b) != page {
		t.Fatalf("len = %d", len(b))
	}
	b[page-1] = 7
	c := m.Reallocate(3 * page)
	if len(c) != 3*page || unsafe.SliceData(c) != unsafe.SliceData(b) || c[page-1] != 7 {
		t.Fatalf("growth moved or lost the memory")
	}
	c[3*page-1] = 9 // the new pages are writable
	if m.Reallocate(5*page) != nil {
		t.Fatal("grew past the maximum")
	}
	if d := m.Reallocate(2 * page); len(d) != 2*page {
		t.Fatalf("a smaller size gave %d bytes", len(d))
	}
	a.free()
	if m.Reallocate(page) != nil {
		t.Fatal("a freed memory grew")
	}
	m.Free() // twice is harmless
	if z := a.Allocate(0, 0).Reallocate(0); z == nil || len(z) != 0 {
		t.Fatalf("a memory with maximum 0 gave %v", z)
	}
}
