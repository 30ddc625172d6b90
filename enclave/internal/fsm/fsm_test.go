package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/store"
)

// testBundle is a small canonical bundle with its record.
func testBundle(t testing.TB, id string) *Command {
	t.Helper()
	b := &bundle.Bundle{Module: []byte("\x00asm\x01\x00\x00\x00" + id)}
	enc := b.Encode()
	return &Command{Type: TypeDeploy, Deploy: &Deploy{
		Function: store.Function{ID: id, Name: "fn-" + id, Checksum: bundle.ChecksumOf(enc), CreatedAt: time.Unix(1700000000, 0).UTC(), Size: len(enc)},
		Bundle:   enc,
	}}
}

func mustApply(t *testing.T, f *FSM, c *Command) any {
	t.Helper()
	res := f.ApplyCommand(c)
	if err, ok := res.(error); ok {
		t.Fatalf("apply %s: %v", c.Type, err)
	}
	return res
}

// refused applies c, wants an error, and checks that the state did not change.
func refused(t *testing.T, f *FSM, c *Command, want string) {
	t.Helper()
	before, _ := f.Encode()
	res := f.ApplyCommand(c)
	err, ok := res.(error)
	if !ok || !strings.Contains(err.Error(), want) {
		t.Fatalf("apply %s: got %v, want an error with %q", c.Type, res, want)
	}
	after, _ := f.Encode()
	if !bytes.Equal(before, after) {
		t.Fatalf("refused %s changed the state", c.Type)
	}
}

