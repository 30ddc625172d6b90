package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline/cmdlinetest"
	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// cleanEnv hides the caller's VOUCH_ variables from the test.
var cleanEnv = cmdlinetest.CleanEnv

type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("vouch-bench %s\nexit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// vouchBench runs doMain in-process.
func vouchBench(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := doMain(args, &stdout, &stderr)
	return result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// TestBenchRun runs `vouch-bench run` with a tiny request count against an
// in-process runtime and checks the table and the JSON file.
func TestBenchRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a runtime")
	}
	cleanEnv(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	r := vouchBench(t, "run", "-n", "50", "-c", "1,2", "--members", "5", "--warmup", "5", "--json", out, "--breakdown")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"sealed (HPKE session)", "concurrency", "runs/s", "p50", "p90", "p99", "max", "errors", "where the time goes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "client and runtime share") {
		t.Errorf("stderr does not say that client and runtime share the CPUs:\n%s", r.stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Sealed || rep.Members != 5 || len(rep.Results) != 2 || rep.Breakdown == nil {
		t.Fatalf("report %s", raw)
	}
	if !strings.HasPrefix(rep.Command, "vouch-bench run -n 50 -c 1,2") || rep.Source.From == "" {
		t.Fatalf("the report does not record its command and code: %q, %+v", rep.Command, rep.Source)
	}
	for i, l := range rep.Results {
		if l.Concurrency != i+1 || l.Requests != 50 || l.Errors != 0 || l.RunsPerSec <= 0 || l.P50Micros <= 0 || l.P50Micros > l.P99Micros {
			t.Fatalf("level %+v", l)
		}
	}
	if r := vouchBench(t, "run", "-n", "20", "-c", "2", "--members", "3", "--warmup", "1", "--plaintext"); r.code != 0 || !strings.Contains(r.stdout, "plaintext") {
		t.Fatalf("%s", r)
	}
}

func TestBenchUsage(t *testing.T) {
	cleanEnv(t)
	// Help lists every benchmark, and each prints its own flags.
	r := vouchBench(t, "-h")
	for _, b := range benchmarks() {
		if !strings.Contains(r.stderr, "\n  "+b.name+" ") {
			t.Errorf("help does not list %q:\n%s", b.name, r)
		}
		if r := vouchBench(t, b.name, "-h"); r.code != 0 || !strings.Contains(r.stderr, "Usage: vouch-bench "+b.name) {
			t.Errorf("%s", r)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "vouch-bench: error: no benchmark given"},
		{[]string{"-h"}, 0, "Usage: vouch-bench <benchmark>"},
		{[]string{"nope"}, 2, `unknown benchmark "nope"`},
		{[]string{"run", "-h"}, 0, "Usage: vouch-bench run"},
		{[]string{"run", "-c", "1,x"}, 2, `-c "1,x"`},
		{[]string{"run", "-n", "0"}, 2, "-n 0"},
		{[]string{"run", "extra"}, 2, "takes no arguments"},
		{[]string{"run", "--members", "0"}, 2, "--members 0"},
		{[]string{"run", "--warmup", "-1"}, 2, "--warmup -1"},
		{[]string{"run", "--floor", "--enclave", "http://127.0.0.1:1"}, 2, "--floor measures against the in-process runtime only"},
		{[]string{"failover", "-h"}, 0, "Usage: vouch-bench failover"},
		{[]string{"failover", "--sizes", "1"}, 2, "--sizes"},
		{[]string{"failover", "--schemes", "paxos"}, 2, `unknown scheme "paxos"`},
		{[]string{"failover", "--trials", "0"}, 2, "--trials 0"},
		{[]string{"dissemination", "-h"}, 0, "Usage: vouch-bench dissemination"},
		{[]string{"dissemination", "extra"}, 2, "takes no arguments"},
		{[]string{"rest", "--sizes", "", "--fp-duration", "0"}, 2, "nothing to run"},
		{[]string{"rest", "--views", "--schemes", "vouch-members"}, 2, "give one of them"},
		{[]string{"rest", "--schemes", "raft"}, 2, "not raft"},
		{[]string{"rest", "--join-seeds", "0"}, 2, "--join-seeds 0"},
		{[]string{"failover", "--join-seeds", "0"}, 2, "--join-seeds 0"},
		{[]string{"messages", "--sizes", "1000"}, 2, "--sizes"},
		{[]string{"replicas", "-h"}, 0, "Usage: vouch-bench replicas"},
		{[]string{"replicas", "extra"}, 2, "takes no arguments"},
		{[]string{"replicas", "--sizes", "1"}, 2, "--sizes"},
		{[]string{"replicas", "--trials", "0"}, 2, "--trials ≥ 1"},
		{[]string{"replicas", "--raft-timeout", "-1s"}, 2, "--raft-timeout ≥ 0"},
		{[]string{"replication-cost", "-h"}, 0, "Usage: vouch-bench replication-cost"},
		{[]string{"replication-cost", "extra"}, 2, "takes no arguments"},
		{[]string{"replication-cost", "--members", "0"}, 2, "--members 1 to 100"},
		{[]string{"replication-cost", "--rounds", "0"}, 2, "--rounds"},
		{[]string{"plot"}, 2, "--in is required"},
		{[]string{"plot", "--in", "x.json", "--format", "gif"}, 2, `--format "gif"`},
	} {
		r := vouchBench(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want exit %d and %q:\n%s", tc.code, tc.want, r)
		}
	}
}

// TestBenchScaleJSON runs `vouch-bench failover` on raft alone (fast) and
// checks that the JSON records the code, the command and the machine's
// load; then cuts a run short with --timeout and checks that what was
// measured is written, marked partial, and that the exit says so.
func TestBenchScaleJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft clusters")
	}
	cleanEnv(t)
	out := filepath.Join(t.TempDir(), "f.json")
	r := vouchBench(t, "failover", "--sizes", "3", "--trials", "1", "--schemes", "raft", "--settle", "50ms", "--json", out)
	if r.code != 0 || !strings.Contains(r.stdout, "code: ") || !strings.Contains(r.stdout, "censored p50") {
		t.Fatalf("%s", r)
	}
	var rep scale.Report
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Command != "vouch-bench failover --sizes 3 --trials 1 --schemes raft --settle 50ms --json "+out || rep.Source.From == "" || rep.Partial != "" || rep.Failover == nil || len(rep.Failover.Series) != 1 {
		t.Fatalf("report %s", raw)
	}
	if _, err := os.Stat("/proc/loadavg"); err == nil && (rep.Machine.LoadBefore == "" || rep.Machine.LoadAfter == "") {
		t.Fatalf("no load average: %s", raw)
	}

	r = vouchBench(t, "failover", "--sizes", "3", "--trials", "50", "--schemes", "raft", "--settle", "50ms", "--timeout", "4s", "--json", out)
	if r.code != 1 || !strings.Contains(r.stderr, "did not finish") || !strings.Contains(r.stderr, "marked partial") {
		t.Fatalf("want exit 1 and a partial result:\n%s", r)
	}
	raw, _ = os.ReadFile(out)
	rep = scale.Report{}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Partial, "--timeout 4s") || rep.Failover == nil || len(rep.Failover.Series) != 1 || rep.Failover.Series[0].Trials < 1 || rep.Failover.Series[0].Trials >= 50 {
		t.Fatalf("partial report %s", raw)
	}
}

func TestBenchWarnsAboutRaftDescriptors(t *testing.T) {
	var out, errb strings.Builder
	u := &ui{Prog: prog, Out: &out, Err: &errb}
	warnRaftDescriptors(u, []string{"raft"}, []int{3, 5})
	warnRaftDescriptors(u, []string{"vouch-members"}, []int{999})
	if errb.Len() != 0 {
		t.Fatalf("warned for small raft clusters or for no raft at all: %s", errb.String())
	}
	if _, limit := scale.Descriptors(); limit <= 0 || limit > scale.RaftDescriptors(999) {
		t.Skip("no descriptor limit to exceed here")
	}
	warnRaftDescriptors(u, []string{"vouch-views", "raft"}, []int{10, 999})
	if !strings.Contains(errb.String(), "vouch-bench: warning: raft with 999 servers") || !strings.Contains(errb.String(), "vouch-bench: hint: run raft's servers in child processes") {
		t.Fatalf("no warning for 999 raft servers: %q", errb.String())
	}
}
