//go:build !race

// The example compiles the leader function (3.5 MB of WebAssembly): about
// 2 s normally, but half a minute under the race detector, where it would
// only test the compiler. It is left out of race builds.

package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/node"
)

// Example starts a runtime and three nodes on loopback, waits until they
// agree on a leader, and checks the leader's certificate as any peer could:
// against the runtime's attested key, the election function and its
// checksum. The runtime runs in this process with SIMULATED attestation
// (development only); a real program would reach a `vouch enclave`.
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	// The runtime, with the built-in leader function deployed and a token
	// minted for it by the runtime's owner.
	dir, err := os.MkdirTemp("", "vouch-node-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		log.Fatal(err)
	}
	sim, err := attest.NewSimulated(dir, pcr0)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close(ctx)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	owner, _ := srv.OwnerToken()
	admin, err := client.New(hs.URL, client.Options{OwnerToken: owner})
	if err != nil {
		log.Fatal(err)
	}
	b, err := functions.Builtin("leader")
	if err != nil {
		log.Fatal(err)
	}
	d, err := admin.Deploy(ctx, b, "")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := admin.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	// The checksum the nodes expect is the one computed from the bundle,
	// not the one the runtime reported.
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: b.Checksum(), Token: tok.FunctionToken}
	root := sim.RootFingerprint()
	trust := api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(root[:])}

	// The cluster's gossip key, shared by its members.
	gossipKey := make([]byte, 32)
	rand.Read(gossipKey)

	// Three nodes: the first listens, the others join it. Each node has
	// its own client, which attests the runtime before it sends anything.
	var nodes []*node.Node
	for _, name := range []string{"5000", "5001", "5002"} {
		c, err := client.New(hs.URL, client.Options{Trust: trust})
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		cfg := node.DefaultLocalConfig()
		cfg.Name, cfg.Cluster = name, "example"
		cfg.BindPort = 0 // any free port
		if len(nodes) > 0 {
			cfg.Peers = []string{nodes[0].Addr()}
		}
		cfg.GossipKey = gossipKey
		cfg.Runtime = node.NewClientRuntime(c, ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		cfg.Logger = quiet
		n, err := node.New(*cfg)
		if err != nil {
			log.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			log.Fatal(err)
		}
		defer n.Kill()
		nodes = append(nodes, n)
	}

	// Wait until every node holds a certificate for the same leader, one
	// elected over all three members. Under the original policy the
	// highest ID leads.
	agreed := func() bool {
		for _, n := range nodes {
			st := n.Status()
			if st.Certificate == nil || len(st.Certificate.Members) != len(nodes) || st.Leader != nodes[0].Status().Leader {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(time.Minute); !agreed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatal("the nodes did not agree on a leader within a minute")
		}
	}
	st := nodes[1].Status()
	fmt.Println("leader:", st.Leader, "members:", st.Certificate.Members)
	for _, n := range nodes {
		l := n.Leader()
		fmt.Printf("%s: leader %s, self %v\n", n.Status().Name, l.Leader, l.Self)
	}

	// Any peer can check the certificate itself: it is signed by the
	// attested runtime, for this function and checksum and this cluster.
	id, err := client.New(hs.URL, client.Options{Trust: trust})
	if err != nil {
		log.Fatal(err)
	}
	defer id.Close()
	ident, err := id.Attest(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := election.DecodeCertificate(st.Certificate.Wire)
	if err != nil {
		log.Fatal(err)
	}
	outcome, rej := election.Verify(cert, election.Trust{Key: ident.ReceiptKey, FunctionID: ref.ID, Checksum: ref.Checksum, Cluster: "example"})
	fmt.Println("certificate verifies:", rej == nil, "leader", outcome.Leader)

	// The same certificate under another cluster's name does not.
	_, rej = election.Verify(cert, election.Trust{Key: ident.ReceiptKey, FunctionID: ref.ID, Checksum: ref.Checksum, Cluster: "other"})
	fmt.Println("for another cluster:", rej.Reason)
	// Output:
	// leader: 5002 members: [5000 5001 5002]
	// 5000: leader 5002, self false
	// 5001: leader 5002, self false
	// 5002: leader 5002, self true
	// certificate verifies: true leader 5002
	// for another cluster: wrong_cluster
}
