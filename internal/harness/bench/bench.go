// Package bench is vouch's load generator: `vouch-bench run` and the
// end-to-end `go test -bench` benchmarks. Its figures are in
// docs/BENCHMARKS.md.
//
// Run sends a fixed number of requests to a runtime, over loopback HTTP,
// through the full client path of package client: the signed statement of
// the function is checked (once, then cached), every input is sealed with
// HPKE to the attested key (in a session, or one context per input with
// SingleShot; unless Plaintext), the runtime checks the
// function token, opens the input, runs the built-in leader function, signs
// a receipt, and the client verifies every receipt. One client.Client is
// shared by all workers, so connections are kept alive and reused.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/functions"
)

// Defaults of Config.
const (
	DefaultRequests    = 20000
	DefaultConcurrency = 8
	DefaultMembers     = 100
	DefaultWarmup      = 500
	DefaultTimeout     = 5 * time.Minute
)

// Config configures Run.
type Config struct {
	// EnclaveURL targets an existing runtime; empty starts one in this
	// process (StartRuntime) and stops it at the end.
	EnclaveURL string
	// Client configures the client for an existing runtime: trust policy
	// and owner credential (to deploy the function and mint tokens). It is
	// ignored for an in-process runtime, which is trusted by its root.
	Client client.Options
	// Requests is the number of measured runs per concurrency level.
	Requests int
	// Concurrency lists the numbers of concurrent workers to measure, one
	// after the other.
	Concurrency []int
	// Members is the number of members in the leader function's input.
	Members int
	// Plaintext sends inputs unsealed.
	Plaintext bool
	// SingleShot seals every input with its own HPKE context instead of a
	// session (client.Options.SingleShot).
	SingleShot bool
	// Warmup is the number of unmeasured runs before each concurrency
	// level.
	Warmup int
	// Timeout bounds the whole benchmark.
	Timeout time.Duration
	// Progress, if not nil, receives a line as each level starts.
	Progress io.Writer
	// CPUProfile, if not nil, receives a CPU profile (runtime/pprof) of the
	// measured runs of the first level: setup and warm-up are left out.
	CPUProfile io.Writer
	// Breakdown profiles the first level's measured runs and splits the
	// profile into where the time goes (Report.Breakdown).
	Breakdown bool
	// Command is the command line to record in the report.
	Command string
	// Floor also measures the floor of one call (StartFloor) at every
	// level, in chunks of FloorChunk runs alternating with the real ones.
	// It needs the in-process runtime.
	Floor bool
}

// FloorChunk is how many runs of one kind, real or floor, follow each
// other in a level measured with Config.Floor.
const FloorChunk = 250

func (c *Config) defaults() error {
	if c.Requests == 0 {
		c.Requests = DefaultRequests
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{DefaultConcurrency}
	}
	if c.Members == 0 {
		c.Members = DefaultMembers
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Requests < 1:
		return fmt.Errorf("bench: request count %d: want at least 1", c.Requests)
	case c.Members < 1 || c.Members > 10000:
		return fmt.Errorf("bench: %d members: want 1 to 10000", c.Members)
	case c.Floor && c.EnclaveURL != "":
		return errors.New("bench: the floor is measured against the in-process runtime only: its round trip is on loopback in this process")
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			return fmt.Errorf("bench: concurrency %d: want 1 to 4096", n)
		}
	}
	return nil
}

// Report is the outcome of Run; its JSON form is what --json writes.
type Report struct {
	Machine Machine `json:"machine"`
	// Source is the code that ran; Command the command line.
	Source  Source `json:"source"`
	Command string `json:"command,omitempty"`
	// LoadBefore and LoadAfter are the machine's load averages (1, 5 and
	// 15 minutes) when the benchmark started and ended.
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
	// Target is "in-process" or the runtime's URL.
	Target string `json:"target"`
	// Platform is the runtime's attestation platform.
	Platform         string `json:"platform"`
	Function         string `json:"function"`
	FunctionID       string `json:"function_id"`
	FunctionChecksum string `json:"function_checksum"`
	Members          int    `json:"members"`
	InputBytes       int    `json:"input_bytes"`
	Sealed           bool   `json:"sealed"`
	// SingleShot: sealed inputs used one HPKE context each, not a session.
	SingleShot bool `json:"single_shot,omitempty"`
	Requests   int  `json:"requests"`
	Warmup     int  `json:"warmup"`
	// AttestMicros is the one-time cost of the client's attestation: the
	// identity request, the runtime's document and the client's check.
	AttestMicros float64 `json:"attest_us"`
	Results      []Level `json:"results"`
	// Breakdown is where the first level's CPU time went, with
	// Config.Breakdown.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
	// FloorShape is the real call's wire shape, which the floor copies
	// (Config.Floor).
	FloorShape *Shape `json:"floor_shape,omitempty"`
	Start      string `json:"start"`
}

