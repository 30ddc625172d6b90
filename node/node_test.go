package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

func startNode(t *testing.T, env *enclavetest.Env, ref client.FunctionRef, name string, peers []string) *node.Node {
	t.Helper()
	return mkNode(t, env, ref, name, peers, nil)
}

// mkNode starts a member-list node; tune adjusts its configuration.
func mkNode(t *testing.T, env *enclavetest.Env, ref client.FunctionRef, name string, peers []string, tune func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultLocalConfig()
	cfg.GossipKey = gossipKey
	cfg.Name, cfg.Cluster, cfg.BindPort, cfg.Peers = name, "demo", 0, peers
	cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tune != nil {
		tune(cfg)
	}
	return runNode(t, cfg)
}

// runNode creates and starts a node from cfg, and kills it when the test
// ends.
func runNode(t *testing.T, cfg *node.Config) *node.Node {
	t.Helper()
	n, err := node.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	return n
}

func waitLeader(t *testing.T, nodes []*node.Node, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		ok := true
		for _, n := range nodes {
			if n.Leader().Leader != want {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range nodes {
		st := n.Status()
		t.Logf("%s: leader %q seq %d view %v runtime %+v rejections %v", st.Name, st.Leader, st.Seq, st.View, st.Runtime, st.Rejections)
	}
	t.Fatalf("nodes did not agree on leader %s within %v", want, within)
	return 0
}

func TestAgreeAndFailover(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	var nodes []*node.Node
	first := startNode(t, env, ref, "5000", nil)
	nodes = append(nodes, first)
	for i := 1; i < 5; i++ {
		nodes = append(nodes, startNode(t, env, ref, fmt.Sprint(5000+i), []string{first.Addr()}))
	}
	waitLeader(t, nodes, "5004", 10*time.Second)
	nodes[4].Kill()
	d := waitLeader(t, nodes[:4], "5003", 10*time.Second)
	t.Logf("failover took %v", d)
}

func TestLibraryAPI(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	started := make(chan context.Context, 4)
	stopped := make(chan struct{}, 4)
	mk := func(name string, peers []string, lead bool) *node.Node {
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = gossipKey
		cfg.Name, cfg.Cluster, cfg.BindPort, cfg.Peers = name, "demo", 0, peers
		cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if lead {
			cfg.OnStartedLeading = func(ctx context.Context, seq uint64) { started <- ctx }
			cfg.OnStoppedLeading = func() { stopped <- struct{}{} }
		}
		return runNode(t, cfg)
	}
	a := mk("5001", nil, true)
	sub, cancel := a.Subscribe()
	defer cancel()
	var ctx context.Context
	select {
	case ctx = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("OnStartedLeading was not called")
	}
	// The callback may run before the subscriber hears of the change;
	// an earlier event (named leader, no floor yet) may come first.
	for timeout := time.After(10 * time.Second); ; {
		select {
		case l := <-sub:
			if l.Leader != "5001" {
				t.Fatalf("subscription got %+v", l)
			}
			if !l.Self || l.Seq == 0 {
				continue
			}
		case <-timeout:
			t.Fatal("no leadership event naming this node as acting leader")
		}
		break
	}
	// A higher node joins: 5001 loses leadership and its context ends.
	b := mk("5002", []string{a.Addr()}, false)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("leader context not cancelled when leadership moved")
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("OnStoppedLeading was not called")
	}
	waitLeader(t, []*node.Node{a, b}, "5002", 10*time.Second)
	// A graceful shutdown is a leave: 5001 sees it at once, without
	// waiting for failure detection, and takes over.
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, []*node.Node{a}, "5001", 10*time.Second)
	if how := a.Status().Departed["5002"]; how != "left" {
		t.Fatalf("5002 departed as %q after a graceful shutdown, want left", how)
	}
}
