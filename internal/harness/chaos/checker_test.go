package chaos

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/receipt"
)

const (
	testFunction = "fn-election"
	testCluster  = "chaos"
)

var testChecksum = strings.Repeat("ab", 32)

func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+b)), 32)))
}

// issue signs a certificate as the runtime would.
func issue(t *testing.T, key ed25519.PrivateKey, seq uint64, output, input []byte) *election.Certificate {
	t.Helper()
	r := receipt.Receipt{FunctionID: testFunction, FunctionChecksum: testChecksum, InputSHA256: receipt.SHA256Hex(input),
		OutputSHA256: receipt.SHA256Hex(output), Seq: seq, Time: time.Unix(1_800_000_000, int64(seq))}
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	return &election.Certificate{Output: output, Receipt: r}
}

func termCert(t *testing.T, key ed25519.PrivateKey, seq, term uint64, leader string) *election.Certificate {
	t.Helper()
	o := election.TermOutcome{Cluster: testCluster, ConfigDigest: strings.Repeat("c", 64), Term: term, Leader: leader,
		MembersDigest: strings.Repeat("d", 64), IssuedAtMs: int64(term), LeaseMs: 1000, Policy: "highest", Mode: "closed"}
	out, _ := json.Marshal(o)
	return issue(t, key, seq, out, []byte("a view"))
}

func seqCert(t *testing.T, key ed25519.PrivateKey, seq uint64, ids ...string) *election.Certificate {
	t.Helper()
	set, err := members.New(ids)
	if err != nil {
		t.Fatal(err)
	}
	o := election.Outcome{Cluster: testCluster, Leader: set.Highest(), Members: set.IDs(), MembersDigest: set.Digest()}
	out, _ := json.Marshal(o)
	return issue(t, key, seq, out, election.Request(testCluster, set.IDs()))
}

