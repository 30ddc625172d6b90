package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// SnapshotVersion is the version of the snapshot encoding.
const SnapshotVersion = 1

// MaxSnapshot bounds a snapshot Restore reads.
const MaxSnapshot = 4 << 30

// snapshotDoc is the snapshot encoding (package doc).
type snapshotDoc struct {
	Version     int            `json:"version"`
	Functions   []snapFunction `json:"functions"`
	Revocations []snapRevoke   `json:"revocations"`
	SeqCeiling  uint64         `json:"seq_ceiling"`
	Replicas    []Replica      `json:"replicas"`
}

type snapFunction struct {
	Function store.Function `json:"function"`
	Bundle   []byte         `json:"bundle"`
	State    []Write        `json:"state"`
	Counters []CounterValue `json:"counters"`
}

type snapRevoke struct {
	JTI     string `json:"jti"`
	Expires int64  `json:"expires"`
}

func (st *state) encode() ([]byte, error) {
	doc := snapshotDoc{Version: SnapshotVersion, SeqCeiling: st.seqCeiling,
		Functions: []snapFunction{}, Revocations: []snapRevoke{}, Replicas: []Replica{}}
	for _, id := range slices.Sorted(maps.Keys(st.functions)) {
		fn := st.functions[id]
		sf := snapFunction{Function: fn.rec, Bundle: fn.bundle, State: []Write{}, Counters: []CounterValue{}}
		for _, k := range slices.Sorted(maps.Keys(fn.state)) {
			sf.State = append(sf.State, Write{Key: []byte(k), Value: fn.state[k]})
		}
		for _, n := range slices.Sorted(maps.Keys(fn.counters)) {
			sf.Counters = append(sf.Counters, CounterValue{Name: []byte(n), Value: fn.counters[n]})
		}
		doc.Functions = append(doc.Functions, sf)
	}
	for _, jti := range slices.Sorted(maps.Keys(st.revocations)) {
		doc.Revocations = append(doc.Revocations, snapRevoke{JTI: jti, Expires: st.revocations[jti]})
	}
	for _, id := range slices.Sorted(maps.Keys(st.replicas)) {
		doc.Replicas = append(doc.Replicas, st.replicas[id])
	}
	return json.Marshal(&doc)
}

// decodeState decodes and checks a snapshot; it builds a new state and
// touches nothing else.
func decodeState(b []byte) (*state, error) {
	var doc snapshotDoc
	if err := strictjson.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w snapshot: %v", ErrMalformed, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w snapshot: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if doc.Version != SnapshotVersion {
		return nil, bad("version %d, this vouch reads version %d", doc.Version, SnapshotVersion)
	}
	st := newState()
	st.seqCeiling = doc.SeqCeiling
	prev := ""
	for i, sf := range doc.Functions {
		id := sf.Function.ID
		if i > 0 && id <= prev {
			return nil, bad("functions not sorted by ID, or %q repeated", id)
		}
		prev = id
		if err := checkFunction(&sf.Function, sf.Bundle); err != nil {
			return nil, bad("%v", err)
		}
		fn := &function{rec: sf.Function, bundle: sf.Bundle, state: map[string][]byte{}, counters: map[string]int64{}}
		for j, w := range sf.State {
			if len(w.Key) == 0 || w.Value == nil || (j > 0 && bytes.Compare(w.Key, sf.State[j-1].Key) <= 0) {
				return nil, bad("function %s: state keys must be non-empty, sorted, unique, with values", id)
			}
			fn.state[string(w.Key)] = w.Value
		}
		for j, c := range sf.Counters {
			if len(c.Name) == 0 || c.Value <= 0 || (j > 0 && bytes.Compare(c.Name, sf.Counters[j-1].Name) <= 0) {
				return nil, bad("function %s: counters must be named, positive, sorted and unique", id)
			}
			fn.counters[string(c.Name)] = c.Value
		}
		st.functions[id] = fn
	}
	for i, r := range doc.Revocations {
		if r.JTI == "" || (i > 0 && r.JTI <= doc.Revocations[i-1].JTI) {
			return nil, bad("revocations must have token IDs, sorted and unique")
		}
		st.revocations[r.JTI] = r.Expires
	}
	for i, r := range doc.Replicas {
		if err := checkReplica(&r); err != nil {
			return nil, bad("%v", err)
		}
		if i > 0 && r.ID <= doc.Replicas[i-1].ID {
			return nil, bad("replicas not sorted by ID, or %q repeated", r.ID)
		}
		st.replicas[r.ID] = r
	}
	return st, nil
}