// Level is the outcome of one concurrency level.
type Level struct {
	Concurrency int `json:"concurrency"`
	Requests    int `json:"requests"`
	Errors      int `json:"errors"`
	// FirstError is the first error's message, if any.
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	// RunsPerSec counts successful runs over the wall time of the level.
	RunsPerSec float64 `json:"runs_per_sec"`
	// Latencies of the successful runs, in microseconds.
	MeanMicros float64 `json:"mean_us"`
	P50Micros  float64 `json:"p50_us"`
	P90Micros  float64 `json:"p90_us"`
	P99Micros  float64 `json:"p99_us"`
	MaxMicros  float64 `json:"max_us"`
	// CPUMicrosPerRun is this process's CPU time (user and system) per
	// request. With an in-process runtime it covers client and server.
	CPUMicrosPerRun float64 `json:"cpu_us_per_run"`
	// AllocsPerRun and BytesPerRun are this process's heap allocations
	// per request.
	AllocsPerRun float64 `json:"allocs_per_run"`
	BytesPerRun  float64 `json:"bytes_per_run"`
	// GCs is the number of garbage collections during the level.
	GCs uint32 `json:"gcs"`
	// Floor is the floor's figures at this level, measured interleaved
	// with these runs (Config.Floor); P50OverFloor is P50Micros over the
	// floor's p50.
	Floor        *Level  `json:"floor,omitempty"`
	P50OverFloor float64 `json:"p50_over_floor,omitempty"`

	lat []time.Duration // successful runs' latencies, for merging chunks
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// ThisMachine describes the machine the program runs on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// LeaderInput returns the leader function's input for n members:
// {"cluster":"demo","node_list":["5000",...,"5000+n-1"]}.
func LeaderInput(n int) []byte {
	b := []byte(`{"cluster":"demo","node_list":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(5000+i), 10)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}

// Target is a runtime with the leader function deployed, a client for it
// and function tokens: what Run measures. Close deletes the function and
// stops an in-process runtime.
type Target struct {
	// Client is the shared client, with the owner credential.
	Client *client.Client
	// Refs hold one function token each, for the same function.
	Refs []client.FunctionRef
	// Runtime is the in-process runtime, or nil.
	Runtime *Runtime
	// AttestTime is how long the client's attestation took.
	AttestTime time.Duration

	url  string
	opts client.Options
}

// Setup starts an in-process runtime (when url is empty), attests it,
// deploys the built-in leader function and mints the given number of
// function tokens for it.
func Setup(ctx context.Context, url string, opts client.Options, plaintext, singleShot bool, tokens int) (_ *Target, err error) {
	t := &Target{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if url == "" {
		if t.Runtime, err = StartRuntime(ctx, RuntimeOptions{}); err != nil {
			return nil, fmt.Errorf("bench: starting a runtime: %w", err)
		}
		url = t.Runtime.URL
		opts = client.Options{Trust: t.Runtime.Trust, OwnerToken: t.Runtime.Owner}
	}
	opts.Plaintext, opts.SingleShot = plaintext, singleShot
	t.url, t.opts = url, opts
	if t.Client, err = client.New(url, opts); err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := t.Client.Attest(ctx); err != nil {
		return nil, err
	}
	t.AttestTime = time.Since(start)
	b, err := functions.Builtin("leader")
	if err != nil {
		return nil, err
	}
	d, err := t.Client.Deploy(ctx, b, "bench-leader")
	if err != nil {
		return nil, fmt.Errorf("bench: deploying the leader function: %w", err)
	}
	t.Refs = []client.FunctionRef{{ID: d.FunctionID, Checksum: d.FunctionChecksum}}
	for i := range max(tokens, 1) {
		tok, err := t.Client.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
		if err != nil {
			return nil, fmt.Errorf("bench: minting a function token: %w", err)
		}
		if i == 0 {
			t.Refs[0].Token = tok.FunctionToken
		} else {
			t.Refs = append(t.Refs, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken})
		}
	}
	return t, nil
}

// Close deletes the function and stops the in-process runtime.
func (t *Target) Close() error {
	var err error
	if t.Client != nil {
		if len(t.Refs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = t.Client.Delete(ctx, t.Refs[0].ID)
			cancel()
		}
		t.Client.Close()
	}
	if t.Runtime != nil {
		if rerr := t.Runtime.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// Run runs the benchmark. A level with failed runs is reported, not
// returned as an error; an error means the benchmark could not run or did
// not finish within cfg.Timeout.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rep := &Report{
		Machine: ThisMachine(), Target: "in-process", Function: "leader", Members: cfg.Members,
		Sealed: !cfg.Plaintext, SingleShot: cfg.SingleShot && !cfg.Plaintext, Requests: cfg.Requests, Warmup: cfg.Warmup, Start: time.Now().UTC().Format(time.RFC3339),
		Source: ThisSource(), Command: cfg.Command, LoadBefore: LoadAvg(),
	}
	if cfg.EnclaveURL != "" {
		rep.Target = cfg.EnclaveURL
	}
	// One token per worker, so that a runtime's per-token rate limit
	// applies to each worker as to a separate client.
	t, err := Setup(ctx, cfg.EnclaveURL, cfg.Client, cfg.Plaintext, cfg.SingleShot, slices.Max(cfg.Concurrency))
	if err != nil {
		return nil, err
	}
	defer t.Close()
	rep.FunctionID, rep.FunctionChecksum = t.Refs[0].ID, t.Refs[0].Checksum
	rep.AttestMicros = micros(t.AttestTime)
	if id := t.Client.Cached(); id != nil {
		rep.Platform = id.Platform
	}
	input := LeaderInput(cfg.Members)
	rep.InputBytes = len(input)
	// The first run checks the function's statement and the output.
	res, err := t.Client.Run(ctx, t.Refs[0], input)
	if err != nil {
		return nil, fmt.Errorf("bench: first run: %w", err)
	}
	if err := CheckLeaderOutput(res.Output, cfg.Members); err != nil {
		return nil, err
	}
	want := res.Output
	var floor *Floor
	if cfg.Floor {
		shape, err := recordShape(ctx, t, input)
		if err != nil {
			return nil, err
		}
		rep.FloorShape = &shape
		if floor, err = StartFloor(ctx, shape, input); err != nil {
			return nil, err
		}
		defer floor.Close()
	}
	runReal := func(ctx context.Context, w int) error {
		res, err := t.Client.Run(ctx, t.Refs[w%len(t.Refs)], input)
		if err == nil && !bytes.Equal(res.Output, want) {
			err = fmt.Errorf("output %.100q differs from the first run's", res.Output)
		}
		return err
	}
	for _, c := range cfg.Concurrency {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "vouch-bench: run: concurrency %d: %d warm-up runs, then %d measured runs\n", c, cfg.Warmup, cfg.Requests)
		}
		if cfg.Warmup > 0 {
			if lv := runLevel(ctx, runReal, c, cfg.Warmup); lv.Errors > 0 {
				return nil, fmt.Errorf("bench: concurrency %d: %d of %d warm-up runs failed: %s", c, lv.Errors, cfg.Warmup, lv.FirstError)
			}
			if floor != nil {
				if lv := runLevel(ctx, floorCall(floor), c, cfg.Warmup); lv.Errors > 0 {
					return nil, fmt.Errorf("bench: concurrency %d: %d of %d floor warm-up runs failed: %s", c, lv.Errors, cfg.Warmup, lv.FirstError)
				}
			}
		}
		profile := len(rep.Results) == 0 && (cfg.CPUProfile != nil || cfg.Breakdown)
		var prof bytes.Buffer
		if profile {
			if err := pprof.StartCPUProfile(&prof); err != nil {
				return nil, err
			}
		}
		// The profiled level runs its real runs in one piece, so that the
		// profile holds nothing else; the floor follows.
		chunk := cfg.Requests
		if floor != nil && !profile {
			chunk = FloorChunk
		}
		var parts, floorParts []Level
		for done := 0; done < cfg.Requests; done += chunk {
			k := min(chunk, cfg.Requests-done)
			parts = append(parts, runLevel(ctx, runReal, c, k))
			if profile && done+k >= cfg.Requests {
				pprof.StopCPUProfile()
			}
			if floor != nil {
				floorParts = append(floorParts, runLevel(ctx, floorCall(floor), c, k))
			}
		}
		lv := mergeLevels(parts)
		if floor != nil {
			fl := mergeLevels(floorParts)
			lv.Floor = &fl
			if fl.P50Micros > 0 {
				lv.P50OverFloor = lv.P50Micros / fl.P50Micros
			}
		}
		if profile {
			if cfg.CPUProfile != nil {
				if _, err := cfg.CPUProfile.Write(prof.Bytes()); err != nil {
					return nil, err
				}
			}
			if cfg.Breakdown {
				if rep.Breakdown, err = AnalyzeProfile(bytes.NewReader(prof.Bytes()), cfg.Requests); err != nil {
					return nil, err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bench: concurrency %d: did not finish within %v: %w", c, cfg.Timeout, err)
		}
		rep.Results = append(rep.Results, lv)
	}
	rep.LoadAfter = LoadAvg()
	return rep, nil
}

// Load runs input n times with c workers and returns the level's
// figures; it fails if any run failed.
func (t *Target) Load(ctx context.Context, input []byte, c, n int) (Level, error) {
	res, err := t.Client.Run(ctx, t.Refs[0], input)
	if err != nil {
		return Level{}, err
	}
	want := res.Output
	lv := runLevel(ctx, func(ctx context.Context, w int) error {
		res, err := t.Client.Run(ctx, t.Refs[w%len(t.Refs)], input)
		if err == nil && !bytes.Equal(res.Output, want) {
			err = fmt.Errorf("output %.100q differs from the first run's", res.Output)
		}
		return err
	}, c, n)
	if lv.Errors > 0 {
		return lv, fmt.Errorf("bench: %d of %d runs failed: %s", lv.Errors, n, lv.FirstError)
	}
	return lv, nil
}

// CheckLeaderOutput checks the leader function's answer to LeaderInput(n).
func CheckLeaderOutput(out []byte, n int) error {
	var o struct {
		Cluster string   `json:"cluster"`
		Leader  string   `json:"leader"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return fmt.Errorf("bench: leader output is not JSON: %w", err)
	}
	if want := strconv.Itoa(5000 + n - 1); o.Cluster != "demo" || o.Leader != want || len(o.Members) != n {
		return fmt.Errorf("bench: leader output %.200s: want cluster demo, leader %s and %d members", out, want, n)
	}
	return nil
}

// floorCall adapts Floor.Call to runLevel.
func floorCall(f *Floor) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error { return f.Call(ctx) }
}