// logOf writes events as a node's JSON-lines log.
func logOf(t *testing.T, name string, evs ...node.Event) Log {
	t.Helper()
	var b strings.Builder
	for _, ev := range evs {
		ev.Node = name
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return Log{Node: name, Data: []byte(b.String())}
}

func acceptedTerm(c *election.Certificate) node.Event {
	var o election.TermOutcome
	json.Unmarshal(c.Output, &o)
	return node.Event{Event: "cert_accepted", Seq: o.Term, Term: o.Term, Leader: o.Leader, MembersDigest: o.MembersDigest, Cert: c.Encode()}
}

func acceptedSeq(c *election.Certificate) node.Event {
	var o election.Outcome
	json.Unmarshal(c.Output, &o)
	return node.Event{Event: "cert_accepted", Seq: c.Seq(), Leader: o.Leader, MembersDigest: o.MembersDigest, Cert: c.Encode()}
}

func acted(seq uint64, leader string) node.Event {
	return node.Event{Event: "leader_acted", Seq: seq, Leader: leader}
}

func termTrust(keys ...ed25519.PrivateKey) Trust {
	tr := Trust{FunctionID: testFunction, Checksum: testChecksum, Cluster: testCluster, Terms: true}
	for _, k := range keys {
		tr.Keys = append(tr.Keys, k.Public().(ed25519.PublicKey))
	}
	return tr
}

func wantViolations(t *testing.T, r *Report, substrings ...string) {
	t.Helper()
	if len(substrings) == 0 {
		if !r.OK() {
			t.Fatalf("violations: %q", r.Violations)
		}
		return
	}
	for _, s := range substrings {
		found := false
		for _, v := range r.Violations {
			if strings.Contains(v, s) {
				found = true
			}
		}
		if !found {
			t.Fatalf("no violation mentions %q; got %q", s, r.Violations)
		}
	}
}

func TestCheckerAcceptsAnHonestRun(t *testing.T) {
	k := testKey(1)
	t1, t2 := termCert(t, k, 10, 1, "3"), termCert(t, k, 20, 2, "2")
	t2renewed := termCert(t, k, 25, 2, "2") // same term, later receipt
	logs := []Log{
		logOf(t, "3", acceptedTerm(t1), acted(1, "3"), acceptedTerm(t2)),
		logOf(t, "2", acceptedTerm(t1), acceptedTerm(t2), acted(2, "2"),
			// A restart: the same term accepted again, from a renewal.
			acceptedTerm(t2renewed), acted(2, "2")),
		logOf(t, "1", acceptedTerm(t2)),
	}
	r := Check(logs, termTrust(k))
	wantViolations(t, r)
	if r.Elections != 2 || r.Accepted != 6 || r.Acted != 3 || r.Reaccepted != 1 || r.Leaders[1] != "3" || r.Leaders[2] != "2" {
		t.Fatalf("report %+v", r)
	}
}

func TestCheckerFindsTwoLeadersForOneTerm(t *testing.T) {
	k := testKey(1)
	a, b := termCert(t, k, 10, 5, "3"), termCert(t, k, 11, 5, "2")
	r := Check([]Log{logOf(t, "3", acceptedTerm(a)), logOf(t, "2", acceptedTerm(b))}, termTrust(k))
	wantViolations(t, r, "two leaders for term 5")
}

func TestCheckerFindsEquivocation(t *testing.T) {
	k := testKey(1)
	a := termCert(t, k, 10, 5, "3")
	o := election.TermOutcome{Cluster: testCluster, ConfigDigest: strings.Repeat("c", 64), Term: 5, Leader: "3",
		MembersDigest: strings.Repeat("e", 64), IssuedAtMs: 9, LeaseMs: 1000, Policy: "highest", Mode: "closed"}
	out, _ := json.Marshal(o)
	b := issue(t, k, 11, out, []byte("v"))
	r := Check([]Log{logOf(t, "3", acceptedTerm(a)), logOf(t, "2", acceptedTerm(b))}, termTrust(k))
	wantViolations(t, r, "equivocation")
}

func TestCheckerReverifiesCertificates(t *testing.T) {
	k, other := testKey(1), testKey(2)
	good := termCert(t, k, 10, 1, "3")
	forged := *termCert(t, k, 11, 2, "3")
	forged.Receipt.Seq = 99 // signature no longer covers it
	foreign := termCert(t, other, 12, 3, "3")
	lying := acceptedTerm(termCert(t, k, 13, 4, "3"))
	lying.Leader = "2" // the event misreports the certificate
	noCert := node.Event{Event: "cert_accepted", Seq: 5, Term: 5, Leader: "3"}
	r := Check([]Log{logOf(t, "3", acceptedTerm(good), acceptedTerm(&forged), acceptedTerm(foreign), lying, noCert)}, termTrust(k))
	wantViolations(t, r, "line 2: accepted a certificate that fails verification", "line 3: accepted a certificate that fails verification",
		"event says leader \"2\"", "without the certificate")
	// Under both keys the foreign certificate verifies.
	r = Check([]Log{logOf(t, "3", acceptedTerm(good), acceptedTerm(foreign))}, termTrust(k, other))
	wantViolations(t, r)
	// A term certificate is not a member-list certificate.
	tr := termTrust(k)
	tr.Terms = false
	r = Check([]Log{logOf(t, "3", acceptedTerm(good))}, tr)
	wantViolations(t, r, "fails verification")
}

func TestCheckerFindsGoingBackwards(t *testing.T) {
	k := testKey(1)
	t1, t2 := termCert(t, k, 10, 1, "3"), termCert(t, k, 20, 2, "3")
	r := Check([]Log{logOf(t, "3", acceptedTerm(t2), acceptedTerm(t1))}, termTrust(k))
	wantViolations(t, r, "accepted term 1 after term 2")
}

func TestCheckerFindsBadLeaderActions(t *testing.T) {
	k := testKey(1)
	t1, t2 := termCert(t, k, 10, 1, "3"), termCert(t, k, 20, 2, "2")
	r := Check([]Log{
		logOf(t, "3", acceptedTerm(t1), acted(1, "3"), acceptedTerm(t2), acted(2, "3")),
		logOf(t, "1", acted(7, "1")),
		logOf(t, "2", acceptedTerm(t2), acted(2, "2")),
	}, termTrust(k))
	wantViolations(t, r, "3 line 4: acted as leader for term 2 while holding term 2 with leader \"2\"",
		"1 line 1: acted as leader for term 7", "both 2 and 3 acted as leader for term 2")
}

func TestCheckerFindsTornAndForeignLines(t *testing.T) {
	k := testKey(1)
	good := logOf(t, "3", acceptedTerm(termCert(t, k, 10, 1, "3")))
	torn := Log{Node: "3", Data: append(append([]byte{}, good.Data...), []byte(`{"t":"2026-01-01T00:00:00Z","node":"3","ev`)...)}
	foreign := logOf(t, "2", acted(1, "2"))
	foreign.Node = "4"
	unknown := logOf(t, "5", node.Event{Event: "cert_rejected"})
	r := Check([]Log{torn, foreign, unknown}, termTrust(k))
	wantViolations(t, r, "3 line 2: not a whole event", "event of node \"2\" in the log of \"4\"", "unknown event")
}

func TestCheckerSeqScheme(t *testing.T) {
	k := testKey(1)
	c1 := seqCert(t, k, 7, "1", "2", "3")
	c2 := seqCert(t, k, 9, "1", "2")
	tr := Trust{Keys: []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}, FunctionID: testFunction, Checksum: testChecksum, Cluster: testCluster}
	r := Check([]Log{
		logOf(t, "3", acceptedSeq(c1), acted(7, "3")),
		logOf(t, "2", acceptedSeq(c1), acceptedSeq(c2), acted(9, "2")),
	}, tr)
	wantViolations(t, r)
	if r.Elections != 2 {
		t.Fatalf("elections %d", r.Elections)
	}
	// The runtime hands out seq 9 twice, for two different outputs.
	reused := seqCert(t, k, 9, "1", "3")
	r = Check([]Log{logOf(t, "2", acceptedSeq(c2)), logOf(t, "3", acceptedSeq(reused))}, tr)
	wantViolations(t, r, "two leaders for seq 9", "the runtime reused a seq")
	// A certificate whose input is not the canonical request over its
	// members fails verification.
	bad := issue(t, k, 11, c2.Output, []byte(`{"cluster":"chaos","node_list":["1"]}`))
	r = Check([]Log{logOf(t, "2", acceptedSeq(bad))}, tr)
	wantViolations(t, r, "fails verification")
}

