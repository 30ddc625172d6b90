package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/harness/datadir"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// The floor certificate is kept next to last_seq, whole, and a damaged one
// stops the node at start as a damaged last_seq does.
func TestFloorCertFile(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	data := t.TempDir()
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.DataDir = data })
	waitLeader(t, []*node.Node{n}, "5000", 15*time.Second)
	n.Kill()
	b, err := os.ReadFile(filepath.Join(data, "floor_cert"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := election.DecodeCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := os.ReadFile(filepath.Join(data, "last_seq"))
	if strings.TrimSpace(string(seq)) != strconv.FormatUint(c.Seq(), 10) {
		t.Fatalf("floor_cert has seq %d, last_seq %q", c.Seq(), seq)
	}
	if err := c.Receipt.Verify(env.Server.ReceiptKey()); err != nil {
		t.Fatalf("floor certificate: %v", err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(append([]byte(nil), b...), 0), []byte("garbage"), {}} {
		os.WriteFile(filepath.Join(data, "floor_cert"), bad, 0o600)
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
		if err := m.Start(context.Background()); !errors.Is(err, node.ErrStateFile) || !strings.Contains(err.Error(), "floor_cert") {
			m.Kill()
			t.Fatalf("floor_cert of %d bytes: Start returned %v, want ErrStateFile", len(bad), err)
		}
	}
}

// A runtime restored from an older copy of its data directory answers a
// restarted node below its floor; the node presents its floor certificate
// and the runtime, moved past it, certifies the node again above it.
func TestRestartedNodeHealsRolledBackRuntime(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	env.Stop()
	saved := t.TempDir()
	if err := datadir.Copy(saved, env.Dir); err != nil {
		t.Fatal(err)
	}
	env = env.Restart()
	data := t.TempDir()
	n := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.DataDir = data })
	waitLeader(t, []*node.Node{n}, "5000", 15*time.Second)
	floor := n.Leader().Seq
	n.Kill()
	env.Stop()
	os.RemoveAll(env.Dir)
	if err := datadir.Copy(env.Dir, saved); err != nil {
		t.Fatal(err)
	}
	env = env.Restart()
	m := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.DataDir = data })
	waitLeader(t, []*node.Node{m}, "5000", 15*time.Second)
	if got := m.Leader().Seq; got <= floor {
		t.Fatalf("leads at seq %d, floor was %d", got, floor)
	}
}