// runLevel makes n calls with c workers; call gets the worker's number.
func runLevel(ctx context.Context, call func(ctx context.Context, worker int) error, c, n int) Level {
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	var (
		next     atomic.Int64
		errCount atomic.Int64
		errOnce  sync.Once
		firstErr string
		wg       sync.WaitGroup
	)
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := call(ctx, w)
				lat[i] = time.Since(t0)
				if err != nil {
					failed[i] = true
					errCount.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)

	ok := make([]time.Duration, 0, n)
	for i, d := range lat {
		if !failed[i] {
			ok = append(ok, d)
		}
	}
	lv := Level{
		Concurrency:     c,
		Requests:        n,
		Errors:          int(errCount.Load()),
		FirstError:      firstErr,
		Seconds:         wall.Seconds(),
		CPUMicrosPerRun: micros(cpu) / float64(n),
		AllocsPerRun:    float64(ms1.Mallocs-ms0.Mallocs) / float64(n),
		BytesPerRun:     float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(n),
		GCs:             ms1.NumGC - ms0.NumGC,
		lat:             ok,
	}
	lv.summarize()
	return lv
}

// summarize computes the rate and the latency figures from lat.
func (lv *Level) summarize() {
	slices.Sort(lv.lat)
	if lv.Seconds > 0 {
		lv.RunsPerSec = float64(len(lv.lat)) / lv.Seconds
	}
	if len(lv.lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lv.lat {
		sum += d
	}
	lv.MeanMicros = micros(sum) / float64(len(lv.lat))
	lv.P50Micros = micros(percentile(lv.lat, 50))
	lv.P90Micros = micros(percentile(lv.lat, 90))
	lv.P99Micros = micros(percentile(lv.lat, 99))
	lv.MaxMicros = micros(lv.lat[len(lv.lat)-1])
}

// mergeLevels combines the chunks of one level: counts and times add up,
// per-run figures are weighted by runs, percentiles are over all runs.
func mergeLevels(parts []Level) Level {
	if len(parts) == 1 {
		return parts[0]
	}
	m := Level{Concurrency: parts[0].Concurrency}
	var cpu, allocs, bytes float64
	for _, p := range parts {
		m.Requests += p.Requests
		m.Errors += p.Errors
		if m.FirstError == "" {
			m.FirstError = p.FirstError
		}
		m.Seconds += p.Seconds
		m.GCs += p.GCs
		cpu += p.CPUMicrosPerRun * float64(p.Requests)
		allocs += p.AllocsPerRun * float64(p.Requests)
		bytes += p.BytesPerRun * float64(p.Requests)
		m.lat = append(m.lat, p.lat...)
	}
	if m.Requests > 0 {
		m.CPUMicrosPerRun = cpu / float64(m.Requests)
		m.AllocsPerRun = allocs / float64(m.Requests)
		m.BytesPerRun = bytes / float64(m.Requests)
	}
	m.summarize()
	return m
}

// percentile returns the nearest-rank percentile p of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// WriteTable prints the report as a table, one line per concurrency level.
func (r *Report) WriteTable(w io.Writer) error {
	mode := "sealed (HPKE session)"
	switch {
	case !r.Sealed:
		mode = "plaintext"
	case r.SingleShot:
		mode = "sealed (HPKE, single-shot)"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "runtime: %s (%s attestation); function: %s; %d members (%d B input), %s\n", r.Target, r.Platform, r.Function, r.Members, r.InputBytes, mode)
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %s", r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.CPUModel, r.Machine.GoVersion)
	if r.Target == "in-process" {
		b.WriteString("; client and runtime share these CPUs")
	}
	if r.LoadBefore != "" {
		fmt.Fprintf(&b, "; load average %s before", r.LoadBefore)
		if r.LoadAfter != "" {
			fmt.Fprintf(&b, ", %s after", r.LoadAfter)
		}
	}
	fmt.Fprintf(&b, "\ncode: %s", r.Source)
	fmt.Fprintf(&b, "\nattestation (one-time): %s\n\n", fmtMicros(r.AttestMicros))
	fmt.Fprintf(&b, "%11s %8s %9s %9s %9s %9s %9s %7s %9s %10s\n", "concurrency", "runs", "runs/s", "p50", "p90", "p99", "max", "errors", "CPU/run", "allocs/run")
	for _, l := range r.Results {
		fmt.Fprintf(&b, "%11d %8d %9.0f %9s %9s %9s %9s %7d %9s %10.0f\n", l.Concurrency, l.Requests, l.RunsPerSec,
			fmtMicros(l.P50Micros), fmtMicros(l.P90Micros), fmtMicros(l.P99Micros), fmtMicros(l.MaxMicros), l.Errors, fmtMicros(l.CPUMicrosPerRun), l.AllocsPerRun)
	}
	if r.FloorShape != nil {
		fmt.Fprintf(&b, "\nfloor, interleaved in chunks of %d runs: loopback HTTP of the same shape (%d B request, %d B response), AES-256-GCM seal and open, an empty warm wasm call, Ed25519 sign and verify\n", FloorChunk, r.FloorShape.RequestBytes, r.FloorShape.ResponseBytes)
		fmt.Fprintf(&b, "%11s %9s %9s %9s %9s %9s %11s\n", "concurrency", "runs/s", "p50", "p90", "p99", "CPU/run", "p50 ÷ floor")
		for _, l := range r.Results {
			if f := l.Floor; f != nil {
				fmt.Fprintf(&b, "%11d %9.0f %9s %9s %9s %9s %11.2f\n", l.Concurrency, f.RunsPerSec, fmtMicros(f.P50Micros), fmtMicros(f.P90Micros), fmtMicros(f.P99Micros), fmtMicros(f.CPUMicrosPerRun), l.P50OverFloor)
			}
		}
	}
	for _, l := range r.Results {
		if l.FirstError != "" {
			fmt.Fprintf(&b, "concurrency %d: first error: %s\n", l.Concurrency, l.FirstError)
		}
		if l.Floor != nil && l.Floor.FirstError != "" {
			fmt.Fprintf(&b, "concurrency %d: floor: first error: %s\n", l.Concurrency, l.Floor.FirstError)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func fmtMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e4:
		return fmt.Sprintf("%.1fms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.0fµs", us)
}

// Errors returns the number of failed runs over all levels.
func (r *Report) Errors() int {
	n := 0
	for _, l := range r.Results {
		n += l.Errors
		if l.Floor != nil {
			n += l.Floor.Errors
		}
	}
	return n
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ParseConcurrency parses a list such as "1,8,64".
func ParseConcurrency(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, errors.New("want positive integers separated by commas, such as 1,8,64")
		}
		out = append(out, n)
	}
	return out, nil
}