func TestCommands(t *testing.T) {
	var events []Event
	f := New(func(e Event) { events = append(events, e) })
	mustApply(t, f, testBundle(t, "a"))
	if len(events) != 1 || events[0].Type != Deployed || events[0].Function.ID != "a" {
		t.Fatalf("events %+v", events)
	}
	refused(t, f, testBundle(t, "a"), "already exists")
	bad := testBundle(t, "b")
	bad.Deploy.Bundle = append(bad.Deploy.Bundle, 0)
	refused(t, f, bad, "does not match")

	rec, err := f.Function("a")
	if err != nil || rec.Name != "fn-a" {
		t.Fatalf("Function: %v %v", rec, err)
	}
	if enc, _ := f.Bundle("a"); bundle.ChecksumOf(enc) != rec.Checksum {
		t.Fatal("Bundle does not match")
	}
	if _, err := f.Function("zz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Function(zz): %v", err)
	}

	// commit: writes, counters, seq ceiling, all or nothing.
	mustApply(t, f, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "a",
		Writes:   []Write{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("e"), Value: []byte{}}},
		Counters: []CounterValue{{Name: []byte("term"), Value: 1}}, SeqCeiling: 4096}})
	if v, ok, _ := f.StateGet("a", []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("StateGet k: %q %v", v, ok)
	}
	if v, ok, _ := f.StateGet("a", []byte("e")); !ok || len(v) != 0 {
		t.Fatalf("StateGet e: %q %v", v, ok)
	}
	if n, _ := f.Counter("a", []byte("term")); n != 1 {
		t.Fatalf("Counter %d", n)
	}
	if c, _ := f.SeqCeiling(); c != 4096 {
		t.Fatalf("SeqCeiling %d", c)
	}
	refused(t, f, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "a",
		Writes: []Write{{Key: []byte("k"), Value: nil}}, Counters: []CounterValue{{Name: []byte("term"), Value: 1}}}}, "would go from 1 to 1")
	refused(t, f, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "gone", Writes: []Write{{Key: []byte("k")}}}}, "not found")
	refused(t, f, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "a", Writes: []Write{{Key: []byte("k")}, {Key: []byte("k")}}}}, "twice")
	mustApply(t, f, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "a", Writes: []Write{{Key: []byte("k"), Value: nil}}, SeqCeiling: 10}})
	if _, ok, _ := f.StateGet("a", []byte("k")); ok {
		t.Fatal("k not deleted")
	}
	if c, _ := f.SeqCeiling(); c != 4096 {
		t.Fatalf("ceiling went down to %d", c)
	}
	mustApply(t, f, &Command{Type: TypeSeq, Seq: &Seq{Ceiling: 8192}})
	if c, _ := f.SeqCeiling(); c != 8192 {
		t.Fatalf("SeqCeiling %d", c)
	}

	// revoke and prune.
	events = nil
	mustApply(t, f, &Command{Type: TypeRevoke, Revoke: &Revoke{JTI: "t1", Expires: 100}})
	mustApply(t, f, &Command{Type: TypeRevoke, Revoke: &Revoke{JTI: "t2", Expires: 200}})
	if len(events) != 2 || events[0].Type != Revoked {
		t.Fatalf("events %+v", events)
	}
	if ok, _ := f.Revoked("t1"); !ok {
		t.Fatal("t1 not revoked")
	}
	if n := f.Expired(time.Unix(150, 0)); n != 1 {
		t.Fatalf("Expired %d", n)
	}
	if n := mustApply(t, f, &Command{Type: TypePrune, Prune: &Prune{Now: 150}}); n != 1 {
		t.Fatalf("pruned %v", n)
	}
	if ok, _ := f.Revoked("t1"); ok {
		t.Fatal("t1 not pruned")
	}
	if ok, _ := f.Revoked("t2"); !ok {
		t.Fatal("t2 pruned")
	}
	refused(t, f, &Command{Type: TypeRevoke, Revoke: &Revoke{}}, "empty token ID")

	// replicas.
	mustApply(t, f, &Command{Type: TypeReplica, Replica: &Replica{ID: "r2", APIURL: "http://b", RaftAddr: "b:1"}})
	mustApply(t, f, &Command{Type: TypeReplica, Replica: &Replica{ID: "r1", APIURL: "http://a", RaftAddr: "a:1"}})
	if rs := f.Replicas(); len(rs) != 2 || rs[0].ID != "r1" {
		t.Fatalf("Replicas %+v", rs)
	}
	refused(t, f, &Command{Type: TypeReplica, Replica: &Replica{ID: "R!", APIURL: "x", RaftAddr: "y"}}, "replica ID")
	mustApply(t, f, &Command{Type: TypeReplicaRemoved, ReplicaRemoved: &ReplicaRemoved{ID: "r2"}})
	if _, ok := f.Replica("r2"); ok {
		t.Fatal("r2 still there")
	}

	// delete drops the function with its state.
	events = nil
	mustApply(t, f, &Command{Type: TypeDelete, Delete: &Delete{FunctionID: "a"}})
	if len(events) != 1 || events[0].Type != Deleted || events[0].FunctionID != "a" {
		t.Fatalf("events %+v", events)
	}
	if n, _ := f.Counter("a", []byte("term")); n != 0 {
		t.Fatal("counter survived delete")
	}
	refused(t, f, &Command{Type: TypeDelete, Delete: &Delete{FunctionID: "a"}}, "not found")
	// A redeploy under the same ID starts with no state.
	mustApply(t, f, testBundle(t, "a"))
	if _, ok, _ := f.StateGet("a", []byte("e")); ok {
		t.Fatal("state survived delete")
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{}`, `{"type":"nope"}`, `{"type":"seq"}`,
		`{"type":"seq","seq":{"ceiling":1},"prune":{"now":1}}`,
		`{"type":"seq","seq":{"ceiling":1}} x`,
		`{"type":"seq","seq":{"ceiling":1,"ceiling":2}}`,
		`{"type":"seq","seq":{"Ceiling":1}}`,
		`{"type":"seq","seq":{"ceiling":-1}}`,
		`{"type":"commit","commit":{"function_id":"a","writes":[{"key":"!!","value":null}]}}`,
	} {
		if _, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", in, err)
		}
	}
}

// log is a fixed sequence of commands for the determinism tests.
func log(t *testing.T) []*Command {
	var cmds []*Command
	for _, id := range []string{"c", "a", "b"} {
		cmds = append(cmds, testBundle(t, id))
	}
	for i := range 20 {
		cmds = append(cmds, &Command{Type: TypeCommit, Commit: &Commit{FunctionID: []string{"a", "b", "c"}[i%3],
			Writes:   []Write{{Key: []byte{byte(i % 5), 0xff}, Value: []byte{byte(i)}}, {Key: []byte{byte(i % 7)}, Value: nil}},
			Counters: []CounterValue{{Name: []byte("n"), Value: int64(i + 1)}, {Name: []byte{0xfe, byte(i)}, Value: 3}}}})
		cmds = append(cmds, &Command{Type: TypeRevoke, Revoke: &Revoke{JTI: string(rune('z' - i)), Expires: int64(i * 10)}})
	}
	cmds = append(cmds,
		&Command{Type: TypeSeq, Seq: &Seq{Ceiling: 4095}},
		&Command{Type: TypePrune, Prune: &Prune{Now: 55}},
		&Command{Type: TypeDelete, Delete: &Delete{FunctionID: "b"}},
		&Command{Type: TypeReplica, Replica: &Replica{ID: "r3", APIURL: "http://c", RaftAddr: "c:1"}},
		&Command{Type: TypeReplica, Replica: &Replica{ID: "r1", APIURL: "http://a", RaftAddr: "a:1"}},
	)
	return cmds
}

func TestDeterministic(t *testing.T) {
	a, b := New(nil), New(nil)
	for i, c := range log(t) {
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ra := a.Apply(&raft.Log{Index: uint64(i + 1), Data: enc})
		rb := b.Apply(&raft.Log{Index: uint64(i + 1), Data: bytes.Clone(enc)})
		if (ra == nil) != (rb == nil) {
			t.Fatalf("entry %d: %v vs %v", i, ra, rb)
		}
	}
	sa, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.Encode()
	if !bytes.Equal(sa, sb) {
		t.Fatal("two FSMs fed the same log differ")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	a := New(nil)
	for _, c := range log(t) {
		a.ApplyCommand(c)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	var events []Event
	b := New(func(e Event) { events = append(events, e) })
	if err := b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Type != Restored {
		t.Fatalf("events %+v", events)
	}
	sb, _ := b.Encode()
	if !bytes.Equal(sink.Bytes(), sb) {
		t.Fatal("restored state encodes differently")
	}
	if n, _ := b.Counter("a", []byte("n")); n != 19 {
		t.Fatalf("counter a/n = %d", n)
	}

	// A bad snapshot leaves the state untouched.
	for _, bad := range []string{
		``, `{}`, `{"version":2,"functions":[],"revocations":[],"seq_ceiling":0,"replicas":[]}`,
		strings.Replace(string(sb), `"seq_ceiling"`, `"seq_ceiling":1,"seq_ceiling"`, 1),
		strings.Replace(string(sb), `"functions":[{`, `"functions":[{"function":{"id":"zz","name":"","checksum":"x","created_at":"2020-01-01T00:00:00Z","size":0},"bundle":"","state":[],"counters":[]},{`, 1),
	} {
		if err := b.Restore(io.NopCloser(strings.NewReader(bad))); !errors.Is(err, ErrMalformed) {
			t.Errorf("restore %.60q: %v, want ErrMalformed", bad, err)
		}
		if now, _ := b.Encode(); !bytes.Equal(now, sb) {
			t.Fatal("refused restore changed the state")
		}
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func FuzzApply(f *testing.F) {
	for _, c := range log(&testing.T{}) {
		enc, _ := c.Encode()
		if len(enc) < 4096 {
			f.Add(enc)
		}
	}
	f.Add([]byte(`{"type":"commit","commit":{"function_id":"a","counters":[{"name":"bg==","value":0}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := New(nil)
		for _, c := range log(t)[:4] {
			fs.ApplyCommand(c)
		}
		before, _ := fs.Encode()
		res := fs.Apply(&raft.Log{Data: data})
		after, err := fs.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, isErr := res.(error); isErr && !bytes.Equal(before, after) {
			t.Fatalf("refused command changed the state: %v", res)
		}
		// Whatever applied, the state still round-trips.
		g := New(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(after))); err != nil {
			t.Fatalf("state after %q does not restore: %v", data, err)
		}
	})
}

func FuzzRestore(f *testing.F) {
	a := New(nil)
	for _, c := range log(&testing.T{}) {
		a.ApplyCommand(c)
	}
	good, _ := a.Encode()
	f.Add(good)
	f.Add([]byte(`{"version":1,"functions":[],"revocations":[],"seq_ceiling":0,"replicas":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := New(nil)
		fs.ApplyCommand(testBundle(t, "q"))
		before, _ := fs.Encode()
		if err := fs.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if now, _ := fs.Encode(); !bytes.Equal(now, before) {
				t.Fatal("refused restore changed the state")
			}
			return
		}
		// An accepted snapshot re-encodes to a snapshot that restores to
		// the same state.
		again, err := fs.Encode()
		if err != nil {
			t.Fatal(err)
		}
		g := New(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(again))); err != nil {
			t.Fatalf("re-encoded snapshot refused: %v", err)
		}
		if b, _ := g.Encode(); !bytes.Equal(b, again) {
			t.Fatal("re-encoding is not stable")
		}
	})
}

func TestCommitFromAnotherTermRefused(t *testing.T) {
	f := New(nil)
	mustApply(t, f, testBundle(t, "a"))
	commit := func(leaderTerm, logTerm uint64) any {
		c := &Command{Type: TypeCommit, Commit: &Commit{FunctionID: "a", Writes: []Write{{Key: []byte("k"), Value: []byte("v")}}, LeaderTerm: leaderTerm}}
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Type: raft.LogCommand, Data: b, Term: logTerm})
	}
	before, _ := f.Encode()
	if err, ok := commit(3, 4).(error); !ok || !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("commit begun in term 3, appended in 4: got %v, want ErrStaleTerm", err)
	}
	if after, _ := f.Encode(); !bytes.Equal(before, after) {
		t.Fatal("a refused commit changed the state")
	}
	if res := commit(4, 4); res != nil {
		t.Fatalf("commit in its own term: %v", res)
	}
	if v, ok, _ := f.StateGet("a", []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("state after commit: %q %v", v, ok)
	}
}
