package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/harness/chaos"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// lossyNode starts a node on a chaos transport, with memberlist's
// suspicion so long (SuspicionMult 50: 10 s) that within a test only the
// leader watch can take a member out of the view.
func lossyNode(t *testing.T, netw *chaos.Network, cfg *node.Config, name string, peers []string) (*node.Node, string) {
	t.Helper()
	tr, err := chaos.NewTransport(netw, "127.0.0.1", 0, uint64(len(name)))
	if err != nil {
		t.Fatal(err)
	}
	ml := *cfg.Memberlist
	ml.SuspicionMult = 50
	ml.Transport = tr
	cfg.Memberlist = &ml
	cfg.Name, cfg.Cluster, cfg.BindAddr, cfg.BindPort, cfg.Peers = name, "demo", "127.0.0.1", tr.Port(), peers
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return runNode(t, cfg), tr.Addr()
}

func memberState(n *node.Node, name string) string {
	for _, m := range n.Status().Members {
		if m.Name == name {
			return m.State
		}
	}
	return "absent"
}

// The leader is cut off while memberlist, with its slow suspicion, still
// lists it: the leader watch takes it out of the followers' views within
// about LeaderTimeout, a new leader is certified, and when the leader
// answers again it comes back (and, under the original policy, leads).
// Without the watch the failover would wait 10 s for memberlist.
func TestLeaderWatchFailsOverAndRecovers(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	netw := chaos.NewNetwork()
	var nodes []*node.Node
	var addrs []string
	for i := 0; i < 4; i++ {
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = gossipKey
		cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		var peers []string
		if i > 0 {
			peers = []string{addrs[0]}
		}
		n, a := lossyNode(t, netw, cfg, strconv.Itoa(5000+i), peers)
		nodes, addrs = append(nodes, n), append(addrs, a)
	}
	waitLeader(t, nodes, "5003", 10*time.Second)

	cut := time.Now()
	if err := netw.Partition(addrs[3:], addrs[:3]); err != nil {
		t.Fatal(err)
	}
	// That the watch decided shows in the members' state below; how fast
	// is the machine's, enforced only with the chaos tag.
	d := waitLeader(t, nodes[:3], "5002", 30*time.Second)
	if d > 2*time.Second && strictTiming {
		t.Fatalf("failover took %v with the leader watch (LeaderTimeout 500 ms)", d)
	}
	t.Logf("failover %v after the cut", time.Since(cut).Round(time.Millisecond))
	for _, n := range nodes[:3] {
		st := n.Status()
		if s := memberState(n, "5003"); s != "unreachable" || st.Departed["5003"] != "unreachable" || len(st.View) != 3 {
			t.Fatalf("%s: 5003 is %q (departed %q), view %v", st.Name, s, st.Departed["5003"], st.View)
		}
	}
	netw.Heal()
	waitLeader(t, nodes, "5003", 10*time.Second)
	for _, n := range nodes[:3] {
		if s := memberState(n, "5003"); s != "alive" {
			t.Fatalf("%s: 5003 is %q after it answered again", n.Status().Name, s)
		}
	}
}

// With signed views the watch's verdict is first-hand evidence: the
// followers' views drop the cut-off leader, a majority forms without it,
// and the next term starts once its lease ran out. When it answers again
// it is back in the views, and the new leader keeps its office.
func TestLeaderWatchSignedViews(t *testing.T) {
	env := enclavetest.Start(t)
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	ref, sc, keys := viewsCluster(t, env, cluster.PolicyHighest, names...)
	netw := chaos.NewNetwork()
	nodes := map[string]*node.Node{}
	addr := map[string]string{}
	for i, name := range names {
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = gossipKey
		cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		cfg.ClusterConfig, cfg.Identity = sc, keys[name]
		var peers []string
		if i > 0 {
			peers = []string{addr["n1"]}
		}
		nodes[name], addr[name] = lossyNode(t, netw, cfg, name, peers)
	}
	leader, term := waitTerm(t, nodes, 1, 15*time.Second)
	var rest []string
	others := map[string]*node.Node{}
	for _, name := range names {
		if name != leader {
			rest = append(rest, addr[name])
			others[name] = nodes[name]
		}
	}
	cut := time.Now()
	if err := netw.Partition([]string{addr[leader]}, rest); err != nil {
		t.Fatal(err)
	}
	next, term2 := waitTerm(t, others, term+1, 10*time.Second)
	t.Logf("term %d: %s after %s was cut off, %v later", term2, next, leader, time.Since(cut).Round(time.Millisecond))
	if next == leader {
		t.Fatal("the cut-off leader was re-elected")
	}
	poll(t, 5*time.Second, "the old leader stops acting", func() error {
		if nodes[leader].Leader().Self {
			return errors.New("still acting")
		}
		return nil
	})
	netw.Heal()
	poll(t, 10*time.Second, "the old leader is back in every view", func() error {
		for name, n := range others {
			if s := memberState(n, leader); s != "alive" {
				return fmt.Errorf("%s sees %s as %s", name, leader, s)
			}
		}
		return nil
	})
	if l, tm := waitTerm(t, nodes, term2, 10*time.Second); l != next || tm != term2 {
		t.Fatalf("after the heal: leader %s term %d, want %s to keep term %d", l, tm, next, term2)
	}
}

