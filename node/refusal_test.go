package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// The built-in election function's lease refusal crosses the real runtime
// with its code, and the node recognises it: for sealed inputs (what nodes
// send) by the refusal code, the only part of the function's message the
// runtime passes, and for plaintext inputs too.
func TestLeaseRefusalCrossesTheRuntime(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		name := "sealed"
		if plaintext {
			name = "plaintext"
		}
		t.Run(name, func(t *testing.T) { testLeaseRefusal(t, enclavetest.Start(t), plaintext) })
	}
}

func testLeaseRefusal(t *testing.T, env *enclavetest.Env, plaintext bool) {
	ctx := context.Background()
	b, err := functions.Builtin("election")
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{Plaintext: plaintext})
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rt := node.NewClientRuntime(c, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken})

	// Leases and views last a minute, so that how long the calls take
	// does not matter.
	_, owner, _ := ed25519.GenerateKey(rand.Reader)
	cfg := cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: 60_000, ViewTTLMillis: 60_000}
	keys := map[string]ed25519.PrivateKey{}
	for _, id := range []string{"a", "b", "c"} {
		_, keys[id], _ = ed25519.GenerateKey(rand.Reader)
		cfg.Members = append(cfg.Members, cluster.Member{ID: id, Key: keys[id].Public().(ed25519.PublicKey)})
	}
	sc, err := cluster.Sign(cfg, owner)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	submit := func(id string, alive ...string) error {
		seq++
		sv, err := cluster.SignView(cluster.View{Cluster: "demo", Node: id, Seq: seq, TimeMillis: time.Now().UnixMilli(), Alive: alive}, keys[id])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"config": sc, "view": sv})
		_, err = rt.Submit(ctx, body)
		return err
	}
	for _, id := range []string{"a", "b", "c"} { // c leads term 1
		if err := submit(id, "a", "b", "c"); err != nil {
			t.Fatal(err)
		}
	}
	if err := submit("a", "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := submit("b", "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := submit("a", "a", "b"); node.IsLeaseRefusal(err) {
		t.Fatalf("a member's answer taken for a lease refusal: %v", err)
	}
	err = submit("c", "a", "b", "c") // a majority no longer sees c
	if err == nil || !node.IsLeaseRefusal(err) {
		t.Fatalf("the leader's renewal without a majority: %v, want a lease refusal", err)
	}
	_, keys["x"], _ = ed25519.GenerateKey(rand.Reader)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Refusal != api.RefusalLeaseNotRenewed {
		t.Fatalf("lease refusal: %#v, want refusal code %q", err, api.RefusalLeaseNotRenewed)
	}
	// The function's detail reaches a plaintext caller only.
	if shown := strings.Contains(err.Error(), `leader "c" of term 1`); shown != plaintext {
		t.Fatalf("lease refusal: %q; detail shown %v, want %v", err, shown, plaintext)
	}
	_, keys["x"], _ = ed25519.GenerateKey(rand.Reader)
	err = submit("x", "x")
	if err == nil || node.IsLeaseRefusal(err) {
		t.Fatalf("a stranger's view: %v, want another refusal", err)
	}
	if !errors.As(err, &ae) || ae.Refusal != api.RefusalViewRefused {
		t.Fatalf("a stranger's view: %#v, want refusal code %q", err, api.RefusalViewRefused)
	}
}
