package main

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/guest"
)

// rollback restores a copy of the durable state and restarts the runtime,
// as a host that puts back an older data directory does.
func (h *harness) rollback(saved map[string][]byte) {
	h.env.kv[guest.Durable] = maps.Clone(saved)
	h.env.restart()
	h.tick(10 * time.Second)
}

// A floor certificate above the stored term is adopted fenced: no leader
// is certified (nor renewed) for it, and once every lease that may still
// run is over the next term is above the floor's.
func TestFloorAboveStoredTerm(t *testing.T) {
	h, c1 := electC(t, 0)
	saved := maps.Clone(h.env.kv[guest.Durable])
	// c dies; after its lease b leads term 2.
	for range 12 {
		h.tick(100 * time.Millisecond)
		h.must("a", "a", "b")
		h.must("b", "a", "b")
	}
	c2 := h.must("b", "a", "b")
	if c2.Term != 2 || c2.Leader != "b" {
		t.Fatalf("term 2: %+v", c2)
	}
	floor, _ := json.Marshal(c2)
	h.rollback(saved)
	// The rolled-back runtime knows only term 1.
	if got := h.must("a", "a", "b", "c"); got.Term != c1.Term {
		t.Fatalf("after the rollback: %+v", got)
	}
	h.env.kv[guest.Durable][floorKey] = floor
	for _, n := range []string{"a", "b", "c"} {
		if got := h.must(n, "a", "b", "c"); got.Term != 0 || got.Leader != "" {
			t.Fatalf("%s during the fence: %+v", n, got)
		}
	}
	var rec termRecord
	json.Unmarshal(h.env.kv[guest.Durable]["term/demo"], &rec)
	if !rec.Fenced || string(rec.Output) != string(floor) {
		t.Fatalf("stored term record: %+v", rec)
	}
	// The floor's lease (1 s) runs out; the next term is 3.
	h.tick(1100 * time.Millisecond)
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	c3 := h.must("c", "a", "b", "c")
	if c3.Term != 3 || c3.Leader != "c" {
		t.Fatalf("after the fence: %+v", c3)
	}
	// c's submission renewed its lease under term 3: not fenced.
	if r := h.must("c", "a", "b", "c"); r.Term != 3 {
		t.Fatalf("renewal: %+v", r)
	}
	// The old floor is a no-op now.
	if got := h.must("a", "a", "b", "c"); got.Term != 3 {
		t.Fatalf("old floor: %+v", got)
	}
}

// Another certificate for the stored term (the rolled-back runtime
// certified the term again, with other bytes) is adopted and fenced too.
func TestFloorSameTermOtherBytes(t *testing.T) {
	h, c1 := electC(t, 0)
	other := *c1
	other.IssuedAtMs--
	floor, _ := json.Marshal(&other)
	h.env.kv[guest.Durable][floorKey] = floor
	if got := h.must("a", "a", "b", "c"); got.Term != 0 {
		t.Fatalf("during the fence: %+v", got)
	}
	if _, err := h.submit("c", "a", "b", "c"); err != nil {
		t.Fatalf("the fenced leader's submission must not be refused (its view counts): %v", err)
	}
	h.tick(1100 * time.Millisecond)
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	if got := h.must("c", "a", "b", "c"); got.Term != 2 {
		t.Fatalf("after the fence: %+v", got)
	}
}

// A floor at or below the stored term, for another cluster, or not a term
// certificate changes nothing.
func TestFloorIgnored(t *testing.T) {
	h, c1 := electC(t, 0)
	same, _ := json.Marshal(c1)
	otherCluster := *c1
	otherCluster.Cluster = "other"
	oc, _ := json.Marshal(&otherCluster)
	for _, floor := range [][]byte{same, oc, []byte(`{"term":9}`), []byte("garbage")} {
		h.env.kv[guest.Durable][floorKey] = floor
		if got := h.must("a", "a", "b", "c"); got.Term != 1 || got.Leader != "c" {
			t.Fatalf("floor %s: %+v", floor, got)
		}
	}
}
