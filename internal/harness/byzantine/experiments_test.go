package byzantine

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestExperiments runs the harness in configurations that are expected to
// break properties, to measure the design's limits (docs/BENCHMARKS.md,
// "Byzantine harness"). They are not regression tests: run them
// with BYZ_EXPERIMENTS=1 and read the reports.
//
//	BYZ_EXPERIMENTS=1 go test -run TestExperiment -v ./internal/harness/byzantine
func TestExperiments(t *testing.T) {
	if os.Getenv("BYZ_EXPERIMENTS") == "" {
		t.Skip("set BYZ_EXPERIMENTS=1")
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		// The liars flood with the token that every member shares.
		{"flood-shared-token", Options{Attacks: []Attack{Flood}, SharedToken: true}},
		// The liars flood at the runtime's default limit, 200 runs/s per
		// token (enclave.Config.RateLimit).
		{"flood-default-limit", Options{Attacks: []Attack{Flood}, RateLimit: 200}},
		// The same with 64 concurrent submitters per liar: the runtime
		// runs a stateful function one call at a time, so the flood also
		// competes for the function's lock.
		{"flood-default-limit-64", Options{Attacks: []Attack{Flood}, RateLimit: 200, FloodWorkers: 64}},
		// Expensive inputs at the runtime's default limit, 8 submitters
		// per liar (the audit's heavy flood).
		{"expensive-default-limit", Options{Attacks: []Attack{Expensive}, RateLimit: 200, FloodWorkers: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Seed, o.Duration, o.Logf = 5, 12*time.Second, t.Logf
			rep, err := Run(context.Background(), t, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s\n%s", rep, rep.Notes())
		})
	}
}

// TestSquatting: a liar binds the cluster's name in the runtime to its own
// configuration before the owner's nodes start, then gossips the genuine
// certificate that names it leader. No honest node may follow it: they check
// the certificate's configuration digest against their own.
func TestSquatting(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Options{Seed: 5, Logf: t.Logf}.withDefaults())
	defer h.close()
	if err := h.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	l := h.liars[0]
	cert, class := l.squat(ctx)
	if cert == nil {
		t.Fatalf("squatting refused: %s", class)
	}
	if err := h.startHonest(ctx); err != nil {
		t.Fatal(err)
	}
	// Until every honest node has refused it at least once (a generous
	// bound: nodes start slowly on a loaded machine), or one follows it.
	start := time.Now()
	following, refused := 0, 0
	for time.Since(start) < 60*time.Second && following == 0 && refused < len(h.honest) {
		l.sendCert(h.live(), cert)
		time.Sleep(200 * time.Millisecond)
		following, refused = 0, 0
		for _, hn := range h.honest {
			if ld := hn.n.Leader(); ld.Leader == l.name {
				following++
			}
			if hn.n.Status().Rejections["wrong_config"] > 0 {
				refused++
			}
		}
	}
	st := h.honest[0].n.Status()
	t.Logf("%d of %d honest nodes hold the squatter's certificate (leader %s, term %d) after %v; %s's runtime state: %s: %s; rejections %v",
		following, len(h.honest), st.Leader, st.Seq, time.Since(start).Round(time.Millisecond), st.Name, st.Runtime.State, st.Runtime.LastError, st.Rejections)
	if following > 0 {
		t.Fatalf("%d honest nodes follow a leader elected under a squatter's configuration", following)
	}
	if st.Rejections["wrong_config"] == 0 {
		t.Fatal("the squatter's certificate was not refused as wrong_config")
	}
}
