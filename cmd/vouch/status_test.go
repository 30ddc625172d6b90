package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/node"
)

func TestNodeURLFlag(t *testing.T) {
	var f nodeURLFlag
	for _, v := range []string{"8080", "127.0.0.1:8081,host.example:9000", " http://10.0.0.1:80/ ", "https://n.example"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	want := []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://host.example:9000", "http://10.0.0.1:80", "https://n.example"}
	if !slices.Equal(f, want) {
		t.Fatalf("got %q, want %q", f, want)
	}
	for _, bad := range []string{"ftp://x:1", "http://"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestStatusUsage(t *testing.T) {
	r := vouch(t, "status")
	if r.code != 2 || !strings.Contains(r.stderr, "--node URL") {
		t.Fatalf("vouch status without --node: %s", r)
	}
	r = vouch(t, "status", "--node", unreachable)
	if r.code != 1 || !strings.Contains(r.stderr, "no node answered") || !strings.Contains(r.stdout, unreachable) {
		t.Fatalf("vouch status of an unreachable node: %s", r)
	}
}

// `vouch status --ref FILE -n PEER` joins three nodes' gossip as an
// observer (none serves HTTP), shows their leader verified, and leaves;
// the reference needs no function token.
func TestStatusObserverInProcess(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, true)
	key := make([]byte, 32)
	rand.Read(key)
	var nodes []*node.Node
	for _, name := range []string{"5000", "5001", "5002"} {
		cfg := node.DefaultLocalConfig()
		cfg.Name, cfg.BindPort, cfg.GossipKey = name, 0, key
		if len(nodes) > 0 {
			cfg.Peers = []string{nodes[0].Addr()}
		}
		cfg.Runtime = node.NewClientRuntime(f.env.Client(client.Options{}), f.ref)
		cfg.FunctionID, cfg.Checksum = f.ref.ID, f.ref.Checksum
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
	}
	refFile := filepath.Join(t.TempDir(), "ref.json")
	ref := &api.Ref{FunctionID: f.ref.ID, FunctionChecksum: f.ref.Checksum, EnclaveURL: f.env.URL, Trust: f.env.Trust(),
		GossipKey: base64.StdEncoding.EncodeToString(key)}
	if err := api.WriteRefFile(refFile, ref, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := vouch(t, "status", "--ref", refFile, "-n", nodes[1].Addr(), "-o", "json")
		var rep statusReport
		json.Unmarshal([]byte(r.stdout), &rep)
		if r.code == 0 && len(rep.Nodes) == 1 && rep.Nodes[0].Verified && rep.Nodes[0].View.Leader == "5002" && len(rep.Nodes[0].View.Members) == 3 {
			if n := rep.Nodes[0]; n.Source != "observer" || !n.View.Observer || !slices.Equal(n.Seeds, []string{nodes[1].Addr()}) {
				t.Fatalf("the report does not name its observer source: %s", r.stdout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verified leader 5002 from an observer: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The observer left: the nodes list no observer, and their view is
	// the three of them.
	for _, n := range nodes {
		st := n.CurrentStatus(context.Background())
		if !slices.Equal(st.View, []string{"5000", "5001", "5002"}) {
			t.Errorf("%s: view %v", st.Name, st.View)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st := nodes[0].CurrentStatus(context.Background()); len(st.Observers) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("observers %v are still listed", st.Observers)
		}
	}
}

func TestStatusObserverUsage(t *testing.T) {
	cleanEnv(t)
	r := vouch(t, "status", "--node", "8080", "-n", "7000")
	if r.code != 2 || !strings.Contains(r.stderr, "not both") {
		t.Fatalf("vouch status --node -n: %s", r)
	}
	t.Chdir(t.TempDir()) // no ./leader_election.json
	r = vouch(t, "status", "-n", "7000")
	if r.code != 1 || !strings.Contains(r.stderr, "needs the cluster's function reference") {
		t.Fatalf("vouch status -n without a reference: %s", r)
	}
}

func TestAllLoopback(t *testing.T) {
	for seeds, want := range map[string]bool{
		"127.0.0.1:7000":               true,
		"localhost:7000,[::1]:7001":    true,
		"127.0.0.1:7000,10.0.0.2:7000": false,
		"node.example:7000":            false,
	} {
		if got := seedsLoopback(strings.Split(seeds, ",")); got != want {
			t.Errorf("seedsLoopback(%s) = %v, want %v", seeds, got, want)
		}
	}
}
