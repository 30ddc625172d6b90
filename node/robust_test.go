package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// flakyRuntime wraps a runtime: it counts election calls and fails them
// while fail is set.
type flakyRuntime struct {
	node.Runtime
	fail  atomic.Bool
	calls atomic.Int64
}

func (r *flakyRuntime) Elect(ctx context.Context, cluster string, ids []string) (*election.Certificate, error) {
	r.calls.Add(1)
	if r.fail.Load() {
		return nil, errors.New("injected failure: runtime down")
	}
	return r.Runtime.Elect(ctx, cluster, ids)
}

// poll waits until f returns nil.
func poll(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, within, err)
}

// A memberlist peer whose name is not a valid member ID joins. Before the
// fix, the core refused every view that contained it, so the view froze
// and the leader's death was never acted on.
func TestBadMemberNameDoesNotStopFailover(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	first := startNode(t, env, ref, "5000", nil)
	nodes := []*node.Node{first, startNode(t, env, ref, "5001", []string{first.Addr()}), startNode(t, env, ref, "5002", []string{first.Addr()})}
	waitLeader(t, nodes, "5002", 10*time.Second)

	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.BindAddr, mc.BindPort, mc.Label = "bad name", "127.0.0.1", 0, "vouch/demo"
	mc.LogOutput = io.Discard
	kr, err := memberlist.NewKeyring(nil, gossipKey)
	if err != nil {
		t.Fatal(err)
	}
	mc.Keyring = kr
	bad, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Shutdown()
	if _, err := bad.Join([]string{first.Addr()}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		poll(t, 5*time.Second, n.Status().Name+" sees the bad member", func() error {
			st := n.Status()
			for _, m := range st.Members {
				if m.Name == "bad name" && m.State == "ignored" && !m.InView && st.Dropped["invalid_member_id"] == 1 {
					return nil
				}
			}
			return errors.New("not listed as ignored")
		})
	}
	nodes[2].Kill()
	waitLeader(t, nodes[:2], "5001", 10*time.Second)
	for _, n := range nodes[:2] {
		if v := n.Status().View; len(v) != 2 {
			t.Fatalf("%s: view %v", n.Status().Name, v)
		}
	}
}

// A node whose persisted floor is above anything the runtime signs (the
// runtime's state was reset) refuses every answer. It must back off as it
// would from a failed call, and say why, instead of calling again at once
// (not hundreds of calls a second).
func TestRefusedAnswersBackOff(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "last_seq"), []byte("1000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := &flakyRuntime{Runtime: node.NewClientRuntime(env.Client(client.Options{}), ref)}
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.DataDir, c.Runtime = data, rt })
	poll(t, 30*time.Second, "the node says why it refuses", func() error {
		if rs := n.Status().Runtime; rs.State != "refused" || !strings.Contains(rs.Detail, "below this node's floor 1000000") || !strings.Contains(rs.Detail, "delete") {
			return errors.New(rs.State + ": " + rs.Detail)
		}
		return nil
	})
	// How often it calls again is the core's decision: testdata/floor.txt
	// in node/internal/nodecore.
	if l := n.Leader(); l.Leader != "" {
		t.Fatalf("accepted a certificate below its floor: %+v", l)
	}
}

// A follower whose runtime calls failed, and which then got its
// certificate from a peer, must not claim the runtime is unreachable: it
// does not know. Before the fix it said "unreachable" forever.
func TestRuntimeStatusFollowsReality(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	rt := &flakyRuntime{Runtime: node.NewClientRuntime(env.Client(client.Options{}), ref)}
	rt.fail.Store(true)
	b := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.Runtime = rt })
	poll(t, 5*time.Second, "unreachable while calls fail", func() error {
		if rs := b.Status().Runtime; rs.State != "unreachable" || rs.LastFailure == nil || rs.RetryAt == "" {
			return errors.New(rs.State)
		}
		return nil
	})
	a := mkNode(t, env, ref, "5001", []string{b.Addr()}, nil)
	waitLeader(t, []*node.Node{a, b}, "5001", 10*time.Second)
	poll(t, 5*time.Second, "unknown once a peer's certificate covers the view", func() error {
		st := b.Status()
		rs := st.Runtime
		if rs.State != "unknown" || !strings.Contains(rs.Detail, "came from peer") || rs.RetryAt != "" || st.Certificate.From == "runtime" {
			return errors.New(rs.State + ": " + rs.Detail)
		}
		return nil
	})
	// The runtime recovers and b needs it again: reachable.
	rt.fail.Store(false)
	a.Kill()
	waitLeader(t, []*node.Node{b}, "5000", 15*time.Second)
	if rs := b.Status().Runtime; rs.State != "reachable" || rs.LastSuccess == nil || !rs.LastSuccess.After(*rs.LastFailure) {
		t.Fatalf("after recovery: %+v", rs)
	}
}

