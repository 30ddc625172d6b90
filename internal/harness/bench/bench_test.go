package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
)

func TestLeaderInput(t *testing.T) {
	if got, want := string(LeaderInput(3)), `{"cluster":"demo","node_list":["5000","5001","5002"]}`; got != want {
		t.Fatalf("LeaderInput(3) = %s, want %s", got, want)
	}
	if len(LeaderInput(100)) != 732 {
		t.Fatalf("LeaderInput(100) is %d bytes", len(LeaderInput(100)))
	}
}

func TestParseConcurrency(t *testing.T) {
	got, err := ParseConcurrency("1, 8,64")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 8 || got[2] != 64 {
		t.Fatalf("ParseConcurrency = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,,2", "x", "-1"} {
		if _, err := ParseConcurrency(bad); err == nil {
			t.Errorf("ParseConcurrency(%q) succeeded", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 90: 90, 99: 99, 100: 100, 0: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(d[:1], 99); got != 1 {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestCheckLeaderOutput(t *testing.T) {
	good := `{"cluster":"demo","leader":"5002","members":["5000","5001","5002"],"members_digest":"x"}`
	if err := CheckLeaderOutput([]byte(good), 3); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{good[:20], strings.Replace(good, `"5002",`, ``, 1), strings.Replace(good, `"leader":"5002"`, `"leader":"5000"`, 1)} {
		if err := CheckLeaderOutput([]byte(bad), 3); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestRun runs a small benchmark against an in-process runtime, sealed and
// in plaintext, and checks the report.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a runtime")
	}
	for _, plaintext := range []bool{false, true} {
		var progress bytes.Buffer
		// Enough runs that the CPU profile behind the breakdown (100 Hz)
		// takes samples even on a fast machine.
		const requests = 400
		cfg := Config{Requests: requests, Concurrency: []int{1, 4}, Members: 10, Warmup: 5, Plaintext: plaintext, Progress: &progress, Breakdown: true, Command: "vouch-bench run -n 400"}
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("plaintext=%v: %v", plaintext, err)
		}
		if rep.Sealed == plaintext || rep.Target != "in-process" || rep.Platform != "SIMULATED" || rep.Members != 10 ||
			rep.InputBytes != len(LeaderInput(10)) || rep.Requests != requests || len(rep.FunctionChecksum) != 64 || rep.FunctionID == "" || rep.AttestMicros <= 0 {
			t.Fatalf("report %+v", rep)
		}
		if rep.Machine.CPUs < 1 || rep.Machine.GoVersion == "" {
			t.Fatalf("machine %+v", rep.Machine)
		}
		// The code and the command that produced the figures, and the load.
		if rep.Command != cfg.Command || rep.Source.From == "" || (rep.Source.From != "unknown") != (rep.Source.Revision != "") {
			t.Fatalf("command %q, source %+v", rep.Command, rep.Source)
		}
		if _, err := os.Stat("/proc/loadavg"); err == nil && (rep.LoadBefore == "" || rep.LoadAfter == "") {
			t.Fatalf("load before %q, after %q", rep.LoadBefore, rep.LoadAfter)
		}
		if len(rep.Results) != 2 || rep.Results[0].Concurrency != 1 || rep.Results[1].Concurrency != 4 {
			t.Fatalf("results %+v", rep.Results)
		}
		for _, l := range rep.Results {
			if l.Requests != requests || l.Errors != 0 || l.FirstError != "" || l.RunsPerSec <= 0 || l.Seconds <= 0 || l.CPUMicrosPerRun <= 0 || l.AllocsPerRun <= 0 {
				t.Fatalf("level %+v", l)
			}
			if !(0 < l.P50Micros && l.P50Micros <= l.P90Micros && l.P90Micros <= l.P99Micros && l.P99Micros <= l.MaxMicros && l.MeanMicros <= l.MaxMicros) {
				t.Fatalf("latencies %+v", l)
			}
		}
		if rep.Errors() != 0 || !strings.Contains(progress.String(), "concurrency 4") {
			t.Fatalf("errors %d, progress %q", rep.Errors(), progress.String())
		}
		// The breakdown covers the first level and names its parts.
		b := rep.Breakdown
		if b == nil || b.Runs != requests || b.Total <= 0 || len(b.Parts) == 0 {
			t.Fatalf("breakdown %+v", b)
		}
		var table bytes.Buffer
		if err := rep.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"concurrency", "runs/s", "p50", "p99", "errors", "SIMULATED", map[bool]string{false: "sealed (HPKE session)", true: "plaintext"}[plaintext]} {
			if !strings.Contains(table.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, table.String())
			}
		}
		if lines := strings.Count(table.String(), "\n"); lines < 7 {
			t.Errorf("table has %d lines:\n%s", lines, table.String())
		}
		table.Reset()
		if err := b.WriteTable(&table); err != nil || !strings.Contains(table.String(), "per run") {
			t.Fatalf("breakdown table %q: %v", table.String(), err)
		}
		path := filepath.Join(t.TempDir(), "r.json")
		if err := rep.WriteJSON(path); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		var back Report
		if err := json.Unmarshal(raw, &back); err != nil || len(back.Results) != 2 || back.Results[1].P99Micros != rep.Results[1].P99Micros {
			t.Fatalf("JSON %s: %v", raw, err)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Requests: -1}, {Concurrency: []int{0}}, {Members: 10001}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

// TestRunTimesOut checks that a benchmark that cannot finish in time fails.
func TestRunTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a runtime")
	}
	_, err := Run(context.Background(), Config{Requests: 1_000_000, Warmup: 1, Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("a million runs finished in two seconds")
	}
}

// TestRunAgainstURL loads an existing runtime through its URL with the
// owner credential and a trust policy, as `vouch-bench run --enclave` does.
func TestRunAgainstURL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a runtime")
	}
	rt, err := StartRuntime(context.Background(), RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rep, err := Run(context.Background(), Config{EnclaveURL: rt.URL, Client: client.Options{Trust: rt.Trust, OwnerToken: rt.Owner},
		Requests: 20, Concurrency: []int{2}, Members: 3, Warmup: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Target != rt.URL || rep.Errors() != 0 || rep.Results[0].Requests != 20 {
		t.Fatalf("report %+v", rep)
	}
	// The benchmark deleted its function.
	c, _ := client.New(rt.URL, client.Options{Trust: rt.Trust, OwnerToken: rt.Owner})
	if fns, err := c.List(context.Background()); err != nil || len(fns) != 0 {
		t.Fatalf("functions left behind: %v, %v", fns, err)
	}
	// Without the owner credential nothing can be deployed.
	if _, err := Run(context.Background(), Config{EnclaveURL: rt.URL, Client: client.Options{Trust: rt.Trust}, Requests: 1}); err == nil {
		t.Fatal("ran without the owner credential")
	}
}

// FuzzAnalyzeProfile: the profile reader must refuse what is not a
// profile with an error, never a panic.
func FuzzAnalyzeProfile(f *testing.F) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		f.Fatal(err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	pprof.StopCPUProfile()
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{0x0a, 0x02, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		if bd, err := AnalyzeProfile(bytes.NewReader(b), 1); err == nil && bd == nil {
			t.Fatal("nil breakdown without an error")
		}
	})
}

// What is not a CPU profile is refused with an error. (An empty input is
// an empty protobuf message: a profile with no samples.)
func TestAnalyzeProfileRefusesGarbage(t *testing.T) {
	if bd, err := AnalyzeProfile(bytes.NewReader(nil), 1); err != nil || bd.Total != 0 || len(bd.Parts) != 0 {
		t.Fatalf("empty profile: %+v, %v", bd, err)
	}
	for name, b := range map[string][]byte{
		"not gzip":       []byte("hello"),
		"truncated gzip": {0x1f, 0x8b, 0x08},
	} {
		if bd, err := AnalyzeProfile(bytes.NewReader(b), 1); err == nil {
			t.Errorf("%s: accepted, breakdown %+v", name, bd)
		}
	}
}

// TestRunFloor measures the floor beside the real runs: every level gets
// the floor's figures from as many runs, interleaved, and their ratio.
func TestRunFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a runtime")
	}
	const requests = 2*FloorChunk + 10 // three chunks, the last one short
	rep, err := Run(context.Background(), Config{Requests: requests, Concurrency: []int{1, 3}, Members: 10, Warmup: 5, Floor: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.FloorShape; s == nil || s.RequestBytes < len(LeaderInput(10)) || s.ResponseBytes < floorMessageBytes+64 || s.RequestHeader.Get("Content-Type") == "" {
		t.Fatalf("floor shape %+v", rep.FloorShape)
	}
	for _, l := range rep.Results {
		f := l.Floor
		if f == nil || f.Requests != requests || f.Errors != 0 || f.Concurrency != l.Concurrency || f.P50Micros <= 0 || f.RunsPerSec <= 0 || f.CPUMicrosPerRun <= 0 {
			t.Fatalf("floor of level %d: %+v", l.Concurrency, f)
		}
		if l.Requests != requests || l.Errors != 0 || l.P50OverFloor != l.P50Micros/f.P50Micros {
			t.Fatalf("level %+v", l)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "p50 ÷ floor") {
		t.Fatalf("table %s: %v", table.String(), err)
	}
	if _, err := Run(context.Background(), Config{EnclaveURL: "http://127.0.0.1:1", Floor: true}); err == nil || !strings.Contains(err.Error(), "in-process") {
		t.Fatalf("floor against a remote runtime: %v", err)
	}
}

// A floor call fails on a bad signature and on a body it cannot open:
// the floor does the checks it claims to.
func TestFloorChecks(t *testing.T) {
	input := LeaderInput(3)
	f, err := StartFloor(context.Background(), Shape{RequestBytes: 100, ResponseBytes: 500}, input)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Call(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.pub = append(ed25519.PublicKey(nil), f.pub...)
	f.pub[0] ^= 1
	if err := f.Call(context.Background()); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("with another key: %v", err)
	}
	resp, err := http.Post(f.url, "application/octet-stream", strings.NewReader(strings.Repeat("x", 64)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body that does not open: %s", resp.Status)
	}
}

func TestMergeLevels(t *testing.T) {
	a := Level{Concurrency: 2, Requests: 2, Seconds: 1, CPUMicrosPerRun: 10, lat: []time.Duration{3 * time.Microsecond, time.Microsecond}}
	b := Level{Concurrency: 2, Requests: 2, Errors: 1, FirstError: "x", Seconds: 1, CPUMicrosPerRun: 30, lat: []time.Duration{2 * time.Microsecond}}
	a.summarize()
	b.summarize()
	m := mergeLevels([]Level{a, b})
	if m.Requests != 4 || m.Errors != 1 || m.FirstError != "x" || m.Seconds != 2 || m.RunsPerSec != 1.5 || m.CPUMicrosPerRun != 20 || m.P50Micros != 2 || m.MaxMicros != 3 {
		t.Fatalf("merged %+v", m)
	}
}

// BenchmarkFloor is one floor call at a time, shaped as a sealed call of
// the leader function with 100 members (docs/BENCHMARKS.md, "Against the
// floor"); vouch-bench run --floor measures it beside the real runs.
func BenchmarkFloor(b *testing.B) {
	f, err := StartFloor(context.Background(), Shape{RequestBytes: 814, ResponseBytes: 1656}, LeaderInput(100))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if err := f.Call(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
