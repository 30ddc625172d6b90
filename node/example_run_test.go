//go:build !race

package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/node"
)

// exampleRuntime starts a runtime in this process (SIMULATED attestation)
// with the leader function deployed, and returns a client for it, the
// function's reference and a function that stops it.
func exampleRuntime() (*client.Client, client.FunctionRef, func()) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir, err := os.MkdirTemp("", "vouch-node-example-")
	if err != nil {
		log.Fatal(err)
	}
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
	hs := httptest.NewServer(srv.Handler())
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
	root := sim.RootFingerprint()
	trust := api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(root[:])}
	c, err := client.New(hs.URL, client.Options{Trust: trust})
	if err != nil {
		log.Fatal(err)
	}
	return c, client.FunctionRef{ID: d.FunctionID, Checksum: b.Checksum(), Token: tok.FunctionToken}, func() {
		c.Close()
		hs.Close()
		srv.Close(ctx)
		os.RemoveAll(dir)
	}
}

// ExampleNode_Run runs a node in the shape of client-go's leaderelection:
// callbacks for the leadership and for every new leader, and Run, which
// blocks until its ctx ends and then, with ReleaseOnCancel, hands the
// leadership over before it leaves.
func ExampleNode_Run() {
	c, ref, stop := exampleRuntime()
	defer stop()
	gossipKey := make([]byte, 32)
	rand.Read(gossipKey)

	ctx, cancel := context.WithCancel(context.Background())
	cfg := node.DefaultLocalConfig()
	cfg.Name, cfg.BindPort, cfg.GossipKey = "5000", 0, gossipKey
	cfg.Runtime = node.NewClientRuntime(c, ref)
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ReleaseOnCancel = true
	cfg.OnNewLeader = func(id string) { fmt.Println("new leader:", id) }
	cfg.OnStartedLeading = func(lead context.Context, token uint64) {
		fmt.Println("leading, fencing token above 0:", token > 0)
		cancel() // this example's work is done: stop the node
		<-lead.Done()
		fmt.Println("stopped leading:", lead.Err())
	}
	n, err := node.New(*cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("left the cluster")
	// Output:
	// new leader: 5000
	// leading, fencing token above 0: true
	// stopped leading: context canceled
	// left the cluster
}

// ExampleNode_SubscribeContext follows the leadership until ctx ends.
func ExampleNode_SubscribeContext() {
	var n *node.Node // a started node
	if n == nil {
		return // (so that the example compiles and runs without a cluster)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for l := range n.SubscribeContext(ctx) { // closed when ctx ends or the node stops
		fmt.Println("leader", l.Leader, "self", l.Self, "token", l.Token)
	}
}

// ExampleNode_Resign hands the leadership over before a restart.
func ExampleNode_Resign() {
	var n *node.Node // a started node
	if n == nil {
		return
	}
	switch err := n.Resign(context.Background()); {
	case err == nil:
		fmt.Println("stopped acting; the others certify a new leader")
	case errors.Is(err, node.ErrNotLeader):
		fmt.Println("not the leader: nothing to hand over")
	}
}
