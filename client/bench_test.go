package client_test

import (
	"context"
	"testing"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// setup starts an in-process runtime on loopback with the built-in leader
// function deployed (internal/harness/bench.Setup): the same target as `vouch-bench
// run`.
func setup(b *testing.B, plaintext, singleShot bool) *bench.Target {
	b.Helper()
	t, err := bench.Setup(context.Background(), "", client.Options{}, plaintext, singleShot, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	return t
}

// BenchmarkRun measures one run of the built-in leader function with 100
// members through the full client path, over loopback HTTP to an
// in-process runtime: statement check (cached), HPKE sealing (unless
// plaintext), token check, sandbox, receipt signing and verification. The
// client and the runtime share the machine's CPUs. parallel runs
// GOMAXPROCS workers (b.RunParallel); serial, one at a time.
func BenchmarkRun(b *testing.B) {
	for _, mode := range []struct {
		name                  string
		plaintext, singleShot bool
	}{{"session", false, false}, {"single-shot", false, true}, {"plaintext", true, false}} {
		input := bench.LeaderInput(100)
		b.Run(mode.name+"/serial", func(b *testing.B) {
			t := setup(b, mode.plaintext, mode.singleShot)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Client.Run(ctx, t.Refs[0], input); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/parallel", func(b *testing.B) {
			t := setup(b, mode.plaintext, mode.singleShot)
			ctx := context.Background()
			b.ReportAllocs()
			// Warm up as `vouch-bench run` does (500 runs, 8 at a time),
			// so that every warm instance of the function exists.
			if _, err := t.Load(ctx, input, 8, 500); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(4) // 8 workers on 2 CPUs, as `vouch-bench run -c 8`
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := t.Client.Run(ctx, t.Refs[0], input); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAttest measures the one-time attestation of a runtime by a
// client: a fresh nonce, GET /v1/identity (the runtime signs a SIMULATED
// attestation document) and the client's verification of the document and
// its certificate chain.
func BenchmarkAttest(b *testing.B) {
	t := setup(b, false, false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Client.Attest(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
