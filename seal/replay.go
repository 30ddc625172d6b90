package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"time"
)

const (
	// DefaultReplayWindow is how far issued_at may be from the runtime's
	// clock, either way, by default.
	DefaultReplayWindow = 5 * time.Minute
	// DefaultReplayCapacity is how many inputs a ReplayCache remembers at
	// most by default: about 60 MB of memory when full.
	DefaultReplayCapacity = 1_000_000
)

// ReplayCache remembers the inputs [PrivateKey.OpenInput] accepted, to
// refuse replays, and defines the freshness window. It is safe for
// concurrent use; checking and recording an input costs one map lookup and
// O(log n) to keep entries ordered by issued_at.
//
// An entry is kept until its issued_at leaves the window, after which a
// replay would be refused as stale anyway. Memory is bounded: when the cache
// holds its capacity of entries, recording a new input evicts the entry with
// the oldest issued_at. Replays stay impossible because the cache also keeps
// a floor, the newest issued_at it ever dropped, and refuses with [ErrStale]
// every input issued at or before it. So a flood of inputs (anyone can seal
// one to the runtime's public key) can make the cache refuse inputs issued
// before the flood, which the client can re-seal, but never make it accept a
// replay. The floor also keeps the cache sound if the clock steps backwards.
//
// A cache also names the runtime boot it belongs to: its [ReplayCache.BootID]
// is random, from crypto/rand, and every input must be sealed for it. The
// cache lives in memory, so a restarted runtime has a new, empty cache with a
// new boot ID, and refuses every input sealed before the restart with
// [ErrStaleBoot] instead of accepting it again: no input is ever accepted
// twice, and there is no dead window after a restart.
//
// The zero value is an empty cache with the defaults (and a random boot ID,
// drawn on first use). A ReplayCache must not be copied after first use.
type ReplayCache struct {
	window   int64 // milliseconds; 0 means the default
	capacity int   // 0 means the default

	mu     sync.Mutex
	bootID []byte // BootIDSize random bytes, set once
	seen   map[replayKey]struct{}
	heap   []replayEntry // min-heap on issuedAt
	floor  int64         // refuse issued_at <= floor
}

// maxDropsPerAdmit bounds how many expired entries one admit forgets. It is
// more than one, so expired entries leave faster than new ones arrive.
const maxDropsPerAdmit = 64

// replayKey is the first 16 bytes of SHA-256(enc).
type replayKey [16]byte

type replayEntry struct {
	issuedAt int64 // Unix milliseconds
	key      replayKey
}

// NewReplayCache returns an empty cache that accepts an issued_at up to
// window before or after the clock and remembers up to capacity inputs. A
// window or capacity of zero or less means the default
// ([DefaultReplayWindow], [DefaultReplayCapacity]).
func NewReplayCache(window time.Duration, capacity int) *ReplayCache {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	return &ReplayCache{
		window:   max(window.Milliseconds(), 1),
		capacity: capacity,
		bootID:   newBootID(),
	}
}

func newBootID() []byte {
	b := make([]byte, BootIDSize)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return b
}

// BootID returns the cache's boot ID (a copy): BootIDSize random bytes that
// a runtime publishes in its identity and every input must be sealed for
// ([InputOptions.BootID]).
func (c *ReplayCache) BootID() []byte { return bytes.Clone(c.boot()) }

// boot returns the boot ID itself, which is never modified once set.
func (c *ReplayCache) boot() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bootID == nil {
		c.bootID = newBootID()
	}
	return c.bootID
}

// RefuseBefore makes the cache refuse, as stale, every input issued before
// t. The boot ID already keeps inputs of an earlier boot out, so a runtime
// does not need it; it remains for callers that want a floor of their own.
func (c *ReplayCache) RefuseBefore(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[replayKey]struct{})
		c.floor = math.MinInt64
	}
	c.floor = max(c.floor, t.UnixMilli()-1)
}

// Window returns how far issued_at may be from the clock, either way.
func (c *ReplayCache) Window() time.Duration {
	return time.Duration(c.windowMillis()) * time.Millisecond
}

func (c *ReplayCache) windowMillis() int64 {
	if c.window <= 0 {
		return DefaultReplayWindow.Milliseconds()
	}
	return c.window
}