// countingRuntime counts election calls across nodes.
type countingRuntime struct {
	node.Runtime
	calls *atomic.Int64
}

func (r countingRuntime) Elect(ctx context.Context, cluster string, ids []string) (*election.Certificate, error) {
	r.calls.Add(1)
	return r.Runtime.Elect(ctx, cluster, ids)
}

// A membership change costs about one runtime call, not one per node: a
// node waits its rank × CallStagger and calls only if no certificate
// covers its view by then.
func TestCalmCertificateRequests(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	var calls atomic.Int64
	tune := func(c *node.Config) {
		c.Runtime = countingRuntime{Runtime: node.NewClientRuntime(env.Client(client.Options{}), ref), calls: &calls}
		// Far wider than the local profile's 20 ms, so that a runtime
		// call and the certificate's gossip, slowed by the race detector
		// on a loaded machine, still fit in one turn.
		c.CallStagger = time.Second
	}
	first := mkNode(t, env, ref, "5000", nil, tune)
	nodes := []*node.Node{first}
	for i := 1; i < 6; i++ {
		nodes = append(nodes, mkNode(t, env, ref, strconv.Itoa(5000+i), []string{first.Addr()}, tune))
	}
	waitLeader(t, nodes, "5005", 30*time.Second)
	quiet := func() int64 {
		// Wait until no call has been made for a second.
		last, since := calls.Load(), time.Now()
		for time.Since(since) < time.Second {
			time.Sleep(20 * time.Millisecond)
			if k := calls.Load(); k != last {
				last, since = k, time.Now()
			}
		}
		return last
	}
	base := quiet()
	nodes = append(nodes, mkNode(t, env, ref, "5006", []string{first.Addr()}, tune))
	waitLeader(t, nodes, "5006", 30*time.Second)
	join := quiet() - base
	base = quiet()
	nodes[6].Kill()
	waitLeader(t, nodes[:6], "5005", 30*time.Second)
	fail := quiet() - base
	t.Logf("runtime calls: %d for a join, %d for a failure (7 nodes)", join, fail)
	// The new node may certify itself alone first, then the view of
	// seven; a failure needs one. One call more is a race, not a storm:
	// without the stagger most nodes call on a join (3 to 8 calls here),
	// and on a failure every node that finds the leader gone before a
	// certificate reaches it (about 4).
	if join > 2 || fail > 2 {
		t.Fatalf("runtime calls: %d for a join, %d for a failure", join, fail)
	}
}

// A join storm costs calls linear in N, not quadratic: the nodes join in
// turn without waiting, the first (highest ID) stays leader, and a node
// that is not the leader defers its call after a join (the leader
// certifies the new member list). Each joiner may certify itself alone
// once before it hears the cluster, and the leader calls about once per
// join: about 2N. The bound, half of N², leaves room for races and false
// suspicions under -race at load, not for every node calling on every
// join.
func TestJoinStormCallsLinear(t *testing.T) {
	const n = 10
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	var calls atomic.Int64
	tune := func(c *node.Config) {
		c.Runtime = countingRuntime{Runtime: node.NewClientRuntime(env.Client(client.Options{}), ref), calls: &calls}
	}
	first := mkNode(t, env, ref, strconv.Itoa(5000+n-1), nil, tune)
	nodes := []*node.Node{first}
	for i := n - 2; i >= 0; i-- {
		nodes = append(nodes, mkNode(t, env, ref, strconv.Itoa(5000+i), []string{first.Addr()}, tune))
	}
	waitLeader(t, nodes, strconv.Itoa(5000+n-1), 30*time.Second)
	poll(t, 30*time.Second, "every node sees every node", func() error {
		for _, nd := range nodes {
			if k := len(nd.Status().View); k != n {
				return fmt.Errorf("%s sees %d members", nd.Status().Name, k)
			}
		}
		return nil
	})
	k := calls.Load()
	t.Logf("runtime calls while %d nodes formed: %d", n, k)
	if k > n*n/2 {
		t.Fatalf("%d runtime calls while %d nodes formed (want at most %d)", k, n, n*n/2)
	}
}
