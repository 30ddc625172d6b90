package node_test

import (
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// A node's Config.Meta reaches its peers' /status over gossip.
func TestMetaGossiped(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := mkNode(t, env, ref, "7001", nil, func(cfg *node.Config) { cfg.Meta = map[string]string{"svc": "10.0.0.1:443"} })
	b := startNode(t, env, ref, "7002", []string{a.Addr()})
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range b.Status().Members {
			if m.Name == "7001" && m.Meta["svc"] == "10.0.0.1:443" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("7002 does not show 7001's meta: %+v", b.Status().Members)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
