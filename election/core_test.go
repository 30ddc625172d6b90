package election

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/receipt"
)

// fakeRuntime signs certificates the way the runtime does, with a test key.
type fakeRuntime struct {
	key  ed25519.PrivateKey
	seq  uint64
	fid  string
	sum  string
	now  time.Time
	name string
}

func newFakeRuntime(seed byte) *fakeRuntime {
	k := ed25519.NewKeyFromSeed(make32(seed))
	return &fakeRuntime{key: k, fid: "leaderfn", sum: strings.Repeat("ab", 32), now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
}

func (f *fakeRuntime) trust(cluster string) Trust {
	return Trust{Key: f.key.Public().(ed25519.PublicKey), FunctionID: f.fid, Checksum: f.sum, Cluster: cluster}
}

// elect certifies ids as the leader function would (highest wins).
func (f *fakeRuntime) elect(cluster string, ids ...string) *Certificate {
	set, err := members.New(ids)
	if err != nil {
		panic(err)
	}
	out := []byte(`{"cluster":"` + cluster + `","leader":"` + set.Highest() + `","members":[`)
	for i, id := range set.IDs() {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, id...)
		out = append(out, '"')
	}
	out = append(out, `],"members_digest":"`+set.Digest()+`"}`...)
	return f.sign(out, Request(cluster, set.IDs()))
}

