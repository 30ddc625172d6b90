package node_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// acts records when each node's leadership work started and when it
// ended (its OnStartedLeading returned), to check that a handover never
// overlaps.
type acts struct {
	mu     sync.Mutex
	starts map[string][]time.Time
	ends   map[string][]time.Time
	newL   map[string][]string
}

func newActs() *acts {
	return &acts{starts: map[string][]time.Time{}, ends: map[string][]time.Time{}, newL: map[string][]string{}}
}

// tune makes a node record its leaderships; the work takes 100 ms to
// wind down after its context ends, as real work would.
func (a *acts) tune(name string) func(*node.Config) {
	return func(cfg *node.Config) {
		cfg.OnStartedLeading = func(ctx context.Context, _ uint64) {
			a.mu.Lock()
			a.starts[name] = append(a.starts[name], time.Now())
			a.mu.Unlock()
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond)
			a.mu.Lock()
			a.ends[name] = append(a.ends[name], time.Now())
			a.mu.Unlock()
		}
		cfg.OnNewLeader = func(id string) {
			a.mu.Lock()
			a.newL[name] = append(a.newL[name], id)
			a.mu.Unlock()
		}
		cfg.ResignHold = 5 * time.Second
	}
}

// noOverlap checks that from's last leadership ended before to's last
// one started. It first waits (30 s at most) for from to have stopped and
// to to have started since: the nodes may agree on to's certificate
// before to starts acting.
func (a *acts) noOverlap(t *testing.T, from, to string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		e, s := a.ends[from], a.starts[to]
		ready := len(e) > 0 && len(e) == len(a.starts[from]) && len(s) > 0 && s[len(s)-1].After(e[len(e)-1])
		a.mu.Unlock()
		if ready {
			break
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ends[from]) == 0 || len(a.starts[to]) == 0 {
		t.Fatalf("%s ended %v, %s started %v", from, a.ends[from], to, a.starts[to])
	}
	end, start := a.ends[from][len(a.ends[from])-1], a.starts[to][len(a.starts[to])-1]
	if !end.Before(start) {
		t.Fatalf("%s acted until %v, after %s started at %v: overlap %v", from, end, to, start, end.Sub(start))
	}
	t.Logf("%s stopped %v before %s started", from, start.Sub(end), to)
}

func TestResignMemberList(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := newActs()
	n0 := mkNode(t, env, ref, "5000", nil, a.tune("5000"))
	n1 := mkNode(t, env, ref, "5001", []string{n0.Addr()}, a.tune("5001"))
	n2 := mkNode(t, env, ref, "5002", []string{n0.Addr()}, a.tune("5002"))
	nodes := []*node.Node{n0, n1, n2}
	waitLeader(t, nodes, "5002", 30*time.Second)
	if err := n0.Resign(context.Background()); !errors.Is(err, node.ErrNotLeader) {
		t.Fatalf("a follower's Resign: %v", err)
	}
	if err := n2.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, nodes, "5001", 30*time.Second)
	a.noOverlap(t, "5002", "5001")
	// The hold keeps 5002 out for 5 s; then the highest-ID policy names
	// it again (the member list has no stickiness).
	waitLeader(t, nodes, "5002", 30*time.Second)

	// A leader that shuts down stops acting before it leaves.
	if err := n2.Shutdown(context.Background()); err != nil && !errors.Is(err, node.ErrLeaveTimeout) {
		t.Fatal(err)
	}
	waitLeader(t, nodes[:2], "5001", 30*time.Second)
	a.noOverlap(t, "5002", "5001")
	a.mu.Lock()
	defer a.mu.Unlock()
	// Every change, in order (the first ones depend on how fast 5001 and
	// 5002 joined).
	if got := strings.Join(a.newL["5000"], " "); !strings.HasSuffix(got, "5002 5001 5002 5001") {
		t.Errorf("OnNewLeader at 5000: %v", got)
	}
}

func TestResignSignedViewsIsSticky(t *testing.T) {
	env := enclavetest.Start(t)
	ref, sc, keys := viewsCluster(t, env, cluster.PolicyHighest, "a", "b", "c")
	a := newActs()
	var nodes []*node.Node
	for _, name := range []string{"a", "b", "c"} {
		var peers []string
		if len(nodes) > 0 {
			peers = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, mkNode(t, env, ref, name, peers, func(cfg *node.Config) {
			cfg.ClusterConfig, cfg.Identity = sc, keys[name]
			a.tune(name)(cfg)
		}))
	}
	// Who leads first depends on who had a majority first.
	old := agreedLeader(t, nodes, "")
	byName := map[string]*node.Node{"a": nodes[0], "b": nodes[1], "c": nodes[2]}
	// The leader acts once its own submission renewed its lease, which may
	// come a moment after every node holds the certificate naming it.
	waitActing(t, byName[old], 30*time.Second)
	if err := byName[old].Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	next := agreedLeader(t, nodes, old)
	a.noOverlap(t, old, next)
	// The resigned node comes back into every view as a follower, and
	// the new leader keeps its office: with signed views a leader keeps
	// it while it lives, whatever the policy would prefer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := nodes[0].Status()
		if len(st.View) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c never came back into a's view: %v", st.View)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // two leases
	for _, n := range nodes {
		if l := n.Leader(); l.Leader != next {
			t.Fatalf("%s: leader %q after c came back", n.Status().Name, l.Leader)
		}
	}
}

// waitActing waits until n acts as leader (signed views: holds a renewed
// lease).
func waitActing(t *testing.T, n *node.Node, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !n.Leader().Self {
		if time.Now().After(deadline) {
			t.Fatalf("%s never acted as leader", n.Status().Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agreedLeader waits until every node knows the same leader, other than
// not.
func agreedLeader(t *testing.T, nodes []*node.Node, not string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l := nodes[0].Leader().Leader
		same := l != "" && l != not
		for _, n := range nodes[1:] {
			same = same && n.Leader().Leader == l
		}
		if same {
			return l
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the nodes never agreed on a leader")
	return ""
}

func TestRunReleaseOnCancel(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := newActs()
	n0 := mkNode(t, env, ref, "5000", nil, a.tune("5000"))
	cfg := node.DefaultLocalConfig()
	cfg.GossipKey = gossipKey
	cfg.Name, cfg.Cluster, cfg.BindPort, cfg.Peers = "5001", "demo", 0, []string{n0.Addr()}
	cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ReleaseOnCancel = true
	a.tune("5001")(cfg)
	n1, err := node.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n1.Run(ctx) }()
	sub := n0.SubscribeContext(ctx)
	waitLeader(t, []*node.Node{n0}, "5001", 30*time.Second)
	cancel()
	if err := <-ran; err != nil && !errors.Is(err, node.ErrLeaveTimeout) {
		t.Fatal(err)
	}
	waitLeader(t, []*node.Node{n0}, "5000", 30*time.Second)
	a.noOverlap(t, "5001", "5000")
	for range sub { // closed once ctx ended
	}
}
