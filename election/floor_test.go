package election

import "testing"

// A restarted node that kept its floor certificate refuses another
// certificate with the floor's seq (a rolled-back runtime signed the seq
// again) and takes the one it kept, relayed back by a peer.
func TestMinSeqSigRefusesAnotherCertificateForTheFloor(t *testing.T) {
	rt := newFakeRuntime(1)
	kept := rt.elect("demo", "5000", "5001")
	rt.seq = kept.Seq() - 1 // the rollback
	again := rt.elect("demo", "5000", "5001")
	c := New(Config{Self: "5000", Trust: rt.trust("demo"), MinSeq: kept.Seq(), MinSeqSig: kept.Receipt.Signature})
	c.SetView([]string{"5000", "5001"}, t0)
	if a := c.Receive(again, t0); a.Rejected == nil || a.Rejected.Reason != ReasonStale {
		t.Fatalf("another certificate for the floor seq: %+v", a)
	}
	if a := c.Receive(kept, t0); a.Accepted == nil {
		t.Fatalf("the kept certificate: %+v", a)
	}
}

// A restarted node that kept its floor term's output refuses another
// certificate for that term as equivocation, and takes the same output
// with a later receipt.
func TestTermMinOutputRefusesAnotherCertificateForTheFloor(t *testing.T) {
	rt := newTermRuntime()
	kept := rt.cert(termOutcome(4, "a"))
	c := NewTermCore("b", rt.trust(), 4)
	c.SetMinOutput(kept.Output)
	other := termOutcome(4, "b")
	wantReason(t, c.Receive(rt.cert(other)), ReasonEquivocation)
	if a := c.Receive(rt.cert(termOutcome(4, "a"))); a.Accepted == nil {
		t.Fatalf("the kept term, renewed: %+v", a)
	}
}