func (f *fakeRuntime) sign(output, input []byte) *Certificate {
	f.seq++
	f.now = f.now.Add(time.Second)
	in := sha256.Sum256(input)
	out := sha256.Sum256(output)
	c := &Certificate{Output: output, Receipt: receipt.Receipt{
		FunctionID: f.fid, FunctionChecksum: f.sum, InputSHA256: hex.EncodeToString(in[:]), OutputSHA256: hex.EncodeToString(out[:]),
		Seq: f.seq, Time: f.now,
	}}
	if err := c.Receipt.Sign(f.key); err != nil {
		panic(err)
	}
	return c
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestAcceptMatchingView(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001"}, t0)
	if w := c.Wanted(); len(w) != 2 {
		t.Fatalf("Wanted = %v, want the view", w)
	}
	a := c.Receive(rt.elect("demo", "5000", "5001"), t0)
	if a.Accepted == nil || a.LeaderChanged == nil || a.LeaderChanged.Leader != "5001" || a.LeaderChanged.Self {
		t.Fatalf("actions %+v", a)
	}
	if c.Wanted() != nil {
		t.Fatal("still wants an election after a matching certificate")
	}
	if l, seq := c.Leader(); l != "5001" || seq != 1 {
		t.Fatalf("leader %s seq %d", l, seq)
	}
}

func TestRejections(t *testing.T) {
	rt := newFakeRuntime(1)
	other := newFakeRuntime(2)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001"}, t0)
	good := rt.elect("demo", "5000", "5001")
	c.Receive(good, t0)

	forged := *rt.elect("demo", "5000", "5001")
	forged.Receipt.Seq += 10 // signature no longer covers it

	otherFn := newFakeRuntime(1)
	otherFn.sum = strings.Repeat("cd", 32)
	otherFn.seq = 100

	wrongCluster := rt.elect("elsewhere", "5000", "5001")

	tampered := *rt.elect("demo", "5000", "5001")
	tampered.Output = []byte(strings.Replace(string(tampered.Output), `"leader":"5001"`, `"leader":"5000"`, 1))

	badInput := rt.sign(rt.elect("demo", "5000", "5001").Output, []byte(`{"not":"canonical"}`))

	for _, tc := range []struct {
		name string
		cert *Certificate
		want Reason
	}{
		{"forged", &forged, ReasonBadSignature},
		{"other runtime key", other.elect("demo", "5000", "5001"), ReasonUnknownKey},
		{"other checksum", otherFn.elect("demo", "5000", "5001"), ReasonWrongChecksum},
		{"other cluster", wrongCluster, ReasonWrongCluster},
		{"tampered output", &tampered, ReasonOutputMismatch},
		{"not the canonical request", badInput, ReasonInputMismatch},
		{"replayed", good, ""}, // the held one again: silently ignored
	} {
		a := c.Receive(tc.cert, t0)
		if tc.want == "" {
			if a.Rejected != nil || a.Accepted != nil {
				t.Errorf("%s: actions %+v", tc.name, a)
			}
			continue
		}
		if a.Rejected == nil || a.Rejected.Reason != tc.want {
			t.Errorf("%s: rejected = %v, want %s", tc.name, a.Rejected, tc.want)
		}
	}
	// An older genuine certificate is stale once a newer one is held.
	newer := rt.elect("demo", "5000", "5001")
	if a := c.Receive(newer, t0); a.Accepted == nil {
		t.Fatalf("newer certificate not accepted: %+v", a)
	}
	if a := c.Receive(good, t0); a.Rejected == nil || a.Rejected.Reason != ReasonStale {
		t.Fatalf("replayed older certificate: %+v", a)
	}
	r := c.Rejections()
	for _, reason := range []Reason{ReasonBadSignature, ReasonUnknownKey, ReasonWrongChecksum, ReasonWrongCluster, ReasonOutputMismatch, ReasonInputMismatch, ReasonStale} {
		if r[reason] != 1 {
			t.Errorf("rejections[%s] = %d, want 1 (all: %v)", reason, r[reason], r)
		}
	}
}

func TestPendingUntilViewConverges(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo"), PendingFor: 3 * time.Second})
	c.SetView([]string{"5000", "5001"}, t0)
	// A peer already sees 5002, which this node has not heard of yet.
	ahead := rt.elect("demo", "5000", "5001", "5002")
	if a := c.Receive(ahead, t0); !a.Pending || a.Accepted != nil {
		t.Fatalf("actions %+v, want pending", a)
	}
	// The view converges: the pending certificate is accepted.
	a := c.SetView([]string{"5000", "5001", "5002"}, t0.Add(time.Second))
	if a.Accepted != ahead || a.LeaderChanged == nil || a.LeaderChanged.Leader != "5002" {
		t.Fatalf("actions %+v, want the pending certificate accepted", a)
	}
}

func TestPendingExpires(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo"), PendingFor: 3 * time.Second})
	c.SetView([]string{"5000", "5001"}, t0)
	liar := rt.elect("demo", "5000", "5001", "9999") // a genuine certificate over a list that never comes true
	c.Receive(liar, t0)
	if a := c.Tick(t0.Add(2 * time.Second)); len(a.Expired) != 0 {
		t.Fatal("expired too early")
	}
	a := c.Tick(t0.Add(4 * time.Second))
	if len(a.Expired) != 1 || a.Expired[0].Reason != ReasonMembers {
		t.Fatalf("actions %+v", a)
	}
	if c.Rejections()[ReasonMembers] != 1 || c.PendingCount() != 0 {
		t.Fatalf("rejections %v pending %d", c.Rejections(), c.PendingCount())
	}
	if l, _ := c.Leader(); l != "" {
		t.Fatalf("a certificate over a foreign member list was accepted: leader %s", l)
	}
}

func TestLeaderChangesAndSelf(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5002", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001", "5002"}, t0)
	a := c.Receive(rt.elect("demo", "5000", "5001", "5002"), t0)
	if a.LeaderChanged == nil || !a.LeaderChanged.Self {
		t.Fatalf("%+v", a)
	}
	// A refresh with the same leader is accepted without a leader change.
	a = c.Receive(rt.elect("demo", "5000", "5001", "5002"), t0)
	if a.Accepted == nil || a.LeaderChanged != nil {
		t.Fatalf("%+v", a)
	}
	// 5003 joins: leadership moves, and this node stops leading.
	c.SetView([]string{"5000", "5001", "5002", "5003"}, t0)
	a = c.Receive(rt.elect("demo", "5000", "5001", "5002", "5003"), t0)
	if a.LeaderChanged == nil || a.LeaderChanged.Self || !a.LeaderChanged.WasSelf || a.LeaderChanged.Leader != "5003" {
		t.Fatalf("%+v", a.LeaderChanged)
	}
}

func TestMinSeqRefusesReplayAfterRestart(t *testing.T) {
	rt := newFakeRuntime(1)
	old := rt.elect("demo", "5000", "5001")
	rt.seq = 50
	c := New(Config{Self: "5000", Trust: rt.trust("demo"), MinSeq: 40})
	c.SetView([]string{"5000", "5001"}, t0)
	if a := c.Receive(old, t0); a.Rejected == nil || a.Rejected.Reason != ReasonStale {
		t.Fatalf("%+v", a)
	}
	if a := c.Receive(rt.elect("demo", "5000", "5001"), t0); a.Accepted == nil {
		t.Fatalf("%+v", a)
	}
}

