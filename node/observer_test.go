package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// An observer joins and leaves a formed cluster of three, again and
// again: the nodes' leader and seq, their election views and the
// runtime's run count do not move, while each observer verifies the
// leader's certificate itself, against the runtime it attested, with no
// function token.
func TestObserverChangesNothing(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	proxy := enclavetest.NewProxy(t, env.URL) // counts the nodes' runtime calls
	tune := func(c *node.Config) {
		c.RefreshInterval = time.Hour // no refresh falls inside the test
		rc, err := client.New(proxy.URL, client.Options{Trust: env.Trust()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		c.Runtime = node.NewClientRuntime(rc, ref)
	}
	a := mkNode(t, env, ref, "5000", nil, tune)
	b := mkNode(t, env, ref, "5001", []string{a.Addr()}, tune)
	c := mkNode(t, env, ref, "5002", []string{a.Addr()}, tune)
	nodes := []*node.Node{a, b, c}
	waitLeader(t, nodes, "5002", 30*time.Second)
	// Settle: every node holds the certificate for the view of three.
	poll(t, 30*time.Second, "a certificate for all three on every node", func() error {
		for _, n := range nodes {
			st := n.CurrentStatus(context.Background())
			if st.Certificate == nil || len(st.Certificate.Members) != 3 || st.Seq != c.Leader().Seq {
				return fmt.Errorf("%s: seq %d, certificate %+v", st.Name, st.Seq, st.Certificate)
			}
		}
		return nil
	})
	const run = "POST /v1/functions/{id}/run"
	seq, runs := c.Leader().Seq, proxy.Count(run)

	noToken := client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum} // verification needs none
	for i := range 3 {
		name := fmt.Sprintf("observer-%d", i)
		o := mkNode(t, env, noToken, name, []string{b.Addr()}, func(c *node.Config) { c.Observer = true })
		poll(t, 30*time.Second, name+" verifies leader 5002", func() error {
			v := o.ClusterView(context.Background())
			if v.Leader != "5002" || v.Seq != seq || !v.Observer || len(v.Members) != 3 {
				return fmt.Errorf("view: leader %q seq %d (the cluster's %d) observer %v members %v", v.Leader, v.Seq, seq, v.Observer, v.Members)
			}
			return v.Verify()
		})
		poll(t, 30*time.Second, "every node lists "+name+" as an observer", func() error {
			for _, n := range nodes {
				if st := n.CurrentStatus(context.Background()); !slices.Contains(st.Observers, name) {
					return fmt.Errorf("%s lists observers %v", st.Name, st.Observers)
				}
			}
			return nil
		})
		if err := o.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		poll(t, 30*time.Second, "every node saw "+name+" leave", func() error {
			for _, n := range nodes {
				if st := n.CurrentStatus(context.Background()); len(st.Observers) > 0 {
					return fmt.Errorf("%s still lists observers %v", st.Name, st.Observers)
				}
			}
			return nil
		})
	}
	for _, n := range nodes {
		st := n.CurrentStatus(context.Background())
		if st.Leader != "5002" || st.Seq != seq || !slices.Equal(st.View, []string{"5000", "5001", "5002"}) || len(st.Departed) > 0 {
			t.Errorf("%s after the observers: leader %q seq %d (want %d), view %v, departed %v", st.Name, st.Leader, st.Seq, seq, st.View, st.Departed)
		}
		for _, m := range st.Members {
			if m.Name != "5000" && m.Name != "5001" && m.Name != "5002" {
				t.Errorf("%s lists member %+v", st.Name, m)
			}
		}
	}
	if got := proxy.Count(run); got != runs {
		t.Errorf("the observers caused %d runtime calls", got-runs)
	}
}

// Config.Meta may not claim to be an observer.
func TestObserverMetaKeyReserved(t *testing.T) {
	checkNew(t, func(c *node.Config) {
		c.GossipKey, c.Meta = gossipKey, map[string]string{node.ObserverMetaKey: "1"}
	}, "reserved", nil)
}

// With signed views: observers (with the cluster configuration, but no
// identity and no function token) join and leave; the term and the
// leader do not move, no node's view ever holds them, and the observers
// never run the function (their only runtime request is attestation).
func TestObserverSignedViews(t *testing.T) {
	env := enclavetest.Start(t)
	names := []string{"n1", "n2", "n3"}
	ref, sc, keys := viewsCluster(t, env, cluster.PolicyHighest, names...)
	acted := make(chan string, 64)
	nodes := map[string]*node.Node{}
	first := startViewsNode(t, env, ref, sc, keys["n1"], "n1", nil, acted)
	nodes["n1"] = first
	for _, name := range names[1:] {
		nodes[name] = startViewsNode(t, env, ref, sc, keys[name], name, []string{first.Addr()}, acted)
	}
	leader, term := waitTerm(t, nodes, 1, 30*time.Second)

	proxy := enclavetest.NewProxy(t, env.URL) // the observers' runtime
	noToken := client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum}
	for i := range 2 {
		name := fmt.Sprintf("observer-%d", i)
		o := mkNode(t, env, noToken, name, []string{nodes["n2"].Addr()}, func(c *node.Config) {
			c.Observer, c.ClusterConfig = true, sc
			rc, err := client.New(proxy.URL, client.Options{Trust: env.Trust()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rc.Close)
			c.Runtime = node.NewClientRuntime(rc, noToken)
		})
		poll(t, 30*time.Second, name+" verifies the term", func() error {
			v := o.ClusterView(context.Background())
			if v.Scheme != "term" || v.Leader != leader || v.Seq != term || len(v.Members) != 3 || v.LeaseUntil == nil {
				return fmt.Errorf("view: scheme %s leader %q term %d members %v", v.Scheme, v.Leader, v.Seq, v.Members)
			}
			return v.Verify()
		})
		for _, n := range nodes {
			if st := n.CurrentStatus(context.Background()); slices.Contains(st.View, name) {
				t.Errorf("%s has observer %s in its view %v", st.Name, name, st.View)
			}
		}
		if err := o.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if l, tm := waitTerm(t, nodes, 1, 30*time.Second); l != leader || tm != term {
		t.Errorf("after the observers: leader %s term %d, want %s term %d", l, tm, leader, term)
	}
	if k := proxy.Count("POST /v1/functions/{id}/run"); k != 0 {
		t.Errorf("the observers ran the function %d times", k)
	}
	if k := proxy.Count("GET /v1/identity"); k == 0 {
		t.Errorf("the observers never attested the runtime")
	}
}
