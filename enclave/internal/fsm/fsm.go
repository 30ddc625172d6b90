package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/store"
)

// EventType says what an Event reports.
type EventType int

// Events.
const (
	// Deployed: Event.Function was deployed.
	Deployed EventType = iota + 1
	// Deleted: the function Event.FunctionID was deleted.
	Deleted
	// Revoked: a token was revoked.
	Revoked
	// Restored: the whole state was replaced from a snapshot.
	Restored
)

// Event is what the Observer learns after a change.
type Event struct {
	Type       EventType
	FunctionID string
	// Function is the record, for Deployed.
	Function *store.Function
}

// Observer is called after deploys, deletes, revocations and restores (see
// the package doc for its rules).
type Observer func(Event)

// function is one deployed function. rec and bundle never change once
// stored; state and counters change only under FSM.mu.
type function struct {
	rec      store.Function
	bundle   []byte
	state    map[string][]byte
	counters map[string]int64
}

// state is everything the FSM holds.
type state struct {
	functions   map[string]*function
	revocations map[string]int64
	seqCeiling  uint64
	replicas    map[string]Replica
}

func newState() *state {
	return &state{functions: map[string]*function{}, revocations: map[string]int64{}, replicas: map[string]Replica{}}
}

// ErrStaleTerm refuses a commit whose invocation began under another raft
// term than the one its entry was appended in.
var ErrStaleTerm = errors.New("fsm: commit from an earlier leadership")

// FSM is the replicated state machine. Its reads are safe for concurrent
// use with Apply.
type FSM struct {
	observer Observer

	mu sync.RWMutex
	st *state
}

// New returns an empty FSM; observer may be nil.
func New(observer Observer) *FSM {
	return &FSM{observer: observer, st: newState()}
}

var _ raft.FSM = (*FSM)(nil)

// Apply applies one committed log entry (raft.FSM). See the package doc for
// what it returns.
func (f *FSM) Apply(l *raft.Log) any {
	c, err := DecodeCommand(l.Data)
	if err != nil {
		return err
	}
	if c.Type == TypeCommit && c.Commit != nil && c.Commit.LeaderTerm != 0 && c.Commit.LeaderTerm != l.Term {
		return fmt.Errorf("%w: the invocation began in raft term %d but its commit was appended in term %d", ErrStaleTerm, c.Commit.LeaderTerm, l.Term)
	}
	res, ev, err := f.apply(c)
	if err != nil {
		return err
	}
	if ev != nil && f.observer != nil {
		f.observer(*ev)
	}
	return res
}

// ApplyCommand is Apply for a decoded command, for tests and tools.
func (f *FSM) ApplyCommand(c *Command) any {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	return f.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
}

func (f *FSM) apply(c *Command) (any, *Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	switch c.Type {
	case TypeDeploy:
		d := c.Deploy
		if err := checkFunction(&d.Function, d.Bundle); err != nil {
			return nil, nil, err
		}
		if _, ok := st.functions[d.Function.ID]; ok {
			return nil, nil, fmt.Errorf("fsm: function %s already exists", d.Function.ID)
		}
		rec := d.Function
		st.functions[rec.ID] = &function{rec: rec, bundle: d.Bundle, state: map[string][]byte{}, counters: map[string]int64{}}
		return nil, &Event{Type: Deployed, FunctionID: rec.ID, Function: &rec}, nil
	case TypeDelete:
		id := c.Delete.FunctionID
		if _, ok := st.functions[id]; !ok {
			return nil, nil, fmt.Errorf("fsm: delete function %q: %w", id, store.ErrNotFound)
		}
		delete(st.functions, id)
		return nil, &Event{Type: Deleted, FunctionID: id}, nil
	case TypeRevoke:
		if c.Revoke.JTI == "" {
			return nil, nil, errors.New("fsm: revoke: empty token ID")
		}
		st.revocations[c.Revoke.JTI] = c.Revoke.Expires
		return nil, &Event{Type: Revoked}, nil
	case TypePrune:
		n := 0
		for jti, exp := range st.revocations {
			if exp < c.Prune.Now {
				delete(st.revocations, jti)
				n++
			}
		}
		return n, nil, nil
	case TypeCommit:
		return nil, nil, st.commit(c.Commit)
	case TypeSeq:
		st.seqCeiling = max(st.seqCeiling, c.Seq.Ceiling)
		return nil, nil, nil
	case TypeReplica:
		r := *c.Replica
		if err := checkReplica(&r); err != nil {
			return nil, nil, err
		}
		st.replicas[r.ID] = r
		return nil, nil, nil
	case TypeReplicaRemoved:
		delete(st.replicas, c.ReplicaRemoved.ID)
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("%w command: unknown type %q", ErrMalformed, c.Type)
}

// commit checks every write and counter before it changes anything.
func (st *state) commit(c *Commit) error {
	fn, ok := st.functions[c.FunctionID]
	if !ok {
		return fmt.Errorf("fsm: commit for function %q: %w", c.FunctionID, store.ErrNotFound)
	}
	keys := make(map[string]bool, len(c.Writes))
	for _, w := range c.Writes {
		if len(w.Key) == 0 {
			return fmt.Errorf("fsm: commit for function %s: empty state key", c.FunctionID)
		}
		if keys[string(w.Key)] {
			return fmt.Errorf("fsm: commit for function %s: state key %q written twice", c.FunctionID, w.Key)
		}
		keys[string(w.Key)] = true
	}
	names := make(map[string]bool, len(c.Counters))
	for _, cv := range c.Counters {
		n := string(cv.Name)
		if len(n) == 0 || names[n] {
			return fmt.Errorf("fsm: commit for function %s: counter name %q empty or given twice", c.FunctionID, cv.Name)
		}
		names[n] = true
		if old := fn.counters[n]; cv.Value <= old {
			return fmt.Errorf("fsm: counter %q of function %s would go from %d to %d", cv.Name, c.FunctionID, old, cv.Value)
		}
	}
	for _, w := range c.Writes {
		if w.Value == nil {
			delete(fn.state, string(w.Key))
		} else {
			fn.state[string(w.Key)] = bytes.Clone(w.Value)
		}
	}
	for _, cv := range c.Counters {
		fn.counters[string(cv.Name)] = cv.Value
	}
	st.seqCeiling = max(st.seqCeiling, c.SeqCeiling)
	return nil
}

func checkFunction(rec *store.Function, enc []byte) error {
	if rec.ID == "" || len(rec.ID) > 64 {
		return fmt.Errorf("fsm: function ID %q must be 1-64 characters", rec.ID)
	}
	if rec.Name != "" && !bundle.ValidName(rec.Name) {
		return fmt.Errorf("fsm: function %s: invalid name %q", rec.ID, rec.Name)
	}
	if bundle.ChecksumOf(enc) != rec.Checksum || rec.Size != len(enc) {
		return fmt.Errorf("fsm: function %s: bundle does not match its checksum or size", rec.ID)
	}
	return nil
}

func checkReplica(r *Replica) error {
	if !api.ValidReplicaID(r.ID) {
		return fmt.Errorf("fsm: replica ID %q must be 1-64 characters of a-z 0-9 . _ -", r.ID)
	}
	if r.APIURL == "" || len(r.APIURL) > 2048 || r.RaftAddr == "" || len(r.RaftAddr) > 1024 {
		return fmt.Errorf("fsm: replica %s: API URL and raft address must be set (and short)", r.ID)
	}
	return nil
}

// Functions lists every function, ordered by ID.
func (f *FSM) Functions() ([]*store.Function, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*store.Function, 0, len(f.st.functions))
	for _, id := range slices.Sorted(maps.Keys(f.st.functions)) {
		rec := f.st.functions[id].rec
		out = append(out, &rec)
	}
	return out, nil
}

