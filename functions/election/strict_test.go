package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/sandbox"
)

// TestStrictSubmissions runs the built election.wasm (the bytes the
// runtime embeds, whose strict decoding is internal/strictjson's compact
// path) and handle compiled for this machine (the json/v2 path): both
// refuse a submission whose view or configuration gives a field twice, in
// another case, or null where a value is due, and accept the honest one.
func TestStrictSubmissions(t *testing.T) {
	owner := key(250)
	c := cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest, LeaseMillis: 60_000, ViewTTLMillis: 60_000}
	for i, id := range []string{"a", "b"} {
		c.Members = append(c.Members, cluster.Member{ID: id, Key: key(byte(i + 1)).Public().(ed25519.PublicKey)})
	}
	sc, err := cluster.Sign(c, owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("native", func(t *testing.T) {
		now := time.UnixMilli(1_800_000_000_000) // the fake environment's clock
		honest, bad := strictSubmissions(t, sc, now)
		for _, tc := range bad {
			env := newEnv()
			env.t = now
			_, err := env.run(tc.in)
			if r := refusal(err); r == nil || !strings.Contains(r.Message, tc.want) {
				t.Errorf("%s: %v, want a refusal containing %q", tc.name, err, tc.want)
			}
		}
		env := newEnv()
		env.t = now
		if _, err := env.run(honest); err != nil {
			t.Fatalf("honest submission: %v", err)
		}
	})

	t.Run("wasm", func(t *testing.T) {
		mod, err := os.ReadFile("election.wasm")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		eng, err := sandbox.NewEngine(sandbox.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(ctx)
		f, err := eng.Load(ctx, mod, bundle.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close(ctx)
		// The guest reads the real clock, and loading the module may take
		// long (under -race): the views are signed only now.
		_, bad := strictSubmissions(t, sc, time.Now())
		for _, tc := range bad {
			// The refusal crosses the wasm boundary as the invocation's
			// error message.
			_, err := f.Invoke(ctx, tc.in, newMapHost())
			if r := refusal(err); r == nil || !strings.Contains(r.Message, tc.want) {
				t.Errorf("%s: %v, want a refusal containing %q", tc.name, err, tc.want)
			}
		}
		honest, _ := strictSubmissions(t, sc, time.Now())
		if _, err := f.Invoke(ctx, honest, newMapHost()); err != nil {
			t.Fatalf("honest submission: %v", err)
		}
	})
}

// strictCase is a submission the function must refuse, and what its
// error says.
type strictCase struct {
	name string
	in   []byte
	want string
}

// strictSubmissions returns an honest submission of sc's cluster, with a
// view of now, and variants of it that strict decoding refuses.
func strictSubmissions(t *testing.T, sc *cluster.Signed, now time.Time) ([]byte, []strictCase) {
	t.Helper()
	sv, err := cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: now.UnixMilli(), Alive: []string{"a", "b"}}, key(1))
	if err != nil {
		t.Fatal(err)
	}
	honest, _ := json.Marshal(Input{Config: sc, View: sv})
	edit := func(old, new string) []byte {
		if !bytes.Contains(honest, []byte(old)) {
			t.Fatalf("%s is not in %s", old, honest)
		}
		return bytes.Replace(honest, []byte(old), []byte(new), 1)
	}
	return honest, []strictCase{
		{"view field twice", edit(`"seq":1`, `"seq":1,"seq":1`), `field "seq" given twice`},
		{"view field in upper case", edit(`"seq":1`, `"SEQ":1`), `unknown field "SEQ"`},
		{"view field in another case too", edit(`"seq":1`, `"seq":1,"Seq":1`), `unknown field "Seq"`},
		{"null view member", edit(`"alive":["a","b"]`, `"alive":["a","b",null]`), "null is not allowed"},
		{"null view field", edit(`"time_ms":`, `"policy":null,"time_ms":`), `unknown field "policy"`},
		{"null seq", edit(`"seq":1`, `"seq":null`), "null is not allowed"},
		{"configuration field twice", edit(`"lease_ms":60000`, `"lease_ms":60000,"lease_ms":60000`), `field "lease_ms" given twice`},
		{"configuration field in upper case", edit(`"lease_ms":60000`, `"LEASE_MS":60000`), `unknown field "LEASE_MS"`},
		{"null configuration field", edit(`"policy":"highest"`, `"policy":null`), "null is not allowed"},
		{"submission field twice", append(bytes.Clone(honest[:len(honest)-1]), `,"view":null}`...), "twice"},
		{"trailing data", append(bytes.Clone(honest), []byte(`{}`)...), ""},
	}
}