func TestCheckReceiptsFindsASeqIssuedTwice(t *testing.T) {
	k := testKey(1)
	a, b := termCert(t, k, 10, 1, "3"), termCert(t, k, 11, 2, "3")
	// Seen by every node and by the harness: the same receipts, again and again.
	honest := []SeenReceipt{
		{Seq: 10, Signature: a.Receipt.Signature, Where: "node 3"},
		{Seq: 10, Signature: a.Receipt.Signature, Where: "node 2"},
		{Seq: 11, Signature: b.Receipt.Signature, Where: "node 3"},
		{Seq: 12, Signature: []byte("harness run"), Where: "harness run"},
	}
	if v := CheckReceipts(honest); len(v) != 0 {
		t.Fatalf("honest receipts: %q", v)
	}
	// A rolled-back replica signs seq 11 again for another run.
	again := termCert(t, k, 11, 3, "2")
	v := CheckReceipts(append(honest, SeenReceipt{Seq: 11, Signature: again.Receipt.Signature, Where: "harness run on r2"}))
	if len(v) != 1 || !strings.Contains(v[0], "receipt seq 11 was issued for 2 different receipts") || !strings.Contains(v[0], "harness run on r2") {
		t.Fatalf("violations %q", v)
	}
}

func TestCheckCollectsReceipts(t *testing.T) {
	k := testKey(1)
	a, b := termCert(t, k, 10, 1, "3"), termCert(t, k, 11, 2, "3")
	r := Check([]Log{logOf(t, "3", acceptedTerm(a), acceptedTerm(b)), logOf(t, "2", acceptedTerm(a))}, termTrust(k))
	wantViolations(t, r)
	if len(r.Receipts) != 3 || r.Receipts[0].Seq != 10 || r.Receipts[1].Seq != 10 || r.Receipts[2].Seq != 11 { // logs in node order
		t.Fatalf("receipts %+v", r.Receipts)
	}
	// The node logs hold seq 10; a receipt the harness got for another
	// run with seq 10 is a seq issued twice.
	other := termCert(t, k, 10, 9, "2")
	if v := CheckReceipts(append(r.Receipts, SeenReceipt{Seq: 10, Signature: other.Receipt.Signature, Where: "harness"})); len(v) != 1 {
		t.Fatalf("violations %q", v)
	}
}

func TestCheckDurable(t *testing.T) {
	d := Durable{Functions: []string{"fn-a", "fn-b"}, Deleted: []string{"fn-gone"}}
	honest := []ReplicaView{
		{Replica: "r1", Listed: []string{"fn-election", "fn-a", "fn-b"}},
		{Replica: "r2", Listed: []string{"fn-b", "fn-a"}},
	}
	if v := CheckDurable(d, honest); len(v) != 0 {
		t.Fatalf("honest views: %q", v)
	}
	lost := []ReplicaView{
		{Replica: "r1", Listed: []string{"fn-a", "fn-b"}},
		{Replica: "r3", Listed: []string{"fn-a", "fn-gone"}, RevokedServed: true, DeletedServed: true},
	}
	v := CheckDurable(d, lost)
	want := []string{"replica r3 lost the deployed function fn-b", "replica r3 lists the deleted function fn-gone",
		"replica r3: a run with the revoked token was signed", "replica r3: a run of the deleted function was signed"}
	if len(v) != len(want) {
		t.Fatalf("violations %q", v)
	}
	for i := range want {
		if !strings.HasPrefix(v[i], want[i]) {
			t.Fatalf("violation %d: %q, want %q", i, v[i], want[i])
		}
	}
}
