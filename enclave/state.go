package enclave

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/enclave/internal/replica"
	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/sandbox"
)

// Limits on what one invocation may write, and on a function's volatile
// state.
const (
	maxWriteSet      = 16 << 20
	maxVolatileState = 64 << 20
)

// volatileState is the in-memory state of all functions. It is lost when
// the runtime restarts.
type volatileState struct {
	mu   sync.Mutex
	fns  map[string]map[string][]byte
	size map[string]int
	// epoch counts clears: writes of an invocation that began before a
	// clear are not applied after it.
	epoch uint64
}

func (v *volatileState) currentEpoch() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.epoch
}

func (v *volatileState) get(fid, key string) ([]byte, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	val, ok := v.fns[fid][key]
	return val, ok
}

// sizeAfter returns what fid's volatile state would weigh with writes and
// deletes applied, without applying them.
func (v *volatileState) sizeAfter(fid string, writes map[string][]byte, deletes map[string]bool) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.fns[fid]
	size := v.size[fid]
	for k := range deletes {
		if old, ok := m[k]; ok {
			size -= len(k) + len(old)
		}
	}
	for k, val := range writes {
		if old, ok := m[k]; ok {
			size -= len(k) + len(old)
		}
		size += len(k) + len(val)
	}
	return size
}

// apply makes writes and deletes part of fid's volatile state, unless the
// state was cleared since epoch (then it reports false). The caller has
// checked the size limit with sizeAfter (the function's invocations run
// one at a time, so nothing else changed its state since).
func (v *volatileState) apply(fid string, writes map[string][]byte, deletes map[string]bool, epoch uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.epoch != epoch {
		return false
	}
	if v.fns == nil {
		v.fns, v.size = map[string]map[string][]byte{}, map[string]int{}
	}
	m := v.fns[fid]
	if m == nil {
		m = map[string][]byte{}
		v.fns[fid] = m
	}
	size := v.size[fid]
	for k := range deletes {
		if old, ok := m[k]; ok {
			size -= len(k) + len(old)
			delete(m, k)
		}
	}
	for k, val := range writes {
		if old, ok := m[k]; ok {
			size -= len(k) + len(old)
		}
		size += len(k) + len(val)
		m[k] = val
	}
	v.size[fid] = size
	return true
}

func (v *volatileState) drop(fid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.fns, fid)
	delete(v.size, fid)
}

// stateTxn is one invocation's view of its function's state: reads see the
// invocation's own writes, then committed state; nothing is written until
// commit.
type stateTxn struct {
	s        *Server
	fid      string
	durable  map[string][]byte // nil value: deleted
	volatile map[string][]byte
	vdel     map[string]bool
	counters map[string]int64
	size     int
	epoch    uint64 // the volatile state's epoch when the invocation began
	term     uint64 // the raft term the replica served in then (0: single runtime)
}

func (s *Server) newTxn(fid string, term uint64) *stateTxn {
	return &stateTxn{s: s, fid: fid, durable: map[string][]byte{}, volatile: map[string][]byte{}, vdel: map[string]bool{}, counters: map[string]int64{}, epoch: s.volatile.currentEpoch(), term: term}
}

func (t *stateTxn) Get(ns sandbox.Namespace, key []byte) ([]byte, bool, error) {
	k := string(key)
	if ns == sandbox.Volatile {
		if v, ok := t.volatile[k]; ok {
			return v, true, nil
		}
		if t.vdel[k] {
			return nil, false, nil
		}
		v, ok := t.s.volatile.get(t.fid, k)
		return v, ok, nil
	}
	if v, ok := t.durable[k]; ok {
		return v, v != nil, nil
	}
	return t.s.backend.StateGet(t.fid, key)
}

func (t *stateTxn) grow(n int) error {
	t.size += n
	if t.size > maxWriteSet {
		return fmt.Errorf("one invocation may write at most %d bytes of state", maxWriteSet)
	}
	return nil
}

func (t *stateTxn) Put(ns sandbox.Namespace, key, value []byte) error {
	if err := t.grow(len(key) + len(value)); err != nil {
		return err
	}
	k := string(key)
	if value == nil {
		value = []byte{}
	}
	if ns == sandbox.Volatile {
		delete(t.vdel, k)
		t.volatile[k] = value
		return nil
	}
	t.durable[k] = value
	return nil
}

func (t *stateTxn) Delete(ns sandbox.Namespace, key []byte) error {
	if err := t.grow(len(key)); err != nil {
		return err
	}
	k := string(key)
	if ns == sandbox.Volatile {
		delete(t.volatile, k)
		t.vdel[k] = true
		return nil
	}
	t.durable[k] = nil
	return nil
}

func (t *stateTxn) CounterNext(name []byte) (int64, error) {
	k := string(name)
	v, ok := t.counters[k]
	if !ok {
		var err error
		if v, err = t.s.backend.Counter(t.fid, name); err != nil {
			return 0, err
		}
	}
	v++
	t.counters[k] = v
	return v, nil
}

// commit makes the invocation's writes durable (one fsynced transaction,
// or one raft log entry, only if it wrote durable state or counters),
// applies its volatile writes, and takes the receipt's sequence number.
// Every limit is checked before anything is written, so a commit that
// fails changes nothing, durable or volatile. A replica puts a new
// sequence ceiling, when its block is used up, into the same log entry.
func (t *stateTxn) commit(ctx context.Context) (uint64, time.Time, error) {
	vol := len(t.volatile) > 0 || len(t.vdel) > 0
	if vol {
		if size := t.s.volatile.sizeAfter(t.fid, t.volatile, t.vdel); size > maxVolatileState {
			// The function's failure, like going over any other state
			// limit (docs/FORMATS.md): the caller gets a host_error.
			return 0, time.Time{}, &sandbox.Error{Kind: sandbox.KindHost, Message: fmt.Sprintf("volatile state: the invocation's writes would make function %s's volatile state %d bytes, more than its limit of %d; nothing was written", t.fid, size, maxVolatileState)}
		}
	}
	writes := make([]store.StateWrite, 0, len(t.durable))
	for k, v := range t.durable {
		writes = append(writes, store.StateWrite{Key: []byte(k), Value: v})
	}
	var seq uint64
	var at time.Time
	if t.s.rep == nil {
		if err := t.s.backend.CommitState(ctx, t.fid, writes, t.counters, 0, t.term); err != nil {
			return 0, time.Time{}, fmt.Errorf("committing function state: %w", err)
		}
		var err error
		if seq, at, err = t.s.seq.Next(ctx, t.s.now, nil); err != nil {
			return 0, time.Time{}, fmt.Errorf("receipt sequence: %w", err)
		}
	} else {
		committed := false
		var err error
		seq, at, err = t.s.seq.Next(ctx, t.s.now, func(ctx context.Context, c uint64) error {
			committed = true
			return t.s.backend.CommitState(ctx, t.fid, writes, t.counters, c, t.term)
		})
		if err == nil && !committed && (len(writes) > 0 || len(t.counters) > 0) {
			err = t.s.backend.CommitState(ctx, t.fid, writes, t.counters, 0, t.term)
		}
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("committing function state: %w", err)
		}
	}
	if vol && !t.s.volatile.apply(t.fid, t.volatile, t.vdel, t.epoch) {
		// This replica lost and regained leadership meanwhile.
		return 0, time.Time{}, fmt.Errorf("volatile state was reset by a leader change: %w", replica.ErrNotLeader)
	}
	return seq, at, nil
}

// clear forgets every function's volatile state: a replica that gains
// leadership starts as a restarted runtime would.
func (v *volatileState) clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fns, v.size = nil, nil
	v.epoch++
}
