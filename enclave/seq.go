package enclave

import (
	"context"
	"sync"
	"time"
)

// seqBlock is how many sequence numbers are reserved durably at a time.
const seqBlock = 4096

// raiseFunc durably raises the sequence ceiling to c.
type raiseFunc func(ctx context.Context, c uint64) error

// sequencer hands out receipt sequence numbers that only grow and are never
// reused, even across crashes: before it hands out a number it has made
// sure that a ceiling above it is durable (on disk, or committed through
// the raft log), and after a restart (or on gaining leadership) it starts
// above the stored ceiling. A crash wastes at most one block of numbers.
type sequencer struct {
	mu      sync.Mutex
	raise   raiseFunc
	next    uint64 // next number to hand out
	ceiling uint64 // numbers below this are durably reserved
	last    time.Time
}

func newSequencer(ceiling uint64, raise raiseFunc) *sequencer {
	// Sequence numbers start at 1; after a restart, skip everything that
	// may have been handed out before.
	return &sequencer{raise: raise, next: ceiling + 1, ceiling: ceiling + 1}
}

// reset restarts the sequencer above ceiling, the highest number that may
// have been handed out by anyone: a replica that gains leadership calls it
// once every earlier entry is applied.
func (s *sequencer) reset(ceiling uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next, s.ceiling = ceiling+1, ceiling+1
}

// Next returns the next sequence number and the time now, read under the
// same lock, so receipts' times never go backwards as their seqs grow.
// When the block is used up it raises the ceiling with raise, or with the
// sequencer's own raise function when raise is nil.
func (s *sequencer) Next(ctx context.Context, now func() time.Time, raise raiseFunc) (uint64, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	if t.Before(s.last) {
		t = s.last
	}
	s.last = t
	if s.next >= s.ceiling {
		if raise == nil {
			raise = s.raise
		}
		c := s.next + seqBlock
		if err := raise(ctx, c-1); err != nil {
			return 0, time.Time{}, err
		}
		s.ceiling = c
	}
	n := s.next
	s.next++
	return n, t, nil
}
