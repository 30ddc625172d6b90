package enclave

import (
	"sync"
	"time"
)

// seqBlock is how many sequence numbers are reserved durably at a time.
const seqBlock = 4096

// seqStore persists the sequence ceiling.
type seqStore interface {
	SeqCeiling() (uint64, error)
	RaiseSeqCeiling(uint64) error
}

// sequencer hands out receipt sequence numbers that only grow and are never
// reused, even across crashes: before it hands out a number it has made
// sure that a ceiling above it is on disk, and after a restart it starts at
// the stored ceiling. A crash wastes at most one block of numbers.
type sequencer struct {
	mu      sync.Mutex
	store   seqStore
	next    uint64 // next number to hand out
	ceiling uint64 // numbers below this are durably reserved
	last    time.Time
}

func newSequencer(st seqStore) (*sequencer, error) {
	c, err := st.SeqCeiling()
	if err != nil {
		return nil, err
	}
	// Sequence numbers start at 1; after a restart, skip everything that
	// may have been handed out before.
	return &sequencer{store: st, next: c + 1, ceiling: c + 1}, nil
}

// Next returns the next sequence number and the time now, read under the
// same lock, so receipts' times never go backwards as their seqs grow.
func (s *sequencer) Next(now func() time.Time) (uint64, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	if t.Before(s.last) {
		t = s.last
	}
	s.last = t
	if s.next >= s.ceiling {
		c := s.next + seqBlock
		if err := s.store.RaiseSeqCeiling(c - 1); err != nil {
			return 0, time.Time{}, err
		}
		s.ceiling = c
	}
	n := s.next
	s.next++
	return n, t, nil
}
