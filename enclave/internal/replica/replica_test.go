package replica

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"hash/crc64"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
	"github.com/vouch-dev/vouch/internal/raftstore"
)

// listFSM appends every command to a list; its response is the new length.
type listFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return len(f.cmds)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.cmds)
	return listSnapshot(b), err
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var cmds []string
	if err := json.NewDecoder(rc).Decode(&cmds); err != nil {
		return err
	}
	f.mu.Lock()
	f.cmds = cmds
	f.mu.Unlock()
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

type listSnapshot []byte

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

func testKeys(t *testing.T) *servicekeys.Keys {
	t.Helper()
	k, err := servicekeys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type testNode struct {
	*Node
	fsm  *listFSM
	dir  string
	addr string
}

// start opens a replica on addr ("127.0.0.1:0" for a new port).
func start(t *testing.T, id, dir, addr string, keys *servicekeys.Keys, bootstrap bool, snaps Snapshots) *testNode {
	t.Helper()
	n, err := openNode(t, id, dir, addr, keys, bootstrap, snaps, &listFSM{})
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	return n
}

func openNode(t *testing.T, id, dir, addr string, keys *servicekeys.Keys, bootstrap bool, snaps Snapshots, fsm *listFSM) (*testNode, error) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // a restarted replica needs its old port back
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(Config{
		ID: id, Dir: dir, Listener: ln, Keys: keys, FSM: fsm, Bootstrap: bootstrap, Snapshots: snaps, Timing: testTiming,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	t.Cleanup(func() { n.Shutdown() })
	return &testNode{Node: n, fsm: fsm, dir: dir, addr: ln.Addr().String()}, nil
}

// testTiming is slower than DefaultTiming: under the race detector on a
// loaded host a 150 ms lease makes leaders step down spuriously.
var testTiming = Timing{Heartbeat: time.Second, Election: time.Second, LeaderLease: 500 * time.Millisecond}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// applyOnLeader applies cmd on whichever of nodes leads, retrying through
// elections (so cmd may be applied twice: compare with applied).
func applyOnLeader(t *testing.T, nodes []*testNode, cmd string) any {
	t.Helper()
	var res any
	eventually(t, "apply "+cmd, func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := n.Apply(ctx, []byte(cmd))
				cancel()
				res = r
				return err == nil
			}
		}
		return false
	})
	return res
}