// The state file: written whole and synced, and a damaged one stops the
// node at start instead of silently dropping its replay floor.
func TestStateFile(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	data := t.TempDir()
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.DataDir = data })
	waitLeader(t, []*node.Node{n}, "5000", 10*time.Second)
	n.Kill()
	b, err := os.ReadFile(filepath.Join(data, "last_seq"))
	if err != nil || !strings.HasSuffix(string(b), "\n") || strings.TrimSpace(string(b)) == "0" {
		t.Fatalf("last_seq %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, "last_seq.tmp")); err == nil {
		t.Fatal("temporary file left behind")
	}
	for _, bad := range []string{"12x\n", "409", ""} {
		os.WriteFile(filepath.Join(data, "last_seq"), []byte(bad), 0o600)
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = gossipKey
		cfg.Name, cfg.Cluster, cfg.BindPort, cfg.DataDir = "5000", "demo", 0, data
		cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		m, err := node.New(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); !errors.Is(err, node.ErrStateFile) {
			m.Kill()
			t.Fatalf("last_seq %q: Start returned %v, want ErrStateFile", bad, err)
		}
	}
}

// The fencing token is the seq OnStartedLeading got; it does not grow with
// the leader's refreshes, while Leadership.Seq does.
func TestFencingTokenIsStable(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	tokens := make(chan uint64, 4)
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) {
		c.RefreshInterval = 100 * time.Millisecond
		c.OnStartedLeading = func(ctx context.Context, token uint64) { tokens <- token }
	})
	var tok uint64
	select {
	case tok = <-tokens:
	case <-time.After(10 * time.Second):
		t.Fatal("never led")
	}
	poll(t, 10*time.Second, "refreshes raise the seq", func() error {
		if l := n.Leader(); l.Seq < tok+2 {
			return errors.New("no refresh yet")
		}
		return nil
	})
	if l := n.Leader(); l.Token != tok || !l.Self {
		t.Fatalf("leadership %+v, want token %d", l, tok)
	}
	if len(tokens) != 0 {
		t.Fatal("a refresh restarted the leadership")
	}
}

// Two nodes sharing one Registerer would silently lose the second node's
// metrics; New says so instead.
func TestMetricsRegistrationErrors(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	reg := prometheus.NewRegistry()
	mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.Registerer = reg })
	cfg := node.DefaultLocalConfig()
	cfg.GossipKey = gossipKey
	cfg.Name, cfg.Registerer = "5001", reg
	cfg.Runtime = node.NewClientRuntime(env.Client(client.Options{}), ref)
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	if _, err := node.New(*cfg); err == nil || !strings.Contains(err.Error(), "share one Registerer") {
		t.Fatalf("New with a shared Registerer: %v", err)
	}
}

// rateLimited answers every election call with HTTP 429.
type rateLimited struct {
	node.Runtime
	calls atomic.Int64
}

func (r *rateLimited) Elect(context.Context, string, []string) (*election.Certificate, error) {
	r.calls.Add(1)
	return nil, &api.Error{Code: "rate_limited", Message: "too many runs", Status: http.StatusTooManyRequests}
}

// A node whose token is over its rate backs off like any failed call;
// before, it retried every 50-100 ms for as long as the 429s lasted.
func TestRateLimitedCallsBackOff(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	rt := &rateLimited{Runtime: node.NewClientRuntime(env.Client(client.Options{}), ref)}
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.Runtime = rt })
	// How long it waits between calls is the core's decision:
	// testdata/backoff.txt in node/internal/nodecore.
	poll(t, 30*time.Second, "the node reports the rate limit", func() error {
		if st := n.Status().Runtime; st.State != "unreachable" || !strings.Contains(st.LastError, "too many runs") {
			return fmt.Errorf("runtime status %+v", st)
		}
		return nil
	})
}

// syncBuffer is a log sink for tests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A peer given by host name is a member once joined: the node must not
// join it again every ReconnectInterval (before: an INFO line a second).
func TestHostnamePeerIsNotRejoined(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := startNode(t, env, ref, "5001", nil)
	var logs syncBuffer
	b := mkNode(t, env, ref, "5000", []string{net.JoinHostPort("localhost", strconv.Itoa(a.Port()))}, func(c *node.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.ReconnectInterval = 200 * time.Millisecond
	})
	waitLeader(t, []*node.Node{a, b}, "5001", 10*time.Second)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if out := logs.String(); strings.Contains(out, "reconnected to members") || strings.Contains(out, "reconnect attempt") {
			t.Fatalf("the node joins its host-name peer again:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
