package main

import (
	"bytes"

	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/guest"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// floorKey is the durable key under which the runtime hands the function
// a term certificate output that a node proved the runtime signed
// (POST /v1/functions/{id}/floor, docs/FORMATS.md "Proof of rollback").
// The runtime writes it only after it verified the receipt's signature
// under its own key, so the function trusts it as its own past output.
const floorKey = "vouch/floor"

// lastFloor caches the parsed floor between calls of a warm instance:
// every submission reads the key, few find it changed.
var lastFloor struct {
	raw []byte
	o   outcome.Term
	ok  bool
}

// adoptFloor adopts the floor certificate for cluster name when it is
// above the stored term, or another certificate for the stored term: the
// runtime's state was rolled back. The term record becomes the floor's
// bytes, fenced: its leader is not renewed, the function answers "no
// leader" and starts term+1 once every lease granted so far (ls, and one
// full lease of the floor's term from now) has run out. So nothing at or
// below the floor's term is certified again. It reports whether it
// changed st.term and ls.
func adoptFloor(e env, st *durable, name string, ls *leaseState, monoMs int64) bool {
	raw, ok := e.get(guest.Durable, floorKey)
	if !ok {
		return false
	}
	if !bytes.Equal(raw, lastFloor.raw) {
		lastFloor.raw, lastFloor.o = bytes.Clone(raw), outcome.Term{}
		lastFloor.ok = strictjson.Unmarshal(raw, &lastFloor.o) == nil && lastFloor.o.Term > 0
	}
	o := lastFloor.o
	if !lastFloor.ok || o.Cluster != name {
		return false
	}
	cur := st.termNum()
	if o.Term < cur || (o.Term == cur && bytes.Equal(raw, st.term.Output)) {
		return false
	}
	until := max(ls.UntilMs, monoMs+max(o.LeaseMs, 0))
	st.term = &termRecord{Output: bytes.Clone(raw), CarryMs: until - monoMs, Fenced: true, o: o}
	*ls = leaseState{Term: o.Term, SinceMs: monoMs, UntilMs: until}
	return true
}
