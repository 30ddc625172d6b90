package scale

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node"
)

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// N is the number of nodes.
	N int
	// Views runs the signed-views scheme (built-in "election" function,
	// terms); otherwise the member-list scheme (built-in "leader").
	Views bool
	// Name is the cluster name; give each trial its own so that no state
	// in the runtime carries over.
	Name string
	// Profile is node.ConfigFor's profile; empty means "local".
	Profile string
	// Tune, if set, changes each node's configuration after the profile.
	Tune func(i int, cfg *node.Config)
	// Count wraps each node's transport to count what it sends; Classify
	// also decodes every packet to count certificates (CPU-heavy), so it
	// needs InsecureGossip.
	Count, Classify bool
	// InsecureGossip runs the nodes without a gossip key; by default they
	// share a fresh one, as a deployment does.
	InsecureGossip bool
	// OnEvent receives every event of every node's event log.
	OnEvent func(node.Event)
	// CountLogs counts memberlist's suspicion and failure log lines.
	CountLogs bool
	// JoinSeeds spreads the joins over several nodes: node i > 0 joins
	// through node i mod JoinSeeds (nodes 1 to JoinSeeds−1, the other
	// seeds, through node 0), so that no single node serves every join's
	// push/pull while a large cluster forms. 0 or 1: every node joins
	// through node 0.
	JoinSeeds int
}

// joinVia is the index of the node that node i (> 0) joins through.
func joinVia(i, seeds int) int {
	if seeds <= 1 || i < seeds {
		return 0
	}
	return i % seeds
}

// Cluster is a running set of nodes.
type Cluster struct {
	Names    []string
	Nodes    []*node.Node
	Counters []*Counters
	// Elects and Submits count the nodes' calls to the runtime, Errors
	// the failed ones.
	Elects, Submits, Errors atomic.Int64
	// Suspects and Failures count memberlist's "Suspect X has failed" and
	// "Marking X as failed" lines (only with CountLogs).
	Suspects, Failures atomic.Int64

	views bool
	killSet
}

// countingRuntime counts the calls a node makes to the runtime.
type countingRuntime struct {
	node.Runtime
	c *Cluster
}

func (r *countingRuntime) Elect(ctx context.Context, cl string, members []string) (*election.Certificate, error) {
	r.c.Elects.Add(1)
	cert, err := r.Runtime.Elect(ctx, cl, members)
	if err != nil {
		r.c.Errors.Add(1)
	}
	return cert, err
}

func (r *countingRuntime) Submit(ctx context.Context, in []byte) (*election.Certificate, error) {
	r.c.Submits.Add(1)
	cert, err := r.Runtime.Submit(ctx, in)
	if err != nil && !node.IsLeaseRefusal(err) {
		r.c.Errors.Add(1)
	}
	return cert, err
}

// eventWriter parses a node's event log lines (one JSON object per Write).
type eventWriter struct{ f func(node.Event) }

func (w eventWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var ev node.Event
		if json.Unmarshal(line, &ev) == nil {
			w.f(ev)
		}
	}
	return len(p), nil
}

// logCounter is a slog handler that counts memberlist's suspicion and
// failure lines and drops everything.
type logCounter struct{ c *Cluster }

func (h logCounter) Enabled(_ context.Context, l slog.Level) bool { return true }
func (h logCounter) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.HasPrefix(r.Message, "Suspect ") && strings.Contains(r.Message, "has failed"):
		h.c.Suspects.Add(1)
	case strings.HasPrefix(r.Message, "Marking ") && strings.Contains(r.Message, "as failed"):
		h.c.Failures.Add(1)
	}
	return nil
}
func (h logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCounter) WithGroup(string) slog.Handler      { return h }

// NodeName is the name of node i.
func NodeName(i int) string { return fmt.Sprintf("n%03d", i) }

