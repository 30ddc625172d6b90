package chaos

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// TestFreePortsFollowTheSeed: a replay gets the same ports, so the same
// node names.
func TestFreePortsFollowTheSeed(t *testing.T) {
	a, b := freePorts(t, 6, 42), freePorts(t, 6, 42)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 gave %v, then %v", a, b)
	}
	if c := freePorts(t, 6, 43); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same ports %v", a)
	}
	for _, p := range a {
		if p < 20000 || p >= 32000 {
			t.Fatalf("port %d outside 20000-31999 (below the ephemeral range)", p)
		}
	}
}

// TestRetarget: a kill whose target is already down hits the next node
// up in index order, wrapping around, the same way every time.
func TestRetarget(t *testing.T) {
	h := &harness{t: t}
	for _, up := range []bool{true, false, false, true, false} {
		h.members = append(h.members, &member{up: up})
	}
	r := &runner{h: h}
	for from, want := range map[int]int{1: 3, 2: 3, 4: 0, 0: 3, 3: 0} {
		if got := r.retarget(from); got != want {
			t.Errorf("retarget(%d) = %d, want %d", from, got, want)
		}
	}
	for _, m := range h.members {
		m.up = false
	}
	if got := r.retarget(2); got != -1 {
		t.Errorf("every node down: retarget = %d, want -1", got)
	}
}

// TestDeathWatch starts real in-process nodes: one stopped by the
// harness (expected) and one that stops behind its back, after which
// the harness "kills" it as a schedule would. Only the second is an
// unexpected death, and it is caught when it happens, not only at the
// end.
func TestDeathWatch(t *testing.T) {
	h := &harness{t: t}
	ports := freePorts(t, 2, drawSeed())
	var nodes []*node.Node
	for _, p := range ports {
		cfg := node.DefaultLocalConfig()
		cfg.GossipKey = testGossipKey
		cfg.Name, cfg.BindAddr, cfg.BindPort = strconv.Itoa(p), "127.0.0.1", p
		cfg.Runtime, cfg.FunctionID, cfg.Checksum = deadRuntime{}, "f", "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		n, err := node.New(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Kill)
		nodes = append(nodes, n)
		m := &member{name: cfg.Name, node: n, up: true, watch: &deathWatch{}}
		h.members = append(h.members, m)
		h.watchInProcess(m.name, n, m.watch)
	}
	// The harness kills the first: expected.
	h.members[0].watch.expected.Store(true)
	nodes[0].Kill()
	// The second stops on its own.
	nodes[1].Kill()
	err := poll(context.Background(), 10*time.Second, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.deaths) == 0 {
			return io.EOF
		}
		return nil
	})
	if err != nil {
		t.Fatal("the watcher did not report the node that stopped on its own")
	}
	// Killing it afterwards, as a schedule would, does not hide it, and
	// the end-of-run check does not report it twice.
	h.members[1].watch.expected.Store(true)
	deaths := h.unexpectedDeaths()
	if len(deaths) != 1 || !strings.Contains(deaths[0], h.members[1].name+" stopped on its own") {
		t.Fatalf("deaths %q", deaths)
	}
}