func TestCertificateEncoding(t *testing.T) {
	rt := newFakeRuntime(1)
	c := rt.elect("demo", "5000", "5001")
	d, err := DecodeCertificate(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Encode()) != string(c.Encode()) {
		t.Fatal("encode/decode does not round-trip")
	}
	if _, rej := Verify(d, rt.trust("demo")); rej != nil {
		t.Fatal(rej)
	}
	enc := c.Encode()
	for i := 0; i < len(enc); i++ {
		if _, err := DecodeCertificate(enc[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
	}
}

func FuzzDecodeCertificate(f *testing.F) {
	rt := newFakeRuntime(1)
	f.Add(rt.elect("demo", "5000", "5001").Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCertificate(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes, and verifying it
		// never panics.
		if string(c.Encode()) != string(b) {
			t.Fatalf("re-encoding differs")
		}
		Verify(c, rt.trust("demo"))
	})
}

func FuzzReceive(f *testing.F) {
	rt := newFakeRuntime(1)
	f.Add(rt.elect("demo", "5000", "5001").Output)
	f.Add([]byte(`{"cluster":"demo","leader":"x","members":["x"],"members_digest":"00"}`))
	f.Fuzz(func(t *testing.T, output []byte) {
		c := New(Config{Self: "5000", Trust: rt.trust("demo")})
		c.SetView([]string{"5000", "5001"}, t0)
		// A correctly signed certificate over arbitrary output: the core
		// must refuse bad outcomes without panicking.
		cert := rt.sign(output, output)
		a := c.Receive(cert, t0)
		if a.Accepted != nil {
			if _, rej := Verify(cert, rt.trust("demo")); rej != nil {
				t.Fatalf("accepted a certificate that does not verify: %v", rej)
			}
		}
	})
}

// One invalid name in the member list (a memberlist peer can call itself
// anything) is dropped; the rest of the view still changes. Before, the
// whole list was ignored and the view froze, so the cluster never failed
// over again.
func TestSetViewDropsInvalidIDs(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001", "5002"}, t0)
	c.Receive(rt.elect("demo", "5000", "5001", "5002"), t0)
	// 5002 dies while a peer named "bad name" is in the list.
	a := c.SetView([]string{"5000", "bad name", "5001", "", "5001"}, t0)
	if got := c.View(); len(got) != 2 || got[0] != "5000" || got[1] != "5001" {
		t.Fatalf("view %v, want [5000 5001]", got)
	}
	if len(a.Ignored) != 2 || a.Ignored[0] != "bad name" || a.Ignored[1] != "" {
		t.Fatalf("ignored %q, want the two invalid IDs", a.Ignored)
	}
	if w := c.Wanted(); len(w) != 2 {
		t.Fatalf("Wanted = %v, want the new view", w)
	}
	a = c.Receive(rt.elect("demo", "5000", "5001"), t0)
	if a.LeaderChanged == nil || a.LeaderChanged.Leader != "5001" {
		t.Fatalf("failover not accepted: %+v", a)
	}
	// Nothing valid at all: the view stays as it was.
	if a := c.SetView([]string{"bad name"}, t0); len(a.Ignored) != 1 || len(c.View()) != 2 {
		t.Fatalf("view %v after an all-invalid list (ignored %q)", c.View(), a.Ignored)
	}
}

func TestRank(t *testing.T) {
	c := New(Config{Self: "9"})
	if c.Rank("9") != -1 {
		t.Fatal("rank without a view")
	}
	c.SetView([]string{"9", "10", "100", "2"}, t0)
	for id, want := range map[string]int{"100": 0, "10": 1, "9": 2, "2": 3, "7": -1} {
		if got := c.Rank(id); got != want {
			t.Errorf("Rank(%s) = %d, want %d (numeric order, highest first)", id, got, want)
		}
	}
}

// A full pending queue drops its lowest seq and says so, so that the node
// can count it.
func TestPendingOverflowIsReported(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo"), MaxPending: 2})
	c.SetView([]string{"5000"}, t0)
	c.Receive(rt.elect("demo", "5000", "1"), t0)
	c.Receive(rt.elect("demo", "5000", "2"), t0)
	a := c.Receive(rt.elect("demo", "5000", "3"), t0)
	if len(a.Expired) != 1 || a.Expired[0].Reason != ReasonMembers || c.PendingCount() != 2 {
		t.Fatalf("overflow: expired %v, pending %d", a.Expired, c.PendingCount())
	}
}

// A copy of a verified certificate is not verified again, but a copy
// altered anywhere (here: its output, with the signature kept) is, and is
// refused.
func TestVerifiedCopies(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001", "5002"}, t0)
	pending := rt.elect("demo", "5000", "5001")
	if a := c.Receive(pending, t0); !a.Pending {
		t.Fatalf("a certificate for another view: %+v, want pending", a)
	}
	if len(c.verified) != 1 {
		t.Fatalf("%d verified certificates remembered, want 1", len(c.verified))
	}
	if a := c.Receive(pending, t0); !a.Pending || a.Rejected != nil {
		t.Fatalf("the same certificate again: %+v, want pending", a)
	}
	forged := *pending
	forged.Output = []byte(strings.Replace(string(pending.Output), `"leader":"5001"`, `"leader":"5000"`, 1))
	if a := c.Receive(&forged, t0); a.Rejected == nil {
		t.Fatal("an altered copy of a verified certificate was not refused")
	}
	good := rt.elect("demo", "5000", "5001", "5002")
	if a := c.Receive(good, t0); a.Accepted == nil {
		t.Fatalf("a certificate for the view: %+v, want accepted", a)
	}
	if a := c.Receive(good, t0); a.Accepted != nil || a.Rejected != nil {
		t.Fatalf("the held certificate again: %+v, want nothing", a)
	}
}

// A certificate below the held seq is refused as stale before its
// signature is checked, unless it names another key: an observer must
// still learn that the runtime's key changed.
func TestStaleBeforeVerify(t *testing.T) {
	rt := newFakeRuntime(1)
	other := newFakeRuntime(2)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	c.SetView([]string{"5000", "5001"}, t0)
	old := rt.elect("demo", "5000", "5001")
	forgedOld := *old
	forgedOld.Receipt.Signature = bytes.Repeat([]byte{1}, len(old.Receipt.Signature))
	if a := c.Receive(rt.elect("demo", "5000", "5001"), t0); a.Accepted == nil {
		t.Fatalf("newer certificate not accepted: %+v", a)
	}
	if a := c.Receive(&forgedOld, t0); a.Rejected == nil || a.Rejected.Reason != ReasonStale {
		t.Fatalf("forged older certificate: %+v, want stale", a.Rejected)
	}
	if a := c.Receive(other.elect("demo", "5000", "5001"), t0); a.Rejected == nil || a.Rejected.Reason != ReasonUnknownKey {
		t.Fatalf("older certificate from another key: %+v, want unknown_key", a.Rejected)
	}
	// The cached Verify still verifies what it has not seen.
	if _, rej := c.Verify(&forgedOld); rej == nil || rej.Reason != ReasonBadSignature {
		t.Fatalf("Verify(forged) = %v, want bad_signature", rej)
	}
}

// Setting the same list again changes nothing and reports the same
// ignored IDs; a pending certificate still waits for its view.
func TestSetViewSameList(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	ids := []string{"5000", "bad id", "5001"}
	for i := range 2 {
		a := c.SetView(ids, t0)
		if len(a.Ignored) != 1 || a.Ignored[0] != "bad id" || a.Accepted != nil {
			t.Fatalf("SetView #%d: %+v", i, a)
		}
	}
	ahead := rt.elect("demo", "5000", "5001", "5002")
	if a := c.Receive(ahead, t0); !a.Pending {
		t.Fatalf("actions %+v, want pending", a)
	}
	if a := c.SetView(ids, t0); a.Accepted != nil || c.PendingCount() != 1 {
		t.Fatalf("same list: %+v, pending %d", a, c.PendingCount())
	}
	if a := c.SetView([]string{"5000", "5001", "5002"}, t0); a.Accepted != ahead {
		t.Fatalf("converged view: %+v, want the pending certificate", a)
	}
	if got := c.Wanted(); got != nil {
		t.Fatalf("Wanted = %v, want nil: the held certificate covers the view", got)
	}
}

// The same list again costs no allocation: no set is built, no digest
// computed (a forming cluster refreshes the view with every join).
func TestSetViewSameListFree(t *testing.T) {
	rt := newFakeRuntime(1)
	c := New(Config{Self: "5000", Trust: rt.trust("demo")})
	var ids []string
	for i := range 500 {
		ids = append(ids, strconv.Itoa(5000+i))
	}
	c.SetView(ids, t0)
	if n := testing.AllocsPerRun(20, func() { c.SetView(ids, t0) }); n != 0 {
		t.Fatalf("SetView with the same list: %v allocations, want 0", n)
	}
	if got := c.View(); len(got) != 500 {
		t.Fatalf("view has %d members, want 500", len(got))
	}
}