// StartCluster starts o.N nodes on loopback, joining through the first
// (or through o.JoinSeeds of them). It returns once every node listens;
// use WaitStable to wait for agreement.
func StartCluster(ctx context.Context, rt *Runtime, o ClusterOptions) (_ *Cluster, err error) {
	if o.N < 1 {
		return nil, fmt.Errorf("scale: a cluster needs at least 1 node, got %d", o.N)
	}
	if o.Name == "" {
		o.Name = "scale"
	}
	c := &Cluster{views: o.Views, killSet: newKillSet(o.N)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	fn := "leader"
	var sc *cluster.Signed
	keys := make([]ed25519.PrivateKey, o.N)
	if o.Views {
		fn = "election"
		_, owner, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		cc := cluster.Config{Cluster: o.Name, Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
			LeaseMillis: cluster.DefaultLease.Milliseconds(), ViewTTLMillis: cluster.DefaultViewTTL.Milliseconds()}
		for i := range o.N {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			keys[i] = k
			cc.Members = append(cc.Members, cluster.Member{ID: NodeName(i), Key: k.Public().(ed25519.PublicKey)})
		}
		if sc, err = cluster.Sign(cc, owner); err != nil {
			return nil, err
		}
	}
	if o.Classify && !o.InsecureGossip {
		return nil, errors.New("scale: Classify reads the packets nodes send, so it needs InsecureGossip")
	}
	var gossipKey []byte
	if !o.InsecureGossip {
		gossipKey = make([]byte, 32)
		if _, err := rand.Read(gossipKey); err != nil {
			return nil, err
		}
	}
	logger := discard()
	if o.CountLogs {
		logger = slog.New(logCounter{c})
	}
	for i := range o.N {
		cfg, err := node.ConfigFor(o.Profile)
		if err != nil {
			return nil, err
		}
		name := NodeName(i)
		cfg.Name, cfg.Cluster, cfg.BindAddr, cfg.BindPort = name, o.Name, "127.0.0.1", 0
		cfg.GossipKey, cfg.InsecureGossip = gossipKey, o.InsecureGossip
		if i > 0 {
			cfg.Peers = []string{c.Nodes[joinVia(i, o.JoinSeeds)].Addr()}
		}
		rtm, id, sum, err := rt.NodeRuntime(ctx, fn, i)
		if err != nil {
			return nil, err
		}
		cfg.Runtime = &countingRuntime{Runtime: rtm, c: c}
		cfg.FunctionID, cfg.Checksum = id, sum
		cfg.Logger = logger
		if o.Views {
			cfg.ClusterConfig, cfg.Identity = sc, keys[i]
		}
		if o.OnEvent != nil {
			cfg.EventLog = eventWriter{o.OnEvent}
		}
		if o.Tune != nil {
			o.Tune(i, cfg)
		}
		if o.Count {
			ctr := &Counters{}
			ml := *cfg.Memberlist
			if ml.Transport, err = NewCountingTransport(cfg.BindAddr, ctr, o.Classify); err != nil {
				return nil, err
			}
			cfg.Memberlist = &ml
			c.Counters = append(c.Counters, ctr)
		}
		n, err := node.New(*cfg)
		if err != nil {
			return nil, err
		}
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
		c.Names = append(c.Names, name)
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// Index returns the index of the named node, or -1.
func (c *Cluster) Index(name string) int { return slices.Index(c.Names, name) }

// Kill stops node i abruptly (no leave message).
func (c *Cluster) Kill(i int) {
	if !c.markKilled(i) {
		return
	}
	c.Nodes[i].Kill()
}

// Close kills every node, in parallel.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.Kill(i) }()
	}
	wg.Wait()
}

// Agreement reports whether every node in idx holds a certificate with
// seq (or term) ≥ minSeq naming one leader other than exclude; with
// sameSeq, one certificate (the same seq too). It returns the leader and
// the lowest seq held.
func (c *Cluster) Agreement(idx []int, minSeq uint64, exclude string, sameSeq bool) (string, uint64, bool) {
	var leader string
	var seq uint64
	for k, i := range idx {
		l := c.Nodes[i].Leader()
		if l.Leader == "" || l.Leader == exclude || l.Seq < minSeq {
			return "", 0, false
		}
		if k == 0 {
			leader, seq = l.Leader, l.Seq
		} else if l.Leader != leader || (sameSeq && l.Seq != seq) {
			return "", 0, false
		}
		seq = min(seq, l.Seq)
	}
	return leader, seq, len(idx) > 0
}

// Holders counts the nodes in idx that hold a certificate with seq (term)
// ≥ minSeq for a leader other than exclude.
func (c *Cluster) Holders(idx []int, minSeq uint64, exclude string) int {
	k := 0
	for _, i := range idx {
		if l := c.Nodes[i].Leader(); l.Leader != "" && l.Leader != exclude && l.Seq >= minSeq {
			k++
		}
	}
	return k
}

// WaitStable waits until every live node sees every live node alive, all
// hold one certificate, and its leader knows it leads (with signed views:
// holds a renewed lease). It returns the leader and seq.
func (c *Cluster) WaitStable(ctx context.Context, within time.Duration) (string, uint64, error) {
	deadline := time.Now().Add(within)
	alive := c.Alive()
	for {
		if leader, seq, ok := c.Agreement(alive, 1, "", true); ok {
			full := true
			for _, i := range alive {
				if len(c.Nodes[i].Status().View) != len(alive) {
					full = false
					break
				}
			}
			if li := c.Index(leader); full && li >= 0 && c.Nodes[li].Leader().Self {
				return leader, seq, nil
			}
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("scale: %d nodes did not agree within %s: %s", len(alive), within, c.describe(alive))
		}
		select {
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// describe summarises the nodes' states for an error message.
func (c *Cluster) describe(idx []int) string {
	counts := map[string]int{}
	for _, i := range idx {
		st := c.Nodes[i].Status()
		counts[fmt.Sprintf("leader %q seq %d view %d runtime %s", st.Leader, st.Seq, len(st.View), st.Runtime.State)]++
	}
	var b strings.Builder
	writeStates(&b, counts)
	// Name what up to three nodes with a short view miss (five members
	// each at most), and how they see it.
	shown := 0
	for _, i := range idx {
		st := c.Nodes[i].Status()
		if len(st.View) == len(idx) || shown >= 3 {
			continue
		}
		shown++
		in := map[string]bool{}
		for _, v := range st.View {
			in[v] = true
		}
		state := map[string]string{}
		for _, m := range st.Members {
			state[m.Name] = m.State
		}
		missing := 0
		for _, j := range idx {
			if name := c.Names[j]; !in[name] {
				if missing < 5 {
					fmt.Fprintf(&b, "{%s misses %s: %q, departed %q} ", st.Name, name, state[name], st.Departed[name])
				}
				missing++
			}
		}
		if missing > 5 {
			fmt.Fprintf(&b, "{%s misses %d more} ", st.Name, missing-5)
		}
	}
	return strings.TrimSpace(b.String())
}

// Departures counts, over the live nodes, the members they saw depart
// other than the names in except: healthy nodes declared dead (or left).
func (c *Cluster) Departures(except ...string) int {
	return c.DeparturesAmong(c.Alive(), except...)
}

// DeparturesAmong is Departures over the nodes in idx.
func (c *Cluster) DeparturesAmong(idx []int, except ...string) int {
	k := 0
	for _, i := range idx {
		for name := range c.Nodes[i].Status().Departed {
			ok := false
			for _, e := range except {
				ok = ok || name == e
			}
			if !ok {
				k++
			}
		}
	}
	return k
}

// writeStates writes how many nodes are in each state, the most common
// first, at most five of them.
func writeStates(b *strings.Builder, counts map[string]int) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for i, k := range keys {
		if i == 5 {
			fmt.Fprintf(b, "[%d more states] ", len(keys)-i)
			break
		}
		fmt.Fprintf(b, "[%d× %s] ", counts[k], k)
	}
}
