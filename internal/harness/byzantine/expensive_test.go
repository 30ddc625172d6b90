package byzantine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// The election function, in the real runtime, answers the Expensive
// attack's inputs the way the harness counts them, and none of them
// changes the cluster's configuration: a configuration of another owner
// is refused, one under the owner's key that does not verify is ignored
// while the member's view is taken, a view listing more strangers than
// the cluster's size allows is refused before it is decoded, one within
// the bound is taken, and an input over the function's limit never
// reaches the function. The costs are
// logged (they started as an audit's measurement: before the cheap checks
// came first, a refused 1.5 MB configuration took 246 ms of the function's
// one-at-a-time time).
func TestExpensiveSubmissions(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Options{Seed: 5, Logf: t.Logf, RateLimit: 1000}.withDefaults())
	defer h.close()
	if err := h.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	l := h.liars[0]
	// Bind the cluster with the owner's configuration, as an honest node
	// would.
	bind, _ := json.Marshal(map[string]any{"config": h.config, "view": l.view([]string{l.name})})
	if _, class := l.submit(ctx, l.ref, bind); class != "ok" {
		t.Fatalf("binding the cluster: %s", class)
	}
	set, err := l.prepareExpensive(h.maxInput)
	if err != nil {
		t.Fatal(err)
	}
	self := []string{l.name}
	digest := h.config.Config.Digest()
	for _, tc := range []struct {
		name  string
		input func() []byte
		class string
	}{
		{"plain view", func() []byte { return body(l.view(self)) }, "ok"},
		{"configuration of the liar's own", func() []byte { return envelope(set.rogue, l.view(self)) }, "config_refused"},
		{"owner's key, bad signature", func() []byte { return envelope(set.forged, l.view(self)) }, "ok"},
		{"view listing strangers", func() []byte { return body(l.view(append(set.strangers, l.name))) }, "view_too_large"},
		{"view at the size bound", func() []byte { return body(l.view(append(set.fewerStrangers, l.name))) }, "ok"},
		{"over the input limit", func() []byte { return envelope(append(set.rogue, make([]byte, h.maxInput)...), l.view(self)) }, "too_large"},
	} {
		var total, worst time.Duration
		size := 0
		for range 5 {
			in := tc.input()
			size = len(in)
			t0 := time.Now()
			cert, class := l.submit(ctx, l.ref, in)
			d := time.Since(t0)
			total, worst = total+d, max(worst, d)
			if class != tc.class {
				t.Fatalf("%s: answered %s, want %s", tc.name, class, tc.class)
			}
			if cert != nil {
				var o election.TermOutcome
				if err := json.Unmarshal(cert.Output, &o); err != nil || o.ConfigDigest != digest {
					t.Fatalf("%s: the answer names configuration %.12s…, not the cluster's %.12s… (%v)", tc.name, o.ConfigDigest, digest, err)
				}
			}
		}
		t.Logf("%-32s %7d bytes: mean %v, worst %v", tc.name, size, (total / 5).Round(100*time.Microsecond), worst.Round(100*time.Microsecond))
	}
}

// The audit's heavy flood: the liars send expensive inputs at the
// runtime's default rate limit (200 runs/s per token) with 8 submitters
// each. Before the function checked cheaply first and bounded its input,
// the leader did not act for 9.3 s of 10.
func TestExpensiveInputsAtDefaultRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 15 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // generous: a loaded machine under the race detector
	defer cancel()
	rep, err := Run(ctx, t, Options{Attacks: []Attack{Expensive}, RateLimit: 200, FloodWorkers: 8, Duration: 10 * time.Second, Seed: 7, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", rep, rep.Notes())
	check(t, rep)
}
