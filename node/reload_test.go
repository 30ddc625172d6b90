package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/token"
)

// A node whose token is swapped with Reload before it expires keeps
// calling the runtime after the first token expired, and stays ready; a
// node left with the expired token turns unready, naming the runtime.
func TestReloadTokenAndReadyz(t *testing.T) {
	env := enclavetest.Start(t)
	long := env.DeployLeader()
	c := env.Client(client.Options{})
	short, err := c.MintToken(context.Background(), long.ID, long.Checksum, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.Parse(short.FunctionToken)
	if err != nil {
		t.Fatal(err)
	}
	ref := long
	ref.Token = short.FunctionToken
	tune := func(cfg *node.Config) { cfg.RefreshInterval = 300 * time.Millisecond }
	var rts [2]*node.ClientRuntime
	var nodes [2]*node.Node
	for i, cluster := range []string{"reloaded", "stale"} {
		nodes[i] = mkNode(t, env, ref, "6000", nil, func(cfg *node.Config) {
			tune(cfg)
			cfg.Cluster = cluster
			rts[i] = cfg.Runtime.(*node.ClientRuntime)
		})
	}
	waitLeader(t, nodes[:1], "6000", 30*time.Second)
	waitLeader(t, nodes[1:], "6000", 30*time.Second)
	srv := httptest.NewServer(nodes[0].Handler())
	defer srv.Close()
	stale := httptest.NewServer(nodes[1].Handler())
	defer stale.Close()
	if code, rd := getReady(t, srv.URL); code != http.StatusOK || !rd.Ready {
		t.Fatalf("readyz = %d %+v, want 200", code, rd)
	}

	// Another function is refused; the same function with a new token is taken.
	other := long
	other.Checksum = "00" + long.Checksum[2:]
	if err := rts[0].Reload(other); err == nil {
		t.Fatal("Reload accepted a reference for another checksum")
	}
	if err := rts[0].Reload(long); err != nil {
		t.Fatal(err)
	}

	// Past the short token's expiry, the reloaded node's calls still succeed.
	after := claims.ExpiresAt.Add(time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := nodes[0].CurrentStatus(context.Background())
		if ls := st.Runtime.LastSuccess; ls != nil && ls.After(after) && st.Runtime.State == "reachable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful call after the first token expired: %+v", st.Runtime)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, rd := getReady(t, srv.URL); code != http.StatusOK || !rd.Ready {
		t.Fatalf("reloaded node: readyz = %d %+v, want 200", code, rd)
	}
	// The stale node's runtime check fails with 503.
	for {
		code, rd := getReady(t, stale.URL)
		if code == http.StatusServiceUnavailable {
			if rd.Ready || len(rd.Checks) == 0 || rd.Checks[0].Name != "runtime" || rd.Checks[0].OK {
				t.Fatalf("stale node: %+v, want the runtime check failed", rd)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale node still ready after its token expired: %+v", rd)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getReady(t *testing.T, base string) (int, node.Readiness) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rd node.Readiness
	if err := json.NewDecoder(res.Body).Decode(&rd); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, rd
}