// Function returns a function's record, or store.ErrNotFound.
func (f *FSM) Function(id string) (*store.Function, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn, ok := f.st.functions[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	rec := fn.rec
	return &rec, nil
}

// Bundle returns a function's canonical bundle, or store.ErrNotFound. The
// bytes are shared: do not modify them.
func (f *FSM) Bundle(id string) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn, ok := f.st.functions[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return fn.bundle, nil
}

// StateGet returns a function's durable state value for key.
func (f *FSM) StateGet(functionID string, key []byte) ([]byte, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if fn, ok := f.st.functions[functionID]; ok {
		if v, ok := fn.state[string(key)]; ok {
			return bytes.Clone(v), true, nil
		}
	}
	return nil, false, nil
}

// Counter returns a function's counter (0 if it was never incremented).
func (f *FSM) Counter(functionID string, name []byte) (int64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if fn, ok := f.st.functions[functionID]; ok {
		return fn.counters[string(name)], nil
	}
	return 0, nil
}

// SeqCeiling returns the highest receipt sequence number reserved so far.
func (f *FSM) SeqCeiling() (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.seqCeiling, nil
}

// Revoked reports whether the token with ID jti was revoked (token.Revocations).
func (f *FSM) Revoked(jti string) (bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.st.revocations[jti]
	return ok, nil
}

// Expired counts revocations that expired before now, which a prune
// command would forget.
func (f *FSM) Expired(now time.Time) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, exp := range f.st.revocations {
		if exp < now.Unix() {
			n++
		}
	}
	return n
}

// Replicas returns the replica directory, ordered by ID.
func (f *FSM) Replicas() []Replica {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Replica, 0, len(f.st.replicas))
	for _, id := range slices.Sorted(maps.Keys(f.st.replicas)) {
		out = append(out, f.st.replicas[id])
	}
	return out
}

// Replica returns one entry of the replica directory.
func (f *FSM) Replica(id string) (Replica, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.st.replicas[id]
	return r, ok
}

// Snapshot encodes the state now (raft.FSM); the bytes are written by
// Persist, which may run concurrently with later Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := f.st.encode()
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return &snapshot{b: b}, nil
}

// Encode returns the snapshot encoding of the state now.
func (f *FSM) Encode() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.encode()
}

// Restore replaces the state with a snapshot's (raft.FSM). On error the
// state is unchanged.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxSnapshot+1))
	if err != nil {
		return fmt.Errorf("fsm: reading snapshot: %w", err)
	}
	if len(b) > MaxSnapshot {
		return fmt.Errorf("%w snapshot: larger than %d bytes", ErrMalformed, MaxSnapshot)
	}
	st, err := decodeState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	if f.observer != nil {
		f.observer(Event{Type: Restored})
	}
	return nil
}

type snapshot struct{ b []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
