package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func encOf(i int) []byte {
	b := make([]byte, EncSize)
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

func TestReplayCacheDefaults(t *testing.T) {
	c := NewReplayCache(0, -1)
	if c.Window() != DefaultReplayWindow || c.maxEntries() != DefaultReplayCapacity {
		t.Errorf("window %v capacity %d", c.Window(), c.capacity)
	}
	c = NewReplayCache(time.Minute, 10)
	if c.Window() != time.Minute || c.capacity != 10 {
		t.Errorf("window %v capacity %d", c.Window(), c.capacity)
	}
}

func TestReplayCacheExpiry(t *testing.T) {
	c := NewReplayCache(time.Minute, 1000)
	now := t0.UnixMilli()
	w := time.Minute.Milliseconds()
	for i := range 100 {
		if err := c.admit(encOf(i), now, now); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 100 {
		t.Fatalf("Len = %d", c.Len())
	}
	// Until issued_at leaves the window, every entry is remembered.
	if err := c.admit(encOf(0), now, now+w); !errors.Is(err, ErrReplay) {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
	// Afterwards the entries are forgotten (at most maxDropsPerAdmit per
	// call), and a replay is stale.
	for i := range 3 {
		if err := c.admit(encOf(1000+i), now+w+1, now+w+1); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d after expiry, want 3", c.Len())
	}
	if err := c.admit(encOf(0), now, now+w+1); !errors.Is(err, ErrStale) {
		t.Fatalf("err = %v, want ErrStale", err)
	}
	// Even if the clock then goes back: the floor remembers what was dropped.
	if err := c.admit(encOf(0), now, now); !errors.Is(err, ErrStale) {
		t.Fatalf("clock went back: err = %v, want ErrStale", err)
	}
}

// TestReplayCacheEviction fills a small cache far past its capacity and
// checks that memory stays bounded and no evicted input can be replayed.
func TestReplayCacheEviction(t *testing.T) {
	const capacity = 100
	c := NewReplayCache(time.Hour, capacity)
	now := t0.UnixMilli()
	for i := range 10 * capacity {
		// Arrival order is not issued_at order.
		at := now + int64((i*7919)%(10*capacity))
		if err := c.admit(encOf(i), at, now); err != nil && !errors.Is(err, ErrStale) {
			t.Fatal(err)
		}
		if c.Len() > capacity || cap(c.heap) > capacity || len(c.seen) > capacity {
			t.Fatalf("after %d inputs: Len %d, heap cap %d, map %d; capacity %d", i+1, c.Len(), cap(c.heap), len(c.seen), capacity)
		}
	}
	if c.Len() != capacity {
		t.Errorf("Len = %d, want %d", c.Len(), capacity)
	}
	// No input is ever accepted twice, remembered or evicted.
	for i := range 10 * capacity {
		at := now + int64((i*7919)%(10*capacity))
		err := c.admit(encOf(i), at, now)
		if !errors.Is(err, ErrReplay) && !errors.Is(err, ErrStale) {
			t.Fatalf("input %d accepted twice (err %v)", i, err)
		}
	}
	// A new input newer than everything evicted is still accepted.
	if err := c.admit(encOf(-1), now+int64(20*capacity), now); err != nil {
		t.Fatal(err)
	}
	// An input older than the floor is refused with a message saying why.
	err := c.admit(encOf(-2), now, now)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "seal it again") {
		t.Fatalf("err = %v", err)
	}
}

func TestReplayCacheExtremeTimes(t *testing.T) {
	c := NewReplayCache(0, 10)
	for _, tt := range []struct{ at, now int64 }{
		{math.MinInt64, math.MaxInt64},
		{math.MaxInt64, math.MinInt64},
		{math.MinInt64, math.MinInt64},
		{math.MaxInt64, math.MaxInt64},
		{0, math.MinInt64 + 1},
	} {
		// Nothing may panic or overflow into accepting a time far from
		// the clock.
		err := c.admit(encOf(int(tt.at)), tt.at, tt.now)
		if err == nil && tt.at != tt.now {
			t.Errorf("admit(at %d, now %d) accepted", tt.at, tt.now)
		}
		if err != nil && !errors.Is(err, ErrStale) {
			t.Errorf("admit(at %d, now %d) = %v, want ErrStale", tt.at, tt.now, err)
		}
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(time.Minute, 500)
	now := t0.UnixMilli()
	var wg sync.WaitGroup
	accepted := make([]int, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if c.admit(encOf(i), now+int64(i), now) == nil {
					accepted[g]++
				}
				_ = c.Len()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range accepted {
		total += n
	}
	if total > 1000 {
		t.Fatalf("%d inputs accepted, at most 1000 distinct", total)
	}
	if c.Len() > 500 {
		t.Fatalf("Len = %d, capacity 500", c.Len())
	}
}

// TestReplayCacheMemory fills a cache to the default capacity and checks the
// memory estimate in the documentation of DefaultReplayCapacity.
func TestReplayCacheMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills a 1,000,000-entry cache")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewReplayCache(0, 0)
	now := t0.UnixMilli()
	enc := make([]byte, EncSize)
	for i := range DefaultReplayCapacity + 1000 {
		binary.BigEndian.PutUint64(enc, uint64(i))
		if err := c.admit(enc, now+int64(i%1000), now); err != nil && !errors.Is(err, ErrStale) {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() != DefaultReplayCapacity {
		t.Fatalf("Len = %d", c.Len())
	}
	mb := float64(after.HeapAlloc-before.HeapAlloc) / 1e6
	t.Logf("full default cache: %.1f MB", mb)
	if mb > 80 {
		t.Errorf("full default cache uses %.1f MB", mb)
	}
	runtime.KeepAlive(c)
}

func TestReplayCacheZeroValue(t *testing.T) {
	var c ReplayCache
	if c.Window() != DefaultReplayWindow || c.Len() != 0 {
		t.Fatalf("window %v len %d", c.Window(), c.Len())
	}
	k := mustKey(t)
	boot := c.BootID()
	if len(boot) != BootIDSize || !bytes.Equal(boot, c.BootID()) {
		t.Fatalf("zero value's boot ID %x is not a stable %d-byte ID", boot, BootIDSize)
	}
	sealed := sealFor(t, k.PublicKey(), boot, []byte("x"), nil, t0)
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, &c, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, &c, t0); !errors.Is(err, ErrReplay) {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
	// Inputs issued before 1970 are as good as any.
	old := time.UnixMilli(-1000)
	if err := c.admit(encOf(7), old.UnixMilli(), old.UnixMilli()); err != nil {
		t.Fatal(err)
	}
}
