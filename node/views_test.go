package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"vouch/client"
	"vouch/cluster"
	"vouch/functions"
	"vouch/internal/enclavetest"
	"vouch/node"
)

// viewsCluster deploys the election function and returns a signed
// configuration for n members with their keys.
func viewsCluster(t *testing.T, env *enclavetest.Env, policy string, names ...string) (client.FunctionRef, *cluster.Signed, map[string]ed25519.PrivateKey) {
	t.Helper()
	b, err := functions.Builtin("election")
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{})
	d, err := c.Deploy(context.Background(), b, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.MintToken(context.Background(), d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, owner, _ := ed25519.GenerateKey(rand.Reader)
	cfg := cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: policy,
		LeaseMillis: 1000, ViewTTLMillis: 1000}
	keys := map[string]ed25519.PrivateKey{}
	for _, n := range names {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		keys[n] = k
		cfg.Members = append(cfg.Members, cluster.Member{ID: n, Key: k.Public().(ed25519.PublicKey)})
	}
	sc, err := cluster.Sign(cfg, owner)
	if err != nil {
		t.Fatal(err)
	}
	return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}, sc, keys
}

func startViewsNode(t *testing.T, env *enclavetest.Env, ref client.FunctionRef, sc *cluster.Signed, key ed25519.PrivateKey, name string, peers []string, acted chan<- string) *node.Node {
	t.Helper()
	cfg := node.DefaultLocalConfig()
	cfg.Name, cfg.Cluster, cfg.BindPort, cfg.Peers = name, "demo", 0, peers
	cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	cfg.ClusterConfig, cfg.Identity = sc, key
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.OnStartedLeading = func(ctx context.Context, term uint64) {
		select {
		case acted <- fmt.Sprintf("%s@%d", name, term):
		default: // the test only looks at the first 64
		}
	}
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

// waitTerm waits until every node holds the same term, whose leader is one
// of them, and returns leader and term.
func waitTerm(t *testing.T, nodes map[string]*node.Node, minTerm uint64, within time.Duration) (string, uint64) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var leader string
		var term uint64
		ok := true
		for _, n := range nodes {
			l := n.Leader()
			if l.Seq < minTerm || (term != 0 && (l.Seq != term || l.Leader != leader)) {
				ok = false
				break
			}
			leader, term = l.Leader, l.Seq
		}
		if ok && nodes[leader] != nil && nodes[leader].Leader().Self {
			return leader, term
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, n := range nodes {
		st := n.Status()
		t.Logf("%s: leader %q term %d leading %v view %v runtime %s %s rejections %v", name, st.Leader, st.Seq, st.IsLeader, st.View, st.Runtime.State, st.Runtime.LastError, st.Rejections)
	}
	t.Fatalf("no agreement on a term ≥ %d within %v", minTerm, within)
	return "", 0
}

func TestSignedViewsElectAndFailOver(t *testing.T) {
	env := enclavetest.Start(t)
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	ref, sc, keys := viewsCluster(t, env, cluster.PolicyHighest, names...)
	acted := make(chan string, 64)
	nodes := map[string]*node.Node{}
	first := startViewsNode(t, env, ref, sc, keys["n1"], "n1", nil, acted)
	nodes["n1"] = first
	for _, name := range names[1:] {
		nodes[name] = startViewsNode(t, env, ref, sc, keys[name], name, []string{first.Addr()}, acted)
	}
	leader, term := waitTerm(t, nodes, 1, 15*time.Second)
	t.Logf("term %d: leader %s", term, leader)

	killed := time.Now()
	nodes[leader].Kill()
	delete(nodes, leader)
	next, term2 := waitTerm(t, nodes, term+1, 15*time.Second)
	t.Logf("failover to %s (term %d) in %v", next, term2, time.Since(killed).Round(time.Millisecond))
	if next == leader {
		t.Fatal("the dead leader was re-elected")
	}
	// No two nodes acted as leader in one term. (Nodes keep running, so
	// read what was sent without closing the channel.)
	byTerm := map[string]string{}
	for len(acted) > 0 {
		a := <-acted
		var name string
		var tm uint64
		fmt.Sscanf(a, "%2s@%d", &name, &tm)
		key := fmt.Sprint(tm)
		if prev, ok := byTerm[key]; ok && prev != name {
			t.Fatalf("term %d had two acting leaders: %s and %s", tm, prev, name)
		}
		byTerm[key] = name
	}
}