func (c *ReplayCache) maxEntries() int {
	if c.capacity <= 0 {
		return DefaultReplayCapacity
	}
	return c.capacity
}

// Len returns how many inputs the cache remembers, including expired ones it
// has not got round to forgetting yet.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.heap)
}

// admit checks that an input with encapsulated key enc, issued at issuedAt,
// is fresh at now and new, and records it. Times are Unix milliseconds.
func (c *ReplayCache) admit(enc []byte, issuedAt, now int64) error {
	window, capacity := c.windowMillis(), c.maxEntries()
	// Differences are taken as uint64 so that no time, however absurd,
	// overflows.
	if issuedAt < now && uint64(now)-uint64(issuedAt) > uint64(window) {
		return fmt.Errorf("%w: it was issued at %s, more than %v before the runtime's clock (%s)",
			ErrStale, fmtMillis(issuedAt), c.Window(), fmtMillis(now))
	}
	if issuedAt > now && uint64(issuedAt)-uint64(now) > uint64(window) {
		return fmt.Errorf("%w: it was issued at %s, more than %v after the runtime's clock (%s); check the client's clock",
			ErrStale, fmtMillis(issuedAt), c.Window(), fmtMillis(now))
	}
	oldest := now - window // the oldest issued_at still in the window
	if oldest > now {
		oldest = math.MinInt64
	}
	sum := sha256.Sum256(enc)
	key := replayKey(sum[:16])

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[replayKey]struct{})
		c.floor = math.MinInt64
	}
	// Forget entries that left the window, a bounded number at a time so
	// that no call holds the lock for long (say after an idle hour).
	// Expired entries are never needed: the window check above refuses
	// their replays.
	for i := 0; i < maxDropsPerAdmit && len(c.heap) > 0 && c.heap[0].issuedAt < oldest; i++ {
		c.drop()
	}
	if _, ok := c.seen[key]; ok {
		return fmt.Errorf("%w: an input with the same encapsulated key was accepted before", ErrReplay)
	}
	if len(c.heap) >= capacity && issuedAt <= c.heap[0].issuedAt {
		// Full, and older than everything remembered: evicting an entry
		// would raise the floor above this input anyway.
		return fmt.Errorf("%w: the replay cache is full (%d inputs) and the input is older than all of them; seal it again",
			ErrStale, capacity)
	}
	if issuedAt <= c.floor {
		return fmt.Errorf("%w: the replay cache has forgotten inputs issued up to %s (it was full, or the clock went back); seal it again",
			ErrStale, fmtMillis(c.floor))
	}
	if len(c.heap) >= capacity {
		c.drop()
	}
	c.seen[key] = struct{}{}
	c.push(replayEntry{issuedAt: issuedAt, key: key})
	return nil
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// drop removes the entry with the oldest issued_at and raises the floor to
// it. c.mu must be held and the heap non-empty.
func (c *ReplayCache) drop() {
	e := c.heap[0]
	delete(c.seen, e.key)
	c.floor = max(c.floor, e.issuedAt)
	last := len(c.heap) - 1
	c.heap[0] = c.heap[last]
	c.heap = c.heap[:last]
	// Sift down.
	i := 0
	for {
		l := 2*i + 1
		if l >= len(c.heap) {
			break
		}
		m := l
		if r := l + 1; r < len(c.heap) && c.heap[r].issuedAt < c.heap[l].issuedAt {
			m = r
		}
		if c.heap[i].issuedAt <= c.heap[m].issuedAt {
			break
		}
		c.heap[i], c.heap[m] = c.heap[m], c.heap[i]
		i = m
	}
}

// push adds an entry. c.mu must be held.
func (c *ReplayCache) push(e replayEntry) {
	if len(c.heap) == cap(c.heap) {
		// Grow by doubling, but never past the capacity.
		grown := make([]replayEntry, len(c.heap), min(max(2*cap(c.heap), 64), c.maxEntries()))
		copy(grown, c.heap)
		c.heap = grown
	}
	c.heap = append(c.heap, e)
	i := len(c.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if c.heap[p].issuedAt <= c.heap[i].issuedAt {
			break
		}
		c.heap[i], c.heap[p] = c.heap[p], c.heap[i]
		i = p
	}
}
