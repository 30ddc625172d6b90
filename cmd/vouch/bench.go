package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"vouch/internal/bench"
)

// benchCommand is a subcommand of `vouch bench`.
type benchCommand struct {
	summary string
	run     func(ctx context.Context, args []string, u *ui) error
}

// benchCommands are the subcommands of `vouch bench`. Other files add
// theirs from an init function with registerBench.
var benchCommands = map[string]benchCommand{
	"run": {"load the runtime with a fixed number of runs of the leader function and print throughput and latency", cmdBenchRun},
}

// registerBench adds a subcommand to `vouch bench`.
func registerBench(name, summary string, run func(ctx context.Context, args []string, u *ui) error) {
	if _, dup := benchCommands[name]; dup {
		panic("vouch bench " + name + " registered twice")
	}
	benchCommands[name] = benchCommand{summary, run}
}

func cmdBench(ctx context.Context, args []string, u *ui) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(u.err, "Usage: vouch bench <benchmark> [flags]\n\nBenchmarks:\n")
		var names []string
		for n := range benchCommands {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(u.err, "  %-14s %s\n", n, benchCommands[n].summary)
		}
		fmt.Fprintln(u.err, "\nFigures and the commands that reproduce them: docs/BENCHMARKS.md.")
		if len(args) == 0 {
			return usagef("bench needs a benchmark name")
		}
		return nil
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		return usagef("unknown benchmark %q (try `vouch bench -h`)", args[0])
	}
	return c.run(ctx, args[1:], u)
}

func cmdBenchRun(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("bench run", "[flags]", u)
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	fs.Lookup("enclave").Usage = "runtime URL to load (default: start one in this process, on loopback, with SIMULATED attestation)"
	n := fs.Int("n", bench.DefaultRequests, "measured runs per concurrency level")
	conc := fs.String("c", fmt.Sprint(bench.DefaultConcurrency), "concurrent workers; a list such as 1,8,64 measures each in turn")
	members := fs.Int("members", bench.DefaultMembers, "members in the leader function's input")
	plaintext := fs.Bool("plaintext", false, "send inputs unsealed (default: sealed with HPKE, as `vouch run` does)")
	singleShot := fs.Bool("single-shot", false, "seal each input with its own HPKE context instead of a session, as `vouch run --single-shot` does")
	warmup := fs.Int("warmup", bench.DefaultWarmup, "unmeasured runs before each concurrency level")
	jsonFile := fs.String("json", "", "also write the results as JSON to FILE")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "give up after this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first level's measured runs (client and in-process runtime) to FILE")
	breakdown := fs.Bool("breakdown", false, "profile the first level's measured runs and print where the time goes")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("bench run takes no arguments, got %q", strings.Join(pos, " "))
	}
	levels, err := bench.ParseConcurrency(*conc)
	if err != nil {
		return usagef("-c %q: %v", *conc, err)
	}
	switch {
	case *n < 1:
		return usagef("-n %d: want at least 1", *n)
	case *members < 1 || *members > 10000:
		return usagef("--members %d: want 1 to 10000", *members)
	case *warmup < 0:
		return usagef("--warmup %d: want 0 or more", *warmup)
	case *timeout <= 0:
		return usagef("--timeout %v: want a positive duration", *timeout)
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
		Progress:    u.err,
		Breakdown:   *breakdown,
		Command:     "vouch bench run " + bench.CommandLine(args),
	}
	if cf.enclave != "" {
		if cfg.Client, err = cf.options(nil, true); err != nil {
			return err
		}
		u.infof("loading %s: each worker gets its own function token, and the runtime's per-token rate limit applies (start it with --rate-limit 0 to measure past it)", cf.enclave)
	} else {
		u.infof("starting a runtime in this process (SIMULATED attestation, loopback); client and runtime share this machine's CPUs")
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
	if err := rep.WriteTable(u.out); err != nil {
		return err
	}
	if rep.Breakdown != nil {
		fmt.Fprintf(u.out, "\nwhere the time goes, concurrency %d (client and runtime in this process):\n", rep.Results[0].Concurrency)
		if err := rep.Breakdown.WriteTable(u.out); err != nil {
			return err
		}
	}
	if *jsonFile != "" {
		if err := rep.WriteJSON(*jsonFile); err != nil {
			return err
		}
	}
	u.infof("done in %s", time.Since(start).Round(time.Millisecond))
	if e := rep.Errors(); e > 0 {
		return fmt.Errorf("%d runs failed (see the first error above)", e)
	}
	return nil
}
