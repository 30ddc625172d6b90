package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
	"github.com/vouch-dev/vouch/sandbox"
)

// mapHost is sandbox.Host over two maps: every invocation of the benchmark
// succeeds, so writes go straight in.
type mapHost struct {
	kv       [2]map[string][]byte
	counters map[string]int64
}

func newMapHost() *mapHost {
	return &mapHost{kv: [2]map[string][]byte{{}, {}}, counters: map[string]int64{}}
}

func (h *mapHost) Get(ns sandbox.Namespace, key []byte) ([]byte, bool, error) {
	v, ok := h.kv[ns][string(key)]
	return v, ok, nil
}

func (h *mapHost) Put(ns sandbox.Namespace, key, value []byte) error {
	h.kv[ns][string(key)] = append([]byte(nil), value...)
	return nil
}

func (h *mapHost) Delete(ns sandbox.Namespace, key []byte) error {
	delete(h.kv[ns], string(key))
	return nil
}

func (h *mapHost) CounterNext(name []byte) (int64, error) {
	h.counters[string(name)]++
	return h.counters[string(name)], nil
}

// benchCluster is a closed cluster of n members in which every member sees
// every other: the steady state that a failover starts from.
type benchCluster struct {
	cfg  *cluster.Signed
	ids  []string
	keys []ed25519.PrivateKey
	seq  uint64
}

func newBenchCluster(b *testing.B, n int) *benchCluster {
	owner := key(250)
	c := cluster.Config{Cluster: "bench", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest, LeaseMillis: 60_000, ViewTTLMillis: 60_000}
	bc := &benchCluster{}
	for i := range n {
		id := fmt.Sprintf("n%03d", i)
		k := key(byte(i))
		bc.ids, bc.keys = append(bc.ids, id), append(bc.keys, k)
		c.Members = append(c.Members, cluster.Member{ID: id, Key: k.Public().(ed25519.PublicKey)})
	}
	var err error
	if bc.cfg, err = cluster.Sign(c, owner); err != nil {
		b.Fatal(err)
	}
	return bc
}

// submission returns member i's next view, every member alive, with the
// configuration attached if config (nodes attach it until the runtime's
// certificates name it).
func (bc *benchCluster) submission(b *testing.B, i int, config bool) []byte {
	bc.seq++
	sv, err := cluster.SignView(cluster.View{Cluster: "bench", Node: bc.ids[i], Seq: bc.seq, TimeMillis: time.Now().UnixMilli(), Alive: bc.ids}, bc.keys[i])
	if err != nil {
		b.Fatal(err)
	}
	in := Input{View: sv}
	if config {
		in.Config = bc.cfg
	}
	b2, _ := json.Marshal(in)
	return b2
}

// BenchmarkSubmit measures one submission (a member's signed view) once
// every member has submitted one: the cost of each of the views a failover
// waits for. "wasm" is the function built from
// this source and run in the sandbox, as the runtime runs it; "native" is
// handle compiled for this machine, for profiling (go test -cpuprofile).
func BenchmarkSubmit(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("wasm/members=%d", n), func(b *testing.B) { benchWasm(b, n) })
		b.Run(fmt.Sprintf("native/members=%d", n), func(b *testing.B) { benchNative(b, n) })
	}
}

// benchSubmissions has every member of a cluster of n submit once through
// run, with the configuration, and then times b.N submissions.
func benchSubmissions(b *testing.B, n int, run func([]byte) error) {
	bc := newBenchCluster(b, n)
	for i := range n {
		if err := run(bc.submission(b, i, true)); err != nil {
			b.Fatal(err)
		}
	}
	ins := make([][]byte, b.N)
	for i := range ins {
		ins[i] = bc.submission(b, i%n, false)
	}
	b.ResetTimer()
	for _, in := range ins {
		if err := run(in); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWasm(b *testing.B, n int) {
	mod, err := testbuild.Wasm("./functions/election", true)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	eng, err := sandbox.NewEngine(sandbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(ctx)
	f, err := eng.Load(ctx, mod, bundle.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close(ctx)
	host := newMapHost()
	benchSubmissions(b, n, func(in []byte) error {
		_, err := f.Invoke(ctx, in, host)
		return err
	})
}

func benchNative(b *testing.B, n int) {
	env := newEnv()
	env.t = time.Now()
	benchSubmissions(b, n, func(in []byte) error {
		_, err := env.run(in)
		return err
	})
}
