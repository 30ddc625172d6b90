package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// cmdBenchRun loads a runtime, in this process or at --enclave, and
// prints throughput and latency per concurrency level.
func cmdBenchRun(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("run", "[flags]", u)
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", bench.DefaultRequests, "measured runs per concurrency level")
	conc := fs.String("c", fmt.Sprint(bench.DefaultConcurrency), "concurrent workers; a list such as 1,8,64 measures each in turn")
	members := fs.Int("members", bench.DefaultMembers, "members in the leader function's input")
	plaintext := fs.Bool("plaintext", false, "send inputs unsealed (default: sealed with HPKE, as vouch run does)")
	singleShot := fs.Bool("single-shot", false, "seal each input with its own HPKE context instead of a session, as vouch run --single-shot does")
	warmup := fs.Int("warmup", bench.DefaultWarmup, "unmeasured runs before each concurrency level")
	jsonFile := fs.String("json", "", "also write the results as JSON to FILE")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "give up after this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first level's measured runs (client and in-process runtime) to FILE")
	breakdown := fs.Bool("breakdown", false, "profile the first level's measured runs and print where the time goes")
	floor := fs.Bool("floor", false, "also measure the floor of one call at every level, interleaved with the real runs: loopback HTTP of the same shape, AES-GCM, an empty wasm call, Ed25519 sign and verify (in-process runtime only)")
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("run", pos); err != nil {
		return err
	}
	levels, err := bench.ParseConcurrency(*conc)
	if err != nil {
		return cmdline.Usagef("-c %q: %v", *conc, err)
	}
	switch {
	case *n < 1:
		return cmdline.Usagef("-n %d: want at least 1", *n)
	case *members < 1 || *members > 10000:
		return cmdline.Usagef("--members %d: want 1 to 10000", *members)
	case *warmup < 0:
		return cmdline.Usagef("--warmup %d: want 0 or more", *warmup)
	case *timeout <= 0:
		return cmdline.Usagef("--timeout %v: want a positive duration", *timeout)
	case *floor && cf.enclave != "":
		return cmdline.Usagef("--floor measures against the in-process runtime only; drop --enclave")
	}
	cfg := bench.Config{
		EnclaveURL:  cf.enclave,
		Requests:    *n,
		Concurrency: levels,
		Members:     *members,
		Plaintext:   *plaintext,
		SingleShot:  *singleShot,
		Warmup:      *warmup,
		Timeout:     *timeout,
		Progress:    u.Err,
		Breakdown:   *breakdown,
		Floor:       *floor,
		Command:     prog + " run " + bench.CommandLine(args),
	}
	if cf.enclave != "" {
		if cfg.Client, err = cf.options(); err != nil {
			return err
		}
		u.Infof("loading %s: each worker gets its own function token, and the runtime's per-token rate limit applies (start it with --rate-limit 0 to measure past it)", cf.enclave)
	} else {
		u.Infof("starting a runtime in this process (SIMULATED attestation, loopback); client and runtime share this machine's CPUs")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	start := time.Now()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(u.Out); err != nil {
		return err
	}
	if rep.Breakdown != nil {
		fmt.Fprintf(u.Out, "\nwhere the time goes, concurrency %d (client and runtime in this process):\n", rep.Results[0].Concurrency)
		if err := rep.Breakdown.WriteTable(u.Out); err != nil {
			return err
		}
	}
	if *jsonFile != "" {
		if err := rep.WriteJSON(*jsonFile); err != nil {
			return err
		}
	}
	u.Infof("done in %s", time.Since(start).Round(time.Millisecond))
	if e := rep.Errors(); e > 0 {
		return fmt.Errorf("%d runs failed (see the first error above)", e)
	}
	return nil
}
