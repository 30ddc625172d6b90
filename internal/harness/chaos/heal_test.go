package chaos

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node"
)

// deadRuntime is a runtime that never answers: membership alone is under
// test.
type deadRuntime struct{}

var errDown = errors.New("runtime down (test)")

func (deadRuntime) Elect(context.Context, string, []string) (*election.Certificate, error) {
	return nil, errDown
}
func (deadRuntime) Key(context.Context) (ed25519.PublicKey, error) { return nil, errDown }
func (deadRuntime) Submit(context.Context, []byte) (*election.Certificate, error) {
	return nil, errDown
}
func (deadRuntime) Describe() node.RuntimeInfo { return node.RuntimeInfo{URL: "none"} }

// TestPartitionHeals partitions six nodes 3|3 for longer than failure
// detection plus memberlist's GossipToTheDeadTime, heals the network, and
// expects every node to see all six again.
//
// Once each side has declared the other dead and the "dead" broadcasts
// have run out of retransmissions, memberlist probes and push/pulls only
// members it believes alive; what brings the sides back together is the
// node's reconnect loop (node.Config.ReconnectInterval), which keeps
// joining members that failed, as Serf's reconnect does.
func TestPartitionHeals(t *testing.T) {
	cut := 8 * time.Second
	nodes, net := partitionedCluster(t, 6, cut)
	err := poll(context.Background(), 30*time.Second, func() error {
		for _, n := range nodes {
			if v := n.Status().View; len(v) != len(nodes) {
				return fmt.Errorf("%s sees %v", n.Status().Name, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("30 s after a %v partition healed, the cluster is still split: %v (partitioned packets: %d)", cut, err, net.Stats().Partitioned)
	}
}

// partitionedCluster starts n in-process nodes on one network, waits until
// they all see each other, partitions them in halves for cut, waits until
// each side has declared the other dead, and heals the network.
func partitionedCluster(t *testing.T, n int, cut time.Duration) ([]*node.Node, *Network) {
	t.Helper()
	net := NewNetwork()
	ports := freePorts(t, n, drawSeed())
	var nodes []*node.Node
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	for i, p := range ports {
		tr, err := NewTransport(net, "127.0.0.1", p, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = testGossipKey
		cfg.Name, cfg.BindPort = strconv.Itoa(p), p
		cfg.Peers = slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == addrs[i] })
		cfg.Runtime, cfg.FunctionID, cfg.Checksum = deadRuntime{}, "f", "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Memberlist.Transport = tr
		nd, err := node.New(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(context.Background()); err != nil {
			tr.Shutdown()
			t.Fatal(err)
		}
		t.Cleanup(nd.Kill)
		nodes = append(nodes, nd)
	}
	all := func(want int, side []*node.Node) func() error {
		return func() error {
			for _, nd := range side {
				if v := nd.Status().View; len(v) != want {
					return fmt.Errorf("%s sees %d members: %v", nd.Status().Name, len(v), v)
				}
			}
			return nil
		}
	}
	if err := poll(context.Background(), 20*time.Second, all(n, nodes)); err != nil {
		t.Fatalf("the cluster did not form: %v", err)
	}
	if err := net.Partition(addrs[:n/2], addrs[n/2:]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := poll(context.Background(), 20*time.Second, func() error {
		if err := all(n/2, nodes[:n/2])(); err != nil {
			return err
		}
		return all(n-n/2, nodes[n/2:])()
	}); err != nil {
		t.Fatalf("the sides did not see each other fail: %v", err)
	}
	if d := cut - time.Since(start); d > 0 {
		time.Sleep(d) // the partition lasts this long by design
	}
	net.Heal()
	return nodes, net
}

// testGossipKey is the gossip key of the in-process test clusters.
var testGossipKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()
