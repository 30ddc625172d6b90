package election

import (
	"encoding/json"
	"testing"
)

// termRuntime signs term certificates as the election function's runtime
// does, with a test key.
type termRuntime struct{ *fakeRuntime }

func newTermRuntime() termRuntime {
	f := newFakeRuntime(7)
	f.fid = "electionfn"
	return termRuntime{f}
}

const digestV1 = "1111111111111111111111111111111111111111111111111111111111111111"

func (r termRuntime) trust() Trust {
	t := r.fakeRuntime.trust("demo")
	t.ConfigDigest = digestV1
	return t
}

// cert returns a certificate for o, with a new receipt (a later seq and
// time) every call.
func (r termRuntime) cert(o TermOutcome) *Certificate {
	out, _ := json.Marshal(o)
	return r.sign(out, []byte(`{"view":"..."}`))
}

func termOutcome(term uint64, leader string) TermOutcome {
	return TermOutcome{Cluster: "demo", ConfigDigest: digestV1, Term: term, Leader: leader, MembersDigest: "ab", IssuedAtMs: int64(term) * 1000, LeaseMs: 1000, Policy: "fair", Mode: "closed"}
}

func wantReason(t *testing.T, a TermActions, r Reason) {
	t.Helper()
	if a.Rejected == nil || a.Rejected.Reason != r {
		t.Fatalf("want rejection %s, got %+v", r, a.Rejected)
	}
	if a.Accepted != nil || a.Renewed != nil || a.LeaderChanged != nil {
		t.Fatalf("a rejected certificate still acted: %+v", a)
	}
}

func TestTermAcceptsHigherTermsOnly(t *testing.T) {
	rt := newTermRuntime()
	c := NewTermCore("b", rt.trust(), 0)
	t1 := rt.cert(termOutcome(1, "a"))
	a := c.Receive(t1)
	if a.Accepted != t1 || a.LeaderChanged == nil || a.LeaderChanged.Leader != "a" || a.LeaderChanged.Self {
		t.Fatalf("first term: %+v", a)
	}
	t3 := rt.cert(termOutcome(3, "b"))
	if a := c.Receive(t3); a.Accepted != t3 || a.LeaderChanged == nil || !a.LeaderChanged.Self || a.LeaderChanged.Previous != "a" {
		t.Fatalf("a higher term: %+v", a)
	}
	// An older term, even a genuine certificate with a later receipt, is
	// stale: the term is the fencing token.
	wantReason(t, c.Receive(rt.cert(termOutcome(2, "a"))), ReasonStale)
	wantReason(t, c.Receive(t1), ReasonStale)
	if l, term := c.Leader(); l != "b" || term != 3 || c.Accepted() != 2 {
		t.Fatalf("holds %s %d after %d accepted", l, term, c.Accepted())
	}
	if n := c.Rejections()[ReasonStale]; n != 2 {
		t.Fatalf("stale count %d", n)
	}
}

// minTerm, the highest term accepted before a restart, refuses older
// terms even before any is held.
func TestTermBelowRestartFloor(t *testing.T) {
	rt := newTermRuntime()
	c := NewTermCore("a", rt.trust(), 5)
	wantReason(t, c.Receive(rt.cert(termOutcome(4, "b"))), ReasonStale)
	if a := c.Receive(rt.cert(termOutcome(5, "b"))); a.Accepted == nil {
		t.Fatalf("the floor itself: %+v", a)
	}
}

// Two different outputs for one term are equivocation, whatever their
// receipts; the first one is kept.
func TestTermEquivocation(t *testing.T) {
	rt := newTermRuntime()
	c := NewTermCore("a", rt.trust(), 0)
	first := rt.cert(termOutcome(2, "a"))
	c.Receive(first)
	other := termOutcome(2, "b")
	wantReason(t, c.Receive(rt.cert(other)), ReasonEquivocation)
	sameLeader := termOutcome(2, "a")
	sameLeader.LeaseMs = 5000 // the same term re-issued under another lease
	wantReason(t, c.Receive(rt.cert(sameLeader)), ReasonEquivocation)
	if held, _ := c.Held(); held != first {
		t.Fatal("equivocation replaced the held certificate")
	}
}

// A later receipt of the same output renews the term (the leader's lease);
// an earlier one, or the held one again, does nothing.
func TestTermRenewal(t *testing.T) {
	rt := newTermRuntime()
	c := NewTermCore("a", rt.trust(), 0)
	early := rt.cert(termOutcome(1, "a"))
	held := rt.cert(termOutcome(1, "a"))
	c.Receive(held)
	if a := c.Receive(held); a.Accepted != nil || a.Renewed != nil || a.Rejected != nil {
		t.Fatalf("the held certificate again: %+v", a)
	}
	if a := c.Receive(early); a.Accepted != nil || a.Renewed != nil || a.Rejected != nil {
		t.Fatalf("an earlier receipt of the held term: %+v", a)
	}
	later := rt.cert(termOutcome(1, "a"))
	a := c.Receive(later)
	if a.Renewed != later || a.Accepted != nil || a.LeaderChanged != nil || a.Outcome == nil || a.Outcome.Term != 1 {
		t.Fatalf("a later receipt: %+v", a)
	}
	if h, _ := c.Held(); h != later || c.Accepted() != 1 {
		t.Fatal("the renewal is not the held certificate")
	}
}

// Certificates of another configuration or cluster, term 0, a bad lease
// or a receipt that does not verify are refused, and change nothing.
func TestTermRefusals(t *testing.T) {
	rt := newTermRuntime()
	c := NewTermCore("a", rt.trust(), 0)
	c.Receive(rt.cert(termOutcome(1, "a")))

	v2 := termOutcome(2, "b")
	v2.ConfigDigest = "2222222222222222222222222222222222222222222222222222222222222222"
	wantReason(t, c.Receive(rt.cert(v2)), ReasonWrongConfig)
	other := termOutcome(2, "b")
	other.Cluster = "other"
	wantReason(t, c.Receive(rt.cert(other)), ReasonWrongCluster)
	noLease := termOutcome(2, "b")
	noLease.LeaseMs = 0
	wantReason(t, c.Receive(rt.cert(noLease)), ReasonBadOutcome)
	// Term 0 is the runtime's answer before any election: no leader,
	// and not counted as a rejection.
	a := c.Receive(rt.cert(TermOutcome{Cluster: "demo", ConfigDigest: digestV1, LeaseMs: 1000}))
	wantReason(t, a, ReasonNoLeader)
	if c.Rejections()[ReasonNoLeader] != 0 {
		t.Fatal("no_leader counted as a rejection")
	}
	forged := rt.cert(termOutcome(9, "x"))
	forged.Receipt.Signature[0] ^= 1
	wantReason(t, c.Receive(forged), ReasonBadSignature)
	foreign := newTermRuntime()
	foreign.key = newFakeRuntime(9).key
	wantReason(t, c.Receive(foreign.cert(termOutcome(9, "x"))), ReasonUnknownKey)
	if l, term := c.Leader(); l != "a" || term != 1 {
		t.Fatalf("a refused certificate changed the held term: %s %d", l, term)
	}
}