// applied is the FSM's list without repeats (of retried commands).
func (n *testNode) applied() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range n.fsm.list() {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// leaderOf waits for one of nodes to lead and returns it.
func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	eventually(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func TestCluster(t *testing.T) {
	keys := testKeys(t)
	snaps := Snapshots{Threshold: 8, Trailing: 4, Interval: 50 * time.Millisecond}
	reg := prometheus.NewRegistry()
	n0, err := func() (*testNode, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fsm := &listFSM{}
		n, err := Open(Config{ID: "r0", Dir: t.TempDir(), Listener: ln, Keys: keys, FSM: fsm, Bootstrap: true, Snapshots: snaps, Registerer: reg, Timing: testTiming})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { n.Shutdown() })
		return &testNode{Node: n, fsm: fsm, dir: n.cfg.Dir, addr: n.Addr()}, nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-n0.LeadershipChanges():
		if !v {
			t.Fatal("first leadership change is false")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no leadership change")
	}
	if !n0.IsLeader() {
		t.Fatal("bootstrapped replica does not lead")
	}
	n1 := start(t, "r1", t.TempDir(), "127.0.0.1:0", keys, false, snaps)
	n2 := start(t, "r2", t.TempDir(), "127.0.0.1:0", keys, false, snaps)
	for _, n := range []*testNode{n1, n2} {
		if err := n0.AddVoter(ctx30(t), n.ID(), n.Addr()); err != nil {
			t.Fatalf("add %s: %v", n.ID(), err)
		}
	}
	nodes := []*testNode{n0, n1, n2}
	var want []string
	for i := range 5 {
		cmd := "a" + string(rune('0'+i))
		if res, ok := applyOnLeader(t, nodes, cmd).(int); !ok || res < i+1 {
			t.Fatalf("response %v, want at least %d", res, i+1)
		}
		want = append(want, cmd)
	}
	for _, n := range nodes {
		eventually(t, n.ID()+" applies", func() bool { return slices.Equal(n.applied(), want) })
	}
	eventually(t, "ReadIndex on the leader", func() bool {
		return leaderOf(t, nodes).ReadIndex(ctx30(t)) == nil
	})
	eventually(t, "ErrNotLeader from a follower", func() bool {
		for _, n := range nodes {
			if !n.IsLeader() {
				_, err := n.Apply(ctx30(t), []byte("x"))
				return errors.Is(n.ReadIndex(ctx30(t)), ErrNotLeader) && errors.Is(err, ErrNotLeader)
			}
		}
		return false
	})
	eventually(t, "a follower knows the leader", func() bool {
		leader := leaderOf(t, nodes)
		for _, n := range nodes {
			if n != leader {
				id, addr := n.Leader()
				return id == leader.ID() && addr == leader.Addr()
			}
		}
		return false
	})
	eventually(t, "the leader's status", func() bool {
		leader := leaderOf(t, nodes)
		st := leader.Status()
		return st.State == "Leader" && st.LeaderID == leader.ID() && len(st.Servers) == 3 && st.Term > 0 && st.CommitIndex > 0
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, name := range []string{"vouch_replica_state", "vouch_replica_commit_index", "vouch_replica_applied_index", "vouch_replica_apply_seconds", "vouch_replica_tampered_total"} {
		if !slices.Contains(names, name) {
			t.Errorf("metric %s missing from %v", name, names)
		}
	}

	// The leader dies: another is elected and serves.
	n0 = leaderOf(t, nodes)
	var rest []*testNode
	for _, n := range nodes {
		if n != n0 {
			rest = append(rest, n)
		}
	}
	id0, dir0, addr0, last0 := n0.ID(), n0.dir, n0.addr, n0.raft.LastIndex()
	if err := n0.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 { // beyond Threshold+Trailing: snapshots and truncation
		cmd := "b" + string(rune('a'+i))
		applyOnLeader(t, rest, cmd)
		want = append(want, cmd)
	}
	for _, n := range rest {
		eventually(t, n.ID()+" applies", func() bool { return slices.Equal(n.applied(), want) })
	}
	for _, n := range rest {
		if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatal(err)
		}
		eventually(t, n.ID()+" truncates its log", func() bool {
			first, _ := n.store.FirstIndex()
			return first > last0+1
		})
	}

	// The old leader comes back from its directory and catches up, by a
	// snapshot since the log it missed is gone.
	n0 = start(t, id0, dir0, addr0, keys, true, snaps)
	nodes = append(rest, n0)
	eventually(t, id0+" catches up", func() bool { return slices.Equal(n0.applied(), want) })
	applyOnLeader(t, nodes, "c")
	want = append(want, "c")
	for _, n := range nodes {
		eventually(t, n.ID()+" applies c", func() bool { return slices.Equal(n.applied(), want) })
		if err := n.Tampered(); err != nil {
			t.Fatalf("%s tampered: %v", n.ID(), err)
		}
	}

	// Remove a follower.
	var removed string
	eventually(t, "Remove", func() bool {
		leader := leaderOf(t, nodes)
		for _, n := range nodes {
			if n != leader && removed == "" {
				removed = n.ID()
			}
		}
		return leader.Remove(ctx30(t), removed) == nil
	})
	eventually(t, "two servers", func() bool {
		leader := leaderOf(t, nodes)
		for _, sv := range leader.Status().Servers {
			if sv.ID == removed {
				return false
			}
		}
		return len(leader.Status().Servers) == 2
	})
}

// TestLeadershipChangesNeverBlock: nobody reads the channels, yet raft
// keeps working through more leadership changes than any buffer holds,
// and each channel ends with the replica's latest change.
func TestLeadershipChangesNeverBlock(t *testing.T) {
	keys := testKeys(t)
	n0 := start(t, "r0", t.TempDir(), "127.0.0.1:0", keys, true, Snapshots{})
	eventually(t, "leader", n0.IsLeader)
	n1 := start(t, "r1", t.TempDir(), "127.0.0.1:0", keys, false, Snapshots{})
	if err := n0.AddVoter(ctx30(t), "r1", n1.Addr()); err != nil {
		t.Fatal(err)
	}
	nodes := []*testNode{n0, n1}
	for i := range 24 {
		var leader *testNode
		eventually(t, "a leader", func() bool {
			for _, n := range nodes {
				if n.IsLeader() {
					leader = n
				}
			}
			return leader != nil
		})
		if err := leader.raft.LeadershipTransfer().Error(); err != nil {
			t.Logf("transfer %d: %v", i, err)
		}
	}
	applyOnLeader(t, nodes, "x")
	for _, n := range nodes {
		eventually(t, n.ID()+" leadership change", func() bool {
			select {
			case v := <-n.LeadershipChanges():
				return v == n.IsLeader()
			default:
				return false
			}
		})
	}
}

func TestTLSRefusesStrangers(t *testing.T) {
	keys := testKeys(t)
	n := start(t, "r0", t.TempDir(), "127.0.0.1:0", keys, true, Snapshots{})
	eventually(t, "leader", n.IsLeader)

	// Plain TCP: the server closes without a word.
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if _, err := io.ReadAll(c); err != nil && isTimeout(err) {
		t.Fatalf("plain TCP: %v", err)
	}
	c.Close()

	// A certificate of another authority is refused by the server.
	other := testKeys(t)
	_, clientTLS, err := tlsConfigs("r9", other.TLSAuthority())
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", n.Addr(), clientTLS)
	if err == nil {
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("stranger's TLS connection: %v, want refused", err)
	}
	// The client refuses a server of another authority too.
	_, okClient, err := tlsConfigs("r8", keys.TLSAuthority())
	if err != nil {
		t.Fatal(err)
	}
	strangerSrv, _, err := tlsConfigs("r9", other.TLSAuthority())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", strangerSrv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if c, err := tls.Dial("tcp", ln.Addr().String(), okClient); err == nil {
		c.Close()
		t.Fatal("client accepted a server of another authority")
	}

	// A replica of another service cannot join: its RPCs fail, so it
	// gets no entry and the configuration naming it cannot commit more.
	s := start(t, "s1", t.TempDir(), "127.0.0.1:0", other, false, Snapshots{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n.AddVoter(ctx, "s1", s.Addr())
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := n.Apply(ctx, []byte("x")); err == nil {
		t.Fatal("Apply committed with a stranger as the second voter")
	}
	if st := s.Status(); st.LastIndex != 0 || st.LeaderID != "" || st.Term != 0 {
		t.Fatalf("stranger got raft traffic: %+v", st)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTamperedLog(t *testing.T) {
	keys := testKeys(t)
	dir := t.TempDir()
	n := start(t, "r0", dir, "127.0.0.1:0", keys, true, Snapshots{})
	eventually(t, "leader", n.IsLeader)
	for range 3 {
		if _, err := n.Apply(ctx30(t), []byte("secret")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("logs"))
		k, v := b.Cursor().Last()
		v = bytes.Clone(v)
		v[len(v)/2] ^= 1
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	fsm := &listFSM{}
	n2, err := openNode(t, "r0", dir, "127.0.0.1:0", keys, true, Snapshots{}, fsm)
	if err == nil {
		eventually(t, "tampering noticed", func() bool { return n2.Tampered() != nil })
		err = n2.Tampered()
	}
	if !errors.Is(err, raftstore.ErrTampered) {
		t.Fatalf("reopen: %v, want ErrTampered", err)
	}
	if got := fsm.list(); len(got) == 3 {
		t.Fatalf("tampered entry applied: %q", got)
	}
}

func TestTamperedSnapshot(t *testing.T) {
	keys := testKeys(t)
	dir := t.TempDir()
	n := start(t, "r0", dir, "127.0.0.1:0", keys, true, Snapshots{})
	eventually(t, "leader", n.IsLeader)
	for range 3 {
		if _, err := n.Apply(ctx30(t), []byte("secret-value")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	snapDirs, err := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
	if err != nil || len(snapDirs) != 1 {
		t.Fatalf("snapshots %v %v", snapDirs, err)
	}
	state := filepath.Join(snapDirs[0], "state.bin")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("secret-value")) {
		t.Fatal("snapshot holds plaintext")
	}

	// Reopening an intact snapshot works.
	fsm := &listFSM{}
	n2, err := openNode(t, "r0", dir, "127.0.0.1:0", keys, false, Snapshots{}, fsm)
	if err != nil {
		t.Fatal(err)
	}
	if got := fsm.list(); len(got) != 3 {
		t.Fatalf("restored %q", got)
	}
	if err := n2.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// Flip a byte and fix the CRC, as a host would.
	b[len(b)/2] ^= 1
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fixCRC(t, filepath.Join(snapDirs[0], "meta.json"), b)
	fsm = &listFSM{}
	_, err = openNode(t, "r0", dir, "127.0.0.1:0", keys, false, Snapshots{}, fsm)
	if !errors.Is(err, raftstore.ErrTampered) {
		t.Fatalf("reopen: %v, want ErrTampered", err)
	}
	if got := fsm.list(); len(got) != 0 {
		t.Fatalf("tampered snapshot restored: %q", got)
	}
}

func TestSealedSnapshotBinding(t *testing.T) {
	aead, err := snapshotAEAD(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	m := raft.SnapshotMeta{ID: "1-10-1", Version: 1, Index: 10, Term: 1,
		Configuration: raft.Configuration{Servers: []raft.Server{{ID: "r0", Address: "127.0.0.1:1"}}}}
	sealed := sealSnapshot(aead, []byte("state"), snapshotAD("svc/r0", &m))
	if p, err := openSnapshot(aead, sealed, snapshotAD("svc/r0", &m)); err != nil || string(p) != "state" {
		t.Fatalf("open: %q %v", p, err)
	}
	for name, edit := range map[string]func(*raft.SnapshotMeta) string{
		"index":  func(m *raft.SnapshotMeta) string { m.Index++; return "svc/r0" },
		"term":   func(m *raft.SnapshotMeta) string { m.Term++; return "svc/r0" },
		"id":     func(m *raft.SnapshotMeta) string { m.ID = "1-10-2"; return "svc/r0" },
		"config": func(m *raft.SnapshotMeta) string { m.Configuration.Servers[0].Address = "x:1"; return "svc/r0" },
		"store":  func(m *raft.SnapshotMeta) string { return "svc/r1" },
	} {
		c := m
		c.Configuration = raft.Configuration{Servers: slices.Clone(m.Configuration.Servers)}
		store := edit(&c)
		if _, err := openSnapshot(aead, sealed, snapshotAD(store, &c)); !errors.Is(err, raftstore.ErrTampered) {
			t.Errorf("%s changed: %v, want ErrTampered", name, err)
		}
	}
}

func FuzzOpenSnapshot(f *testing.F) {
	aead, err := snapshotAEAD(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	ad := []byte("ad")
	f.Add(sealSnapshot(aead, []byte("state"), ad))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := openSnapshot(aead, b, ad)
		if err != nil {
			if !errors.Is(err, raftstore.ErrTampered) {
				t.Fatalf("error %v does not wrap ErrTampered", err)
			}
			return
		}
		if len(b) != len(p)+snapshotOverhead {
			t.Fatalf("opened %d bytes from %d", len(p), len(b))
		}
	})
}

// TestTamperedSnapshotWhileRunning: a snapshot edited under a running
// leader is caught when the leader sends it to a new replica; the leader
// stops and the new replica gets nothing.
func TestTamperedSnapshotWhileRunning(t *testing.T) {
	keys := testKeys(t)
	dir := t.TempDir()
	n := start(t, "r0", dir, "127.0.0.1:0", keys, true, Snapshots{Threshold: 4, Trailing: 2, Interval: time.Hour})
	eventually(t, "leader", n.IsLeader)
	for range 10 {
		if _, err := n.Apply(ctx30(t), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapDirs, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
	if len(snapDirs) != 1 {
		t.Fatalf("snapshots %v", snapDirs)
	}
	state := filepath.Join(snapDirs[0], "state.bin")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fixCRC(t, filepath.Join(snapDirs[0], "meta.json"), b)

	n1 := start(t, "r1", t.TempDir(), "127.0.0.1:0", keys, false, Snapshots{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.AddVoter(ctx, "r1", n1.Addr())
	eventually(t, "tampering noticed", func() bool { return n.Tampered() != nil })
	if !errors.Is(n.Tampered(), raftstore.ErrTampered) {
		t.Fatalf("Tampered: %v", n.Tampered())
	}
	eventually(t, "the tampered leader stops", func() bool { return !n.IsLeader() })
	if got := n1.fsm.list(); len(got) != 0 {
		t.Fatalf("new replica applied %q", got)
	}
	if err := n.Shutdown(); err != nil {
		t.Logf("shutdown: %v", err)
	}
}

func fixCRC(t *testing.T, metaPath string, state []byte) {
	t.Helper()
	mb, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(mb, &meta); err != nil {
		t.Fatal(err)
	}
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	h.Write(state)
	meta["CRC"] = h.Sum(nil)
	mb, _ = json.Marshal(meta)
	if err := os.WriteFile(metaPath, mb, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDialChecksReplicaID: a replica dialling an address of its
// configuration accepts only the certificate of the replica named there.
func TestDialChecksReplicaID(t *testing.T) {
	keys := testKeys(t)
	n := start(t, "r0", t.TempDir(), "127.0.0.1:0", keys, true, Snapshots{})
	_, client, err := tlsConfigs("r5", keys.TLSAuthority())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want string
		ok   bool
	}{{"r0", true}, {"", true}, {"r1", false}} {
		s := &tlsStream{client: client, authority: authorityCert(keys.TLSAuthority().Public().(ed25519.PublicKey)), idOf: func(string) string { return tc.want }}
		c, err := s.Dial(raft.ServerAddress(n.Addr()), 30*time.Second)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("dial expecting %q: %v", tc.want, err)
		}
	}
}

// TestTamperedGetLogNeverReturns: raft panics when it cannot read an entry
// it applies, so a tampered GetLog records the error and blocks instead.
func TestTamperedGetLogNeverReturns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	key := make([]byte, 32)
	s, err := raftstore.Open(path, key, "svc/r0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Data: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("logs"))
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[len(v)-1] ^= 1
		return b.Put(k, v)
	})
	db.Close()
	if s, err = raftstore.Open(path, key, "svc/r0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := checkLogs(s); !errors.Is(err, raftstore.ErrTampered) {
		t.Fatalf("checkLogs: %v, want ErrTampered", err)
	}
	got := make(chan error, 1)
	w := watchedLogs{LogStore: s, tamper: func(err error) { got <- err }}
	returned := make(chan struct{})
	go func() { // blocks forever, by design
		var l raft.Log
		w.GetLog(1, &l)
		close(returned)
	}()
	select {
	case err := <-got:
		if !errors.Is(err, raftstore.ErrTampered) {
			t.Fatalf("tamper got %v", err)
		}
	case <-returned:
		t.Fatal("GetLog returned")
	case <-time.After(30 * time.Second):
		t.Fatal("tampering not reported")
	}
	select {
	case <-returned:
		t.Fatal("GetLog returned")
	default:
	}
}
