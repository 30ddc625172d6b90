package replica

import (
	"errors"

	"github.com/hashicorp/raft"

	"github.com/vouch-dev/vouch/internal/raftstore"
)

// watchedLogs reports raftstore.ErrTampered from the log store. raft
// panics when GetLog fails while it applies entries, which would kill the
// whole process; instead a tampered GetLog records the error and never
// returns, so raft stops here and nothing corrupted is applied. Tampered
// then tells the server to stop serving.
type watchedLogs struct {
	raft.LogStore
	tamper func(error)
}

func (w watchedLogs) check(err error) error {
	if errors.Is(err, raftstore.ErrTampered) {
		w.tamper(err)
	}
	return err
}

func (w watchedLogs) FirstIndex() (uint64, error) {
	i, err := w.LogStore.FirstIndex()
	return i, w.check(err)
}

func (w watchedLogs) LastIndex() (uint64, error) {
	i, err := w.LogStore.LastIndex()
	return i, w.check(err)
}

func (w watchedLogs) GetLog(index uint64, l *raft.Log) error {
	err := w.LogStore.GetLog(index, l)
	if errors.Is(err, raftstore.ErrTampered) {
		w.tamper(err)
		select {} // see the type's comment
	}
	return err
}

// watchedStable reports raftstore.ErrTampered from the stable store.
type watchedStable struct {
	raft.StableStore
	tamper func(error)
}

func (w watchedStable) Get(key []byte) ([]byte, error) {
	v, err := w.StableStore.Get(key)
	if errors.Is(err, raftstore.ErrTampered) {
		w.tamper(err)
	}
	return v, err
}

func (w watchedStable) GetUint64(key []byte) (uint64, error) {
	v, err := w.StableStore.GetUint64(key)
	if errors.Is(err, raftstore.ErrTampered) {
		w.tamper(err)
	}
	return v, err
}

// checkLogs reads every log entry and the stable keys raft uses, so that
// Open refuses a store tampered with while the replica was stopped before
// raft can read (and panic on) it.
func checkLogs(s *raftstore.Store) error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	if first > 0 {
		var l raft.Log
		for i := first; i <= last; i++ {
			if err := s.GetLog(i, &l); err != nil && !errors.Is(err, raft.ErrLogNotFound) {
				return err
			}
		}
	}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm", "LastVoteCand"} {
		if _, err := s.Get([]byte(k)); err != nil && !errors.Is(err, raftstore.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}
