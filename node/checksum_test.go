package node_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// New's errors name the Config field at fault, and a caller can branch on
// the missing pieces.
func TestNewNamesConfigFields(t *testing.T) {
	for _, c := range []struct {
		name  string
		tune  func(*node.Config)
		want  string
		isErr error
	}{
		{"no runtime", func(c *node.Config) { c.Runtime = nil }, "Config.Runtime", node.ErrNoRuntime},
		{"no function ID", func(c *node.Config) { c.FunctionID = "" }, "Config.FunctionID", node.ErrNoFunction},
		{"no checksum", func(c *node.Config) { c.Checksum = "" }, "Config.Checksum", node.ErrNoFunction},
		{"short checksum", func(c *node.Config) { c.Checksum = "abcd" }, `Config.Checksum: function checksum "abcd" is 4 characters`, nil},
		{"checksum not hex", func(c *node.Config) { c.Checksum = strings.Repeat("x", 64) }, "Config.Checksum: function checksum", nil},
		{"upper-case checksum", func(c *node.Config) { c.Checksum = strings.Repeat("AB", 32) }, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkNew(t, func(cfg *node.Config) { cfg.GossipKey = gossipKey; c.tune(cfg) }, c.want, c.isErr)
			if err != nil && (strings.Contains(err.Error(), "--") || strings.Contains(err.Error(), "-fh")) {
				t.Fatalf("New: %v names a command-line flag", err)
			}
		})
	}
}

// A checksum given in upper case, to the node's Config or to its runtime's
// function reference, is the same checksum: the nodes agree on a verified
// leader instead of refusing every certificate.
func TestUpperCaseChecksum(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	upper := ref
	upper.Checksum = strings.ToUpper(ref.Checksum)
	if upper.Checksum == ref.Checksum {
		t.Fatalf("checksum %s has no letters", ref.Checksum)
	}
	// 5000: upper case in its Config only; 5001: in its runtime's reference
	// only; 5002: in both.
	first := mkNode(t, env, ref, "5000", nil, func(c *node.Config) { c.Checksum = upper.Checksum })
	second := mkNode(t, env, upper, "5001", []string{first.Addr()}, func(c *node.Config) { c.Checksum = ref.Checksum })
	third := mkNode(t, env, upper, "5002", []string{first.Addr()}, nil)
	nodes := []*node.Node{first, second, third}
	waitLeader(t, nodes, "5002", 20*time.Second)
	for _, n := range nodes {
		st := n.Status()
		if k := st.Rejections[election.ReasonWrongChecksum]; k != 0 {
			t.Errorf("%s rejected %d certificates for their checksum", st.Name, k)
		}
		if got := st.Runtime.Checksum; got != ref.Checksum {
			t.Errorf("%s: status shows checksum %q, want %q", st.Name, got, ref.Checksum)
		}
	}
}

// checkNew calls node.New with a valid configuration changed by tune, and
// fails the test unless New succeeds (want empty) or fails with an error
// that says want and wraps isErr (when not nil). It returns New's error.
func checkNew(t *testing.T, tune func(*node.Config), want string, isErr error) error {
	t.Helper()
	cfg := node.DefaultLocalConfig()
	cfg.Name, cfg.Runtime, cfg.FunctionID, cfg.Checksum = "5000", &flakyRuntime{}, "fn", strings.Repeat("ab", 32)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	tune(cfg)
	_, err := node.New(*cfg)
	if want == "" {
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return nil
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("New: %v, want an error saying %q", err, want)
	}
	if isErr != nil && !errors.Is(err, isErr) {
		t.Fatalf("New: %v does not wrap %v", err, isErr)
	}
	return err
}
