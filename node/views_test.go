package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/receipt"
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
	cfg.GossipKey = gossipKey
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
	return runNode(t, cfg)
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

// termRuntime stands in for the stateful election function: every
// submission gets the current term's certificate with a fresh receipt, and
// bump starts a new term that keeps the same leader (as a configuration
// change does).
type termRuntime struct {
	key     ed25519.PrivateKey
	id, sum string
	digest  string
	leader  string
	lease   time.Duration
	mu      sync.Mutex
	term    uint64
	seq     uint64
	outputs map[uint64][]byte
	submits atomic.Int64
	refuse  atomic.Bool // refuse renewals, as for a leader that lost its majority
}

func (r *termRuntime) Key(context.Context) (ed25519.PublicKey, error) {
	return r.key.Public().(ed25519.PublicKey), nil
}

func (r *termRuntime) Elect(context.Context, string, []string) (*election.Certificate, error) {
	return nil, errors.New("unused")
}

func (r *termRuntime) Describe() node.RuntimeInfo { return node.RuntimeInfo{URL: "fake"} }

func (r *termRuntime) bump() {
	r.mu.Lock()
	r.term++
	r.mu.Unlock()
}

func (r *termRuntime) Submit(_ context.Context, input []byte) (*election.Certificate, error) {
	r.submits.Add(1)
	if r.refuse.Load() {
		// What the runtime answers when the function refuses a sealed input.
		return nil, &api.Error{Status: http.StatusUnprocessableEntity, Code: api.CodeFunctionFailed, Kind: "failed",
			Refusal: api.RefusalLeaseNotRenewed, Message: "function refused its input (lease_not_renewed): " + api.RefusalTexts[api.RefusalLeaseNotRenewed] + "; details withheld: the input was sealed"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	now := time.Now()
	// One output per term, as the real function stores it.
	out := r.outputs[r.term]
	if out == nil {
		out, _ = json.Marshal(election.TermOutcome{Cluster: "demo", ConfigDigest: r.digest, Term: r.term, Leader: r.leader,
			MembersDigest: strings.Repeat("0", 64), IssuedAtMs: now.UnixMilli(), LeaseMs: r.lease.Milliseconds(), Policy: cluster.PolicyHighest, Mode: "closed"})
		if r.outputs == nil {
			r.outputs = map[uint64][]byte{}
		}
		r.outputs[r.term] = out
	}
	rc := receipt.Receipt{FunctionID: r.id, FunctionChecksum: r.sum, InputSHA256: receipt.SHA256Hex(input), OutputSHA256: receipt.SHA256Hex(out), Seq: r.seq, Time: now}
	if err := rc.Sign(r.key); err != nil {
		return nil, err
	}
	return &election.Certificate{Output: out, Receipt: rc}, nil
}

func newTermNode(t *testing.T, rt *termRuntime, tune func(*node.Config)) *node.Node {
	t.Helper()
	_, owner, _ := ed25519.GenerateKey(rand.Reader)
	_, me, _ := ed25519.GenerateKey(rand.Reader)
	sc, err := cluster.Sign(cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: rt.lease.Milliseconds(), ViewTTLMillis: 1000, Members: []cluster.Member{{ID: "a", Key: me.Public().(ed25519.PublicKey)}}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	_, rk, _ := ed25519.GenerateKey(rand.Reader)
	rt.key, rt.id, rt.sum, rt.digest, rt.leader = rk, "fn", strings.Repeat("ab", 32), sc.Config.Digest(), "a"
	cfg := node.DefaultLocalConfig()
	cfg.GossipKey = gossipKey
	cfg.Name, cfg.Cluster, cfg.BindPort = "a", "demo", 0
	cfg.Runtime, cfg.FunctionID, cfg.Checksum = rt, rt.id, rt.sum
	cfg.ClusterConfig, cfg.Identity = sc, me
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tune != nil {
		tune(cfg)
	}
	return runNode(t, cfg)
}

// With signed views the term is the fencing token. A new term that keeps
// the same leader must restart the leadership under the new term: the old
// context ends and OnStartedLeading runs again with the new term, so the
// token the leader hands to storage is always current.
func TestNewTermRestartsLeadership(t *testing.T) {
	rt := &termRuntime{lease: time.Second, term: 1}
	type start struct {
		ctx  context.Context
		term uint64
	}
	starts := make(chan start, 8)
	stops := make(chan struct{}, 8)
	n := newTermNode(t, rt, func(c *node.Config) {
		c.OnStartedLeading = func(ctx context.Context, term uint64) { starts <- start{ctx, term} }
		c.OnStoppedLeading = func() { stops <- struct{}{} }
	})
	var first start
	select {
	case first = <-starts:
	case <-time.After(10 * time.Second):
		t.Fatal("never led")
	}
	if first.term != 1 {
		t.Fatalf("led term %d, want 1", first.term)
	}
	rt.bump()
	var second start
	select {
	case second = <-starts:
	case <-time.After(10 * time.Second):
		t.Fatal("the new term did not restart the leadership")
	}
	if second.term != 2 || first.ctx.Err() == nil || second.ctx.Err() != nil {
		t.Fatalf("restart: term %d, old context %v, new context %v", second.term, first.ctx.Err(), second.ctx.Err())
	}
	select {
	case <-stops:
	case <-time.After(5 * time.Second):
		t.Fatal("OnStoppedLeading did not run for the old term")
	}
	poll(t, 5*time.Second, "token", func() error {
		if l := n.Leader(); l.Token != 2 || l.Seq != 2 || !l.Self {
			return fmt.Errorf("leadership %+v", l)
		}
		return nil
	})
}

// Signed views: a runtime whose terms are below the node's floor has had
// its state reset. The node refuses the answers, backs off and says why.
func TestViewsRefusedAnswersBackOff(t *testing.T) {
	rt := &termRuntime{lease: time.Second, term: 1}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "last_seq"), []byte("100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newTermNode(t, rt, func(c *node.Config) { c.DataDir = data })
	poll(t, 30*time.Second, "refused", func() error {
		if rs := n.Status().Runtime; rs.State != "refused" || !strings.Contains(rs.Detail, "term 1 is below this node's floor 100") {
			return errors.New(rs.State + ": " + rs.Detail)
		}
		return nil
	})
	// The backoff itself: testdata/views_floor.txt in node/internal/nodecore.
}

// The leadership context's deadline is the lease end, renewals move it,
// and when renewals stop it ends by itself at the lease end
// (DeadlineExceeded), not by a cancellation from the node's loop.
func TestLeadershipContextFollowsLease(t *testing.T) {
	rt := &termRuntime{lease: time.Second, term: 1}
	ctxs := make(chan context.Context, 8)
	n := newTermNode(t, rt, func(c *node.Config) {
		c.OnStartedLeading = func(ctx context.Context, term uint64) { ctxs <- ctx }
	})
	var ctx context.Context
	select {
	case ctx = <-ctxs:
	case <-time.After(10 * time.Second):
		t.Fatal("never led")
	}
	first, ok := ctx.Deadline()
	if !ok {
		t.Fatal("the leadership context has no deadline")
	}
	if ctx.Err() == nil {
		if l := n.Leader(); l.Self && l.LeaseUntil.Before(first) {
			t.Fatalf("Leader().LeaseUntil %v before the context's deadline %v", l.LeaseUntil, first)
		}
	}
	// The leader renews every lease/4.
	poll(t, 10*time.Second, "a renewal moves the deadline", func() error {
		if ctx.Err() != nil {
			select {
			case ctx = <-ctxs: // a renewal handled late starts a new leadership
				first, _ = ctx.Deadline()
			default:
			}
			return fmt.Errorf("context ended: %v", ctx.Err())
		}
		if d, _ := ctx.Deadline(); !d.After(first) {
			return fmt.Errorf("deadline still %v", d)
		}
		return nil
	})
	rt.refuse.Store(true)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context outlived refused renewals")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("ended with %v, want the lease end (DeadlineExceeded)", ctx.Err())
	}
	if d, _ := ctx.Deadline(); time.Now().Before(d) {
		t.Fatalf("ended before its deadline %v", d)
	}
	poll(t, 10*time.Second, "not leading", func() error {
		if l := n.Leader(); l.Self || l.Token != 0 {
			return fmt.Errorf("leadership %+v after the lease ran out", l)
		}
		return nil
	})
}
