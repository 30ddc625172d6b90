package node

import (
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/receipt"
)

func certWithSeq(seq uint64) *election.Certificate {
	return &election.Certificate{Output: []byte(`{}`), Receipt: receipt.Receipt{Seq: seq}}
}

// A queued certificate is replaced only by one that supersedes it, not by
// whatever certificate is queued next (memberlist replaces a
// NamedBroadcast by name, which is what the code did before).
func TestCertBroadcastInvalidates(t *testing.T) {
	q := &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 5 }, RetransmitMult: 3}
	q.QueueBroadcast(newCertBroadcast(certWithSeq(10), false, 0))
	q.QueueBroadcast(newCertBroadcast(certWithSeq(9), false, 0)) // older: both stay
	if k := q.NumQueued(); k != 2 {
		t.Fatalf("an older certificate evicted a newer one: %d queued", k)
	}
	q.QueueBroadcast(newCertBroadcast(certWithSeq(11), false, 0))
	if k := q.NumQueued(); k != 1 {
		t.Fatalf("a newer certificate did not replace the older ones: %d queued", k)
	}

	v := &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 5 }, RetransmitMult: 3}
	v.QueueBroadcast(newCertBroadcast(certWithSeq(20), true, 3))
	v.QueueBroadcast(newCertBroadcast(certWithSeq(30), true, 2)) // a lower term, even with a later receipt
	v.QueueBroadcast(newCertBroadcast(certWithSeq(40), false, 0))
	if k := v.NumQueued(); k != 3 {
		t.Fatalf("a lower term or another scheme evicted a certificate: %d queued", k)
	}
	v.QueueBroadcast(newCertBroadcast(certWithSeq(21), true, 3)) // a renewal of term 3
	if k := v.NumQueued(); k != 2 {
		t.Fatalf("term 3's renewal did not replace term 3 and term 2: %d queued", k)
	}
	for _, b := range []*certBroadcast{newCertBroadcast(certWithSeq(21), true, 3)} {
		if b.Invalidates(b) {
			t.Fatal("a certificate invalidates itself")
		}
	}
}
