package raftstore

import (
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// listFSM records the commands it applies.
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
	return nil, fmt.Errorf("no snapshots in this test")
}
func (f *listFSM) Restore(io.ReadCloser) error { return fmt.Errorf("no snapshots in this test") }

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

type clusterNode struct {
	id    raft.ServerID
	dir   string
	store *Store
	trans *raft.InmemTransport
	fsm   *listFSM
	raft  *raft.Raft
}

func raftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotThreshold = 1 << 30 // the log alone must carry the restarted node
	c.LogOutput = io.Discard
	return c
}

// start opens n's store from its files and starts raft on it.
func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	s, err := Open(filepath.Join(n.dir, "raft.db"), testKey(7), "cluster-test/"+string(n.id))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(n.dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n.store, n.fsm = s, &listFSM{}
	_, n.trans = raft.NewInmemTransport(raft.ServerAddress(n.id))
	r, err := raft.NewRaft(raftConfig(n.id), n.fsm, s, s, snaps, n.trans)
	if err != nil {
		t.Fatal(err)
	}
	n.raft = r
}

func (n *clusterNode) stop(t *testing.T) {
	t.Helper()
	if n.raft == nil {
		return
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	n.trans.Close()
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	n.raft = nil
}

func connectAll(nodes []*clusterNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b && a.raft != nil && b.raft != nil {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOf(nodes []*clusterNode) *clusterNode {
	for _, n := range nodes {
		if n.raft != nil && n.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

func apply(t *testing.T, nodes []*clusterNode, cmd string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		var l *clusterNode
		waitFor(t, "a leader", func() bool { l = leaderOf(nodes); return l != nil })
		err := l.raft.Apply([]byte(cmd), 5*time.Second).Error()
		if err == nil {
			return
		}
		if attempt == 5 {
			t.Fatalf("apply %s: %v", cmd, err)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRaftClusterOnStoresRestartsAndCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-node raft cluster")
	}
	var nodes []*clusterNode
	var servers []raft.Server
	for i := 1; i <= 3; i++ {
		n := &clusterNode{id: raft.ServerID(fmt.Sprintf("replica-%d", i)), dir: t.TempDir()}
		n.start(t)
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: n.trans.LocalAddr()})
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
	})
	connectAll(nodes)
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}

	var want []string
	for i := 0; i < 20; i++ {
		cmd := fmt.Sprintf("cmd-%d", i)
		apply(t, nodes, cmd)
		want = append(want, cmd)
	}
	waitFor(t, "all nodes to apply the first commands", func() bool {
		for _, n := range nodes {
			if !equal(n.fsm.list(), want) {
				return false
			}
		}
		return true
	})

	// Stop a follower, go on without it, then restart it from its files.
	var follower *clusterNode
	for _, n := range nodes {
		if n.raft.State() != raft.Leader {
			follower = n
			break
		}
	}
	follower.stop(t)
	for _, n := range nodes {
		if n != follower {
			n.trans.DisconnectAll()
		}
	}
	var live []*clusterNode
	for _, n := range nodes {
		if n != follower {
			live = append(live, n)
		}
	}
	connectAll(live)
	for i := 20; i < 40; i++ {
		cmd := fmt.Sprintf("cmd-%d", i)
		apply(t, live, cmd)
		want = append(want, cmd)
	}

	follower.start(t)
	if term, err := follower.store.GetUint64([]byte("CurrentTerm")); err != nil || term == 0 {
		t.Fatalf("restarted node's CurrentTerm = %d, %v", term, err)
	}
	if last, err := follower.store.LastIndex(); err != nil || last < 20 {
		t.Fatalf("restarted node's log from its file ends at %d, %v; want at least the first 20 commands", last, err)
	}
	for _, n := range nodes {
		n.trans.DisconnectAll()
	}
	connectAll(nodes)
	waitFor(t, "the restarted node to catch up", func() bool { return equal(follower.fsm.list(), want) })

	apply(t, nodes, "after-restart")
	want = append(want, "after-restart")
	waitFor(t, "every node to apply the last command", func() bool {
		for _, n := range nodes {
			if !equal(n.fsm.list(), want) {
				return false
			}
		}
		return true
	})
	last, err := follower.store.LastIndex()
	if err != nil || last < uint64(len(want)) {
		t.Fatalf("restarted node's LastIndex = %d, %v; want at least %d", last, err, len(want))
	}
}
