package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/forgedgossip"
	"github.com/vouch-dev/vouch/node"
)

// gossipKey is the tests' cluster key.
var gossipKey = newGossipKey()

func newGossipKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}

// New refuses a node that would gossip unauthenticated by accident, and
// keys memberlist would refuse; its errors never show a key.
func TestNewNeedsGossipKey(t *testing.T) {
	short := bytes.Repeat([]byte{0xAB}, 20)
	for _, c := range []struct {
		name  string
		tune  func(*node.Config)
		want  string
		isErr error
	}{
		{"no key", func(*node.Config) {}, "no gossip key", node.ErrNoGossipKey},
		{"only extra keys", func(c *node.Config) { c.GossipExtraKeys = [][]byte{gossipKey} }, "no gossip key", node.ErrNoGossipKey},
		{"short key", func(c *node.Config) { c.GossipKey = short }, "gossip key (20 bytes)", nil},
		{"short extra key", func(c *node.Config) { c.GossipKey, c.GossipExtraKeys = gossipKey, [][]byte{gossipKey, short} }, "extra gossip key 2 (20 bytes)", nil},
		{"key and insecure", func(c *node.Config) { c.GossipKey, c.InsecureGossip = gossipKey, true }, "InsecureGossip is set together with a gossip key", nil},
		{"insecure", func(c *node.Config) { c.InsecureGossip = true }, "", nil},
		{"key", func(c *node.Config) { c.GossipKey = gossipKey }, "", nil},
		{"key and extra", func(c *node.Config) { c.GossipKey, c.GossipExtraKeys = gossipKey, [][]byte{newGossipKey()[:16]} }, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkNew(t, c.tune, c.want, c.isErr)
			if err != nil && (strings.Contains(err.Error(), fmt.Sprintf("%x", short[:4])) || strings.Contains(err.Error(), string(short[:4]))) {
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

// trio starts members 5000, 5001 and 5002 of cluster "demo", tuned by
// tune, and waits for 5002 to lead.
func trio(t *testing.T, tune func(*node.Config)) []*node.Node {
	t.Helper()
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	first := mkNode(t, env, ref, "5000", nil, tune)
	nodes := []*node.Node{first, mkNode(t, env, ref, "5001", []string{first.Addr()}, tune), mkNode(t, env, ref, "5002", []string{first.Addr()}, tune)}
	waitLeader(t, nodes, "5002", 20*time.Second)
	return nodes
}

// insecure is a tune that gossips without a key.
func insecure(c *node.Config) { c.GossipKey, c.InsecureGossip = nil, true }

// forgeDead sends every node, from a socket outside the cluster, the
// memberlist message that says the leader 5002 left, with the highest
// incarnation (so that nothing the leader says outranks it), k times.
func forgeDead(t *testing.T, nodes []*node.Node, k int) {
	t.Helper()
	pkt, err := forgedgossip.DeadPacket("vouch/demo", "5002", "5002", 1<<32-1)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	for range k {
		if err := forgedgossip.Send(pkt, addrs...); err != nil {
			t.Fatal(err)
		}
	}
}

// A forged dead message from outside the cluster evicts no one by default:
// every node drops it as a packet it cannot decrypt, and the leader stays
// in every view. TestForgedDeadEvictsWithInsecureGossip shows the same
// packets evict the leader without a key.
func TestForgedDeadFromOutsideEvictsNoOne(t *testing.T) {
	nodes := trio(t, nil)
	ctx := context.Background()
	const k = 3
	base := map[string]uint64{}
	for _, n := range nodes {
		base[n.Status().Name] = n.CurrentStatus(ctx).Dropped["bad_packet"]
	}
	forgeDead(t, nodes, k)
	for _, n := range nodes {
		name := n.Status().Name
		poll(t, 10*time.Second, name+" drops the forged packets", func() error {
			if d := n.CurrentStatus(ctx).Dropped["bad_packet"]; d < base[name]+k {
				return fmt.Errorf("bad_packet %d, want at least %d", d, base[name]+k)
			}
			return nil
		})
	}
	// Each packet was dropped before memberlist read it: nothing changed.
	for _, n := range nodes {
		st := n.CurrentStatus(ctx)
		if !slices.Equal(st.View, []string{"5000", "5001", "5002"}) || len(st.Departed) > 0 || st.Leader != "5002" {
			t.Fatalf("%s after the forged packets: view %v, departed %v, leader %q", st.Name, st.View, st.Departed, st.Leader)
		}
	}
}

// Without a key the forged packets work: the followers drop the living
// leader from their views and fail over to 5001. This is the attack
// TestForgedDeadFromOutsideEvictsNoOne shows the key stops.
func TestForgedDeadEvictsWithInsecureGossip(t *testing.T) {
	nodes := trio(t, insecure)
	forgeDead(t, nodes, 3)
	poll(t, 10*time.Second, "the followers fail over from the living leader", func() error {
		for _, n := range nodes[:2] {
			if l := n.Leader(); l.Leader != "5001" {
				return fmt.Errorf("%s: leader %q", n.Status().Name, l.Leader)
			}
		}
		return nil
	})
	t.Logf("5002 says leader %q (self: %v) while the followers follow 5001", nodes[2].Leader().Leader, nodes[2].Leader().Self)
}

// The three-step rotation of docs/ELECTION.md ("Authenticated gossip"),
// each step a rolling restart of the three members: add the new key as
// an extra key, make it the primary with the old one extra, drop the old
// one. After every restart the three members see each other and agree;
// no step partitions the cluster. A member with only the new key, as
// without the first step, is refused.
func TestGossipKeyRotation(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	k1, k2 := newGossipKey(), newGossipKey()
	withKeys := func(primary []byte, extra ...[]byte) func(*node.Config) {
		return func(c *node.Config) { c.GossipKey, c.GossipExtraKeys = primary, extra }
	}
	names := []string{"5000", "5001", "5002"}
	nodes := make([]*node.Node, 3)
	ports := make([]int, 3)
	for i, name := range names {
		var peers []string
		if i > 0 {
			peers = []string{nodes[0].Addr()}
		}
		nodes[i] = mkNode(t, env, ref, name, peers, withKeys(k1))
		ports[i] = nodes[i].Port()
	}
	waitLeader(t, nodes, "5002", 20*time.Second)

	stranger := mkNode(t, env, ref, "4999", nil, withKeys(k2))
	if _, err := stranger.Join(nodes[0].Addr()); err == nil {
		t.Fatal("a member with only the new key joined members with only the old one")
	}
	stranger.Kill()

	ctx := context.Background()
	for s, step := range []func(*node.Config){withKeys(k1, k2), withKeys(k2, k1), withKeys(k2)} {
		for i, name := range names {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := nodes[i].Shutdown(sctx); err != nil && !errors.Is(err, node.ErrLeaveTimeout) {
				t.Fatalf("step %d: stopping %s: %v", s+1, name, err)
			}
			cancel()
			var peers []string
			for j, n := range nodes {
				if j != i {
					peers = append(peers, n.Addr())
				}
			}
			port := ports[i]
			nodes[i] = mkNode(t, env, ref, name, peers, func(c *node.Config) { step(c); c.BindPort = port })
			for _, n := range nodes {
				poll(t, 20*time.Second, fmt.Sprintf("step %d, %s restarted: %s sees all", s+1, name, n.Status().Name), func() error {
					if v := n.CurrentStatus(ctx).View; !slices.Equal(v, names) {
						return fmt.Errorf("view %v", v)
					}
					return nil
				})
			}
			waitLeader(t, nodes, "5002", 20*time.Second)
		}
	}
}
