package scale

import (
	"bytes"
	"compress/lzw"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/receipt"
)

// The tests run a tiny version of every measurement and check the shape
// of the result. They assert no timing: performance goals live in the
// benchmarks (docs/BENCHMARKS.md), not in tests.

// ctxFor bounds a tiny run by d, times 5: a run deploys and compiles the
// built-in functions, which alone takes over a minute under -race on a
// loaded 2-core machine, and these tests check shapes, not speed.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*d)
	t.Cleanup(cancel)
	return ctx
}

func TestFailoverTiny(t *testing.T) {
	checkpoints := 0
	r, err := Failover(ctxFor(t, 2*time.Minute), FailoverOptions{Sizes: []int{3}, Trials: 1, Settle: 100 * time.Millisecond,
		Checkpoint: func(r *FailoverResult) { checkpoints++ }})
	if err != nil {
		t.Fatal(err)
	}
	if checkpoints != 3 {
		t.Errorf("%d checkpoints, want one per trial (3)", checkpoints)
	}
	if len(r.Series) != 3 {
		t.Fatalf("got %d series, want one per scheme (3)", len(r.Series))
	}
	for _, s := range r.Series {
		if s.N != 3 || s.Trials != 1 || s.All.N+s.Failed != s.Trials {
			t.Errorf("%s: inconsistent series %+v", s.Scheme, s)
		}
		if s.All.N != 1 || len(s.SamplesMs) != 1 || s.All.P50 <= 0 || s.First.P50 <= 0 || s.First.P50 > s.All.P50 {
			t.Errorf("%s: want one successful trial with first ≤ all, got %+v (errors %v)", s.Scheme, s, s.Errors)
		}
		if (s.Scheme == SchemeViews) != (s.Acting != nil) {
			t.Errorf("%s: leader-acting times only with signed views, got %v", s.Scheme, s.Acting)
		}
		if s.StartFailed != 0 || s.TimedOut != 0 || s.Censored.N != 1 || s.Censored.Censored != 0 || s.Censored.P50.Above || s.Censored.P50.Ms != s.All.P50 || s.BoundMs != 20000 {
			t.Errorf("%s: failure counts and censored quantiles %+v", s.Scheme, s)
		}
	}
	if len(r.Ratios) != 2 {
		t.Errorf("got %d ratios, want 2 (each vouch scheme over raft)", len(r.Ratios))
	}
	for _, x := range r.Ratios {
		if x.P50 <= 0 {
			t.Errorf("ratio %+v", x)
		}
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil || !strings.Contains(b.String(), "raft") || !strings.Contains(b.String(), "p99 (= max of 1)") || !strings.Contains(b.String(), "censored p50") {
		t.Errorf("table: %v\n%s", err, b.String())
	}
}

// TestFailoverFailures: timeouts after the kill and start failures are
// counted apart, timeouts enter the censored quantiles as "> bound", the
// errors carry raft's state, and a run whose context ends returns what it
// measured.
func TestFailoverFailures(t *testing.T) {
	raftOnly := FailoverOptions{Sizes: []int{3}, Schemes: []string{SchemeRaft}, Settle: 50 * time.Millisecond, GiveUpAfter: 10}

	o := raftOnly
	o.Trials, o.Within = 2, time.Millisecond // no failover is that fast
	o.Burn = 1                               // a hog alongside, recorded and stopped at the end
	r, err := Failover(ctxFor(t, time.Minute), o)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil || r.Burn != 1 || !strings.Contains(tb.String(), "1 CPU-burning goroutines alongside") {
		t.Fatalf("burn not recorded: %d, %v\n%s", r.Burn, err, tb.String())
	}
	s := r.Series[0]
	if s.Trials != 2 || s.Failed != 2 || s.TimedOut != 2 || s.StartFailed != 0 || s.All.N != 0 || s.BoundMs != 1 {
		t.Fatalf("timeouts: %+v", s)
	}
	if c := s.Censored; c.N != 2 || c.Censored != 2 || !c.P50.Above || c.P50.Ms != 1 || c.P99.String() != "> 1" {
		t.Fatalf("censored quantiles of two timeouts: %+v", c)
	}
	if len(s.Errors) != 2 || !strings.HasPrefix(s.Errors[0], "failover: timed out after 1ms") || !strings.Contains(s.Errors[0], "term") || !strings.Contains(s.Errors[0], "last contact") {
		t.Fatalf("errors %q", s.Errors)
	}
	if open, limit := Descriptors(); open > 0 && limit > 0 && !strings.Contains(s.Errors[0], "descriptors open (limit") {
		t.Fatalf("the error does not say how close the process is to its descriptor limit: %q", s.Errors[0])
	}
	if RaftDescriptors(100) != 19900 {
		t.Errorf("RaftDescriptors(100) = %d", RaftDescriptors(100))
	}

	o = raftOnly
	o.Trials, o.StartWithin = 1, time.Microsecond // no cluster forms that fast
	if r, err = Failover(ctxFor(t, time.Minute), o); err != nil {
		t.Fatal(err)
	}
	if s := r.Series[0]; s.Failed != 1 || s.StartFailed != 1 || s.TimedOut != 0 || s.Censored.N != 0 || !strings.HasPrefix(s.Errors[0], "start: ") || !strings.Contains(s.Errors[0], "raft servers did not agree") {
		t.Fatalf("start failure: %+v", s)
	}

	// Interrupted after the first trial: the result holds it.
	ctx, cancel := context.WithCancel(ctxFor(t, time.Minute))
	o = raftOnly
	o.Trials, o.Checkpoint = 5, func(*FailoverResult) { cancel() }
	r, err = Failover(ctx, o)
	if !errors.Is(err, context.Canceled) || r == nil || len(r.Series) != 1 || r.Series[0].Trials != 1 || r.Series[0].All.N != 1 {
		t.Fatalf("interrupted run: %v, %+v", err, r)
	}
}

func TestDisseminationTiny(t *testing.T) {
	r, err := Dissemination(ctxFor(t, time.Minute), DisseminationOptions{Sizes: []int{3}, Certs: 2, Refresh: 400 * time.Millisecond, ModelRuns: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 1 {
		t.Fatalf("got %d series", len(r.Series))
	}
	s := r.Series[0]
	if s.Error != "" || s.Certs != 2 || s.To100.N+s.Incomplete != s.Certs || s.To99.N < s.To100.N || s.To90.N < s.To99.N || s.K90 != 3 || s.K99 != 3 {
		t.Errorf("inconsistent series %+v", s)
	}
	for _, c := range []CensoredQuantiles{s.To90Censored, s.To99Censored, s.To100Censored} {
		if c.N != s.Certs {
			t.Errorf("censored quantiles over %d certificates, want all %d: %+v", c.N, s.Certs, c)
		}
	}
	if s.To100Censored.Censored != s.Incomplete {
		t.Errorf("%d censored, %d incomplete", s.To100Censored.Censored, s.Incomplete)
	}
	if s.Fanout != 3 || s.TransmitLimit != 3 || s.GossipIntervalMs != 50 || s.ClosedFormRounds <= 0 || s.ModelRounds100 < s.ModelRounds99 || s.ModelRounds99 < s.ModelRounds90 {
		t.Errorf("model fields %+v", s)
	}
}

func TestRestTiny(t *testing.T) {
	r, err := Rest(ctxFor(t, time.Minute), RestOptions{Sizes: []int{3}, Schemes: []string{SchemeMembers, SchemeViews}, JoinSeeds: 2, Warmup: 100 * time.Millisecond, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 2 || r.JoinSeeds != 2 {
		t.Fatalf("got %d series, want one per scheme: %+v", len(r.Series), r)
	}
	for i, s := range r.Series {
		if s.Error != "" || s.N != 3 || s.PacketsPerS <= 0 || s.BytesPerS <= s.PacketsPerS || s.RSSMiB <= 0 || s.HeapPerNodeMiB <= 0 || s.GoroutinesPerNode <= 0 || s.CPUMsPerSPerNode < 0 {
			t.Errorf("series %+v", s)
		}
		if s.PeakRSSMiB < s.RSSMiB || s.PeakRSSPerNodeMiB*3 < s.PeakRSSMiB-0.01 {
			t.Errorf("peak RSS %.2f MiB (%.2f per node) below the end-of-window RSS %.2f MiB", s.PeakRSSMiB, s.PeakRSSPerNodeMiB, s.RSSMiB)
		}
		if want := []string{SchemeMembers, SchemeViews}[i]; s.Scheme != want {
			t.Errorf("series %d is %s, want %s", i, s.Scheme, want)
		}
	}
	// Signed views submit views at rest; the member list does not call.
	if r.Series[1].RuntimeCallsPerS <= r.Series[0].RuntimeCallsPerS {
		t.Errorf("runtime calls at rest: members %.1f/s, views %.1f/s", r.Series[0].RuntimeCallsPerS, r.Series[1].RuntimeCallsPerS)
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil || !strings.Contains(b.String(), SchemeViews) || !strings.Contains(b.String(), "peak RSS") {
		t.Errorf("table: %v\n%s", err, b.String())
	}
	if _, err := Rest(ctxFor(t, time.Minute), RestOptions{Sizes: []int{3}, Schemes: []string{SchemeRaft}}); err == nil {
		t.Error("cost at rest of raft should be refused")
	}
}

func TestJoinVia(t *testing.T) {
	for _, tc := range []struct{ i, seeds, want int }{{1, 0, 0}, {7, 1, 0}, {1, 3, 0}, {2, 3, 0}, {3, 3, 0}, {4, 3, 1}, {5, 3, 2}, {9, 4, 1}} {
		if got := joinVia(tc.i, tc.seeds); got != tc.want {
			t.Errorf("joinVia(%d, %d) = %d, want %d", tc.i, tc.seeds, got, tc.want)
		}
	}
}

func TestMessagesTiny(t *testing.T) {
	r, err := Messages(ctxFor(t, 2*time.Minute), MessagesOptions{Sizes: []int{3}, Trials: 1, Background: 500 * time.Millisecond, Tail: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 2 {
		t.Fatalf("got %d series, want signed views and raft", len(r.Series))
	}
	for _, s := range r.Series {
		if s.Failed != 0 || s.PBFT != 12 || s.MinBFT != 6 || s.Total <= 0 {
			t.Errorf("%s: %+v", s.Scheme, s)
		}
		switch s.Scheme {
		case SchemeRaft:
			// The responses are counted: every vote a candidate won was
			// answered, and the new leader announced itself to the other
			// survivor, which answered.
			if s.Votes < 1 || s.VoteResps < 1 || s.VoteResps > s.Votes || s.PreVoteResps > s.PreVotes || s.Announces < 1 || s.AnnounceResps < 1 || s.Rounds < 1 || s.RaftFormula != 8 {
				t.Errorf("raft: want votes and their answers, an announcement and one round, got %+v", s)
			}
			if want := s.PreVotes + s.PreVoteResps + s.Votes + s.VoteResps + s.Announces + s.AnnounceResps; s.Total != want {
				t.Errorf("raft total %v, want %v", s.Total, want)
			}
		case SchemeViews:
			// The new certificate must be seen in packets: this checks
			// the packet decoder against real memberlist traffic.
			if s.RuntimeCalls < 1 || s.CertPackets < 1 || s.CertMsgs < s.CertPackets || s.ExcessP25 > s.ExcessRuntimeCalls || s.ExcessRuntimeCalls > s.ExcessP75 {
				t.Errorf("views: want runtime calls and certificate packets, got %+v", s)
			}
			if want := s.CertPackets + 2*max(0, s.ExcessRuntimeCalls); math.Abs(s.Total-want) > 0.01 { // each rounded to 0.001
				t.Errorf("views total %v, want %v (one trial)", s.Total, want)
			}
		}
	}
}

// TestMessagesTotals: a negative excess of runtime calls (fewer than the
// idle rate predicts) is noise, never a discount on the certificate
// packets; the spread of the excess is reported.
func TestMessagesTotals(t *testing.T) {
	ts := []msgTrial{{excess: -1, certPkts: 6}, {excess: -3, certPkts: 8}, {excess: 2, certPkts: 7}, {excess: 0.5, certPkts: 6}, {excess: -0.5, certPkts: 6}}
	s := summarizeMessages(MessagesSeries{Scheme: SchemeViews, N: 3}, ts)
	// Per trial: 6, 8 (no discount for -3), 7+2×2, 6+2×0.5, 6; median 7.
	if s.Total != 7 || s.CertPackets != 6 || s.ExcessRuntimeCalls != -0.5 || s.ExcessP25 != -1 || s.ExcessP75 != 0.5 || !s.ExcessIsNoise() {
		t.Fatalf("%+v", s)
	}
	if got := s.ExcessString(); got != "≈0 (IQR -1.0 to 0.5)" {
		t.Errorf("excess shown as %q", got)
	}
	ts = []msgTrial{{excess: 10, certPkts: 20}, {excess: 12, certPkts: 20}, {excess: 11, certPkts: 20}}
	s = summarizeMessages(MessagesSeries{Scheme: SchemeViews, N: 3}, ts)
	if s.Total != 42 || s.ExcessIsNoise() || s.ExcessString() != "11.0 (IQR 10.5 to 11.5)" {
		t.Fatalf("%+v, %q", s, s.ExcessString())
	}
	r := summarizeMessages(MessagesSeries{Scheme: SchemeRaft, N: 5}, []msgTrial{{preVotes: 4, preVoteResps: 3, votes: 4, voteResps: 3, announces: 4, announceResps: 3}})
	if r.Total != 21 || r.RaftFormula != 16 {
		t.Fatalf("%+v", r)
	}
	if q := quantile([]float64{4, 1, 3, 2}, 0.5); q != 2.5 {
		t.Errorf("median of 1..4 = %v", q)
	}
}

func TestFalsePositivesTiny(t *testing.T) {
	r, err := FalsePositives(ctxFor(t, time.Minute), FalsePositiveOptions{N: 3, Duration: time.Second, Burn: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 3 || r.DurationS < 1 || r.Scheme != SchemeMembers || r.Burn != 1 || r.Departures < 0 {
		t.Errorf("result %+v", r)
	}
}

func TestSimulateGossip(t *testing.T) {
	a99, a100, _ := SimulateGossip(10, 3, 6, 200)
	b99, b100, _ := SimulateGossip(1000, 3, 12, 200)
	if a99 <= 0 || a100 < a99 || b100 < b99 || b99 <= a99 {
		t.Errorf("rounds: N=10 %v/%v, N=1000 %v/%v", a99, a100, b99, b100)
	}
	if r99, r100, inc := SimulateGossip(1, 3, 3, 10); r99 != 0 || r100 != 0 || inc != 0 {
		t.Error("one node needs no rounds")
	}
	r, _ := SimulateGossipTo(100, 3, 6, 200, []int{90, 99, 100})
	if !(0 < r[0] && r[0] <= r[1] && r[1] <= r[2]) {
		t.Errorf("rounds to 90, 99, 100 of 100: %v", r)
	}
	// A budget of one send per node cannot reach 1000 nodes: "never" is
	// -1, which JSON can carry.
	if r, inc := SimulateGossipTo(1000, 1, 1, 20, []int{1000}); r[0] != -1 || inc != 1 {
		t.Errorf("an exhausted budget: %v rounds, %v incomplete", r, inc)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	q := Summarize(ds)
	if q.N != 100 || q.Min != 1 || q.P50 != 50 || q.P90 != 90 || q.P99 != 99 || q.Max != 100 || q.Mean != 50.5 {
		t.Errorf("%+v", q)
	}
	if q := Summarize(ds[:3]); q.P99 != 3 || q.P50 != 2 {
		t.Errorf("small sample: %+v", q)
	}
	// 20 trials: p99 is the maximum, p95 the second largest, p90 the
	// third largest.
	if q := Summarize(ds[:20]); q.P99 != 20 || q.P95 != 19 || q.P90 != 18 || q.P99 != q.Max {
		t.Errorf("20 samples: %+v", q)
	}
	if q.P95 != 95 {
		t.Errorf("p95 of 100: %v", q.P95)
	}
	for n, want := range map[int]string{20: "p99 (= max of 20)", 99: "p99 (= max of 99)", 100: "p99", 0: "p99"} {
		if got := P99Label(n); got != want {
			t.Errorf("P99Label(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSummarizeCensored(t *testing.T) {
	var ok []time.Duration
	for i := 1; i <= 18; i++ {
		ok = append(ok, time.Duration(i)*time.Millisecond)
	}
	// Without censored values: the same as Summarize.
	c, q := SummarizeCensored(ok, nil), Summarize(ok)
	if c.N != 18 || c.Censored != 0 || c.P50 != (Bounded{Ms: q.P50}) || c.P90 != (Bounded{Ms: q.P90}) || c.P99 != (Bounded{Ms: q.P99}) {
		t.Fatalf("uncensored: %+v against %+v", c, q)
	}
	// 18 successes and 2 timeouts at a 20 s bound: the median is
	// observed, p95 and p99 fall on timeouts.
	bound := 20 * time.Second
	c = SummarizeCensored(ok, []time.Duration{bound, bound})
	if c.N != 20 || c.Censored != 2 || c.P50 != (Bounded{Ms: 10}) || c.P90 != (Bounded{Ms: 18}) || c.P95 != (Bounded{Ms: 20000, Above: true}) || c.P99.String() != "> 20000" {
		t.Fatalf("two timeouts: %+v", c)
	}
	// Most trials timed out: even the median is only a bound.
	c = SummarizeCensored(ok[:2], []time.Duration{bound, bound, bound})
	if !c.P50.Above || c.P50.String() != "> 20000" {
		t.Fatalf("three timeouts of five: %+v", c)
	}
	// Different bounds: the k-th censored value is above the k-th
	// smallest bound.
	c = SummarizeCensored(nil, []time.Duration{3 * time.Second, time.Second, 2 * time.Second})
	if c.P50 != (Bounded{Ms: 2000, Above: true}) || c.P99 != (Bounded{Ms: 3000, Above: true}) {
		t.Fatalf("mixed bounds: %+v", c)
	}
	if c := SummarizeCensored(nil, nil); c.N != 0 || c.P50 != (Bounded{}) {
		t.Fatalf("empty: %+v", c)
	}
}

// testCert is a well-formed (unsigned) certificate with a term.
func testCert(term int) []byte {
	hex := strings.Repeat("ab", 32)
	c := &election.Certificate{Output: []byte(`{"term":` + string(rune('0'+term)) + `}`),
		Receipt: receipt.Receipt{FunctionID: "fn", FunctionChecksum: hex, InputSHA256: hex, OutputSHA256: hex, Seq: 7, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), KeyID: hex, Signature: []byte{1}}}
	return append([]byte{nodeCert}, c.Encode()...)
}

func TestCertsIn(t *testing.T) {
	user := append([]byte{mlUser}, testCert(5)...)
	ping := []byte{0, 1, 2, 3}
	// compound: type, count, lengths, parts
	compound := []byte{mlCompound, 2}
	compound = binary.BigEndian.AppendUint16(compound, uint16(len(ping)))
	compound = binary.BigEndian.AppendUint16(compound, uint16(len(user)))
	compound = append(append(compound, ping...), user...)
	label := func(b []byte) []byte { return append([]byte{mlHasLabel, 3, 'a', 'b', 'c'}, b...) }
	var lz bytes.Buffer
	w := lzw.NewWriter(&lz, lzw.LSB, 8)
	w.Write(compound)
	w.Close()
	var packed bytes.Buffer
	if err := codec.NewEncoder(&packed, &codec.MsgpackHandle{}).Encode(struct {
		Algo uint8
		Buf  []byte
	}{0, lz.Bytes()}); err != nil {
		t.Fatal(err)
	}
	compressed := append([]byte{mlCompress}, packed.Bytes()...)
	crc := append([]byte{mlHasCRC, 0, 0, 0, 0}, compressed...)
	for _, tc := range []struct {
		name  string
		b     []byte
		floor uint64
		want  int
	}{
		{"user", label(user), 4, 1},
		{"user at floor", label(user), 5, 0},
		{"compound", label(compound), 0, 1},
		{"compressed", label(compressed), 0, 1},
		{"crc", label(crc), 0, 1},
		{"ping", label(ping), 0, 0},
		{"truncated", label(compound[:5]), 0, 0},
		{"garbage user", label([]byte{mlUser, nodeCert, 9, 9}), 0, 0},
	} {
		if got := certsIn(tc.b, tc.floor); got != tc.want {
			t.Errorf("%s: %d certificates, want %d", tc.name, got, tc.want)
		}
	}
}

func TestReportAndPlot(t *testing.T) {
	dir := t.TempDir()
	rep := NewReport("test")
	rep.Machine.CPUModel = "failover machine"
	rep.Failover = &FailoverResult{Profile: "local", Raft: DefaultRaftTiming(), Series: []FailoverSeries{
		{Scheme: SchemeMembers, N: 3, Trials: 1, All: Quantiles{N: 1, P50: 900, P99: 1000}},
		{Scheme: SchemeMembers, N: 10, Trials: 20, Failed: 6, TimedOut: 6, All: Quantiles{N: 14, P50: 1000, P99: 1200}},
		{Scheme: SchemeRaft, N: 3, Trials: 1, All: Quantiles{N: 1, P50: 800, P99: 1100}},
		{Scheme: SchemeRaft, N: 10, Trials: 1, All: Quantiles{N: 1, P50: 700, P99: 900}},
	}}
	rep.Machine.Finish()
	f1 := filepath.Join(dir, "f.json")
	if err := rep.WriteJSON(f1); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(f1); !bytes.Contains(raw, []byte(`"source"`)) || !bytes.Contains(raw, []byte(`"from"`)) {
		t.Errorf("the JSON does not record the code it ran:\n%s", raw)
	}
	d := NewReport("test d")
	d.Machine.CPUModel = "dissemination machine"
	d.Dissemination = &DisseminationResult{Series: []DisseminationSeries{
		{N: 10, Certs: 20, Incomplete: 18, To99: Quantiles{N: 2, P50: 60}, To100: Quantiles{N: 2, P50: 70, P99: 90}, GossipIntervalMs: 50, ClosedFormRounds: 2.4, ModelRounds99: 1.7, ModelRounds100: 1.7},
		{N: 50, Certs: 1, To99: Quantiles{N: 1, P50: 110}, To100: Quantiles{N: 1, P50: 140, P99: 200}, GossipIntervalMs: 50, ClosedFormRounds: 4.1, ModelRounds99: 2.9, ModelRounds100: -1},
	}}
	f2 := filepath.Join(dir, "d.json")
	if err := d.WriteJSON(f2); err != nil {
		t.Fatal(err)
	}
	merged, err := ReadReports(f1, f2)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Failover == nil || merged.Dissemination == nil || merged.Command != "test" || len(merged.Failover.Series) != 4 {
		t.Fatalf("merged report %+v", merged)
	}
	files, err := Plot(merged, filepath.Join(dir, "plots"), "svg")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("wrote %v", files)
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: not an SVG (%v)", f, err)
		}
		// Partial points are labelled ok/trials, and each plot names the
		// machine of its own file.
		label, machine := []string{"14/20", "2/20"}[i], []string{"failover machine", "dissemination machine"}[i]
		if !bytes.Contains(b, []byte(label)) || !bytes.Contains(b, []byte("partial")) || !bytes.Contains(b, []byte(machine)) {
			t.Errorf("%s: no partial mark %q or machine %q", f, label, machine)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("the directory holds %d entries, want f.json, d.json and plots (no temporary files)", len(ents))
	}
	if _, err := Plot(&Report{}, dir, "svg"); err == nil {
		t.Error("plotting an empty report should fail")
	}
}

// TestFormationReportAndPlot: formation series from two files merge (a
// size already present is kept from the first) and plot against N, with
// the sizes that did not form marked.
func TestFormationReportAndPlot(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ss ...FormationSeries) string {
		rep := NewReport("test " + name)
		rep.Machine.CPUModel = "formation machine"
		rep.Formation = ss
		rep.Machine.Finish()
		f := filepath.Join(dir, name)
		if err := rep.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	f1 := write("a.json", FormationSeries{N: 10, Scheme: SchemeMembers, StartS: 0.8}, FormationSeries{N: 25, Scheme: SchemeMembers, StartS: 1.9})
	f2 := write("b.json", FormationSeries{N: 25, Scheme: SchemeMembers, StartS: 99}, FormationSeries{N: 200, Scheme: SchemeMembers, StartS: 90, Error: "did not agree"})
	merged, err := ReadReports(f1, f2)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Formation) != 3 || merged.Formation[1].StartS != 1.9 {
		t.Fatalf("merged formation %+v", merged.Formation)
	}
	files, err := Plot(merged, filepath.Join(dir, "plots"), "svg")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Base(files[0]) != "formation.svg" {
		t.Fatalf("wrote %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("did not form")) || !bytes.Contains(b, []byte("formation machine")) {
		t.Errorf("%s: not an SVG with a did-not-form mark and the machine (%v)", files[0], err)
	}
}

// TestNoDescriptorLeak: killing and closing clusters must close every
// socket, or long benchmark runs run out of descriptors.
func TestNoDescriptorLeak(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	before := fds()
	for range 2 {
		c, err := StartRaft(5, DefaultRaftTiming())
		if err != nil {
			t.Fatal(err)
		}
		leader, err := c.WaitStable(ctxFor(t, 30*time.Second), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Kill(c.Index(leader))
		time.Sleep(200 * time.Millisecond)
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if after := fds(); after > before+5 {
		t.Errorf("%d descriptors open after two raft clusters, %d before", after, before)
	}
}

// FuzzCertsIn: the packet classifier reads whatever memberlist sends,
// including garbage; it must never panic, and never count more
// certificates than the packet has bytes.
func FuzzCertsIn(f *testing.F) {
	user := append([]byte{mlUser}, testCert(5)...)
	f.Add(append([]byte{mlHasLabel, 3, 'a', 'b', 'c'}, user...), uint64(0))
	f.Add([]byte{mlCompound, 2, 0, 4, 0, 9, 1, 2}, uint64(0))
	f.Add([]byte{mlCompress, 0x82}, uint64(1))
	f.Add([]byte{mlHasCRC, 0, 0, 0, 0, mlUser, nodeCert}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, floor uint64) {
		if n := certsIn(b, floor); n < 0 || n > len(b) {
			t.Fatalf("%d certificates in %d bytes", n, len(b))
		}
	})
}
