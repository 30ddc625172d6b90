package scale

import (
	"bytes"
	"compress/lzw"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"vouch/election"
	"vouch/receipt"
)

// The tests run a tiny version of every measurement and check the shape
// of the result. They assert no timing: performance goals live in the
// benchmarks (docs/BENCHMARKS.md), not in tests.

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestFailoverTiny(t *testing.T) {
	r, err := Failover(ctxFor(t, 2*time.Minute), FailoverOptions{Sizes: []int{3}, Trials: 1, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
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
	if err := r.WriteTable(&b); err != nil || !strings.Contains(b.String(), "raft") {
		t.Errorf("table: %v\n%s", err, b.String())
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
	if s.Error != "" || s.Certs != 2 || s.To100.N+s.Incomplete != s.Certs || s.To99.N < s.To100.N {
		t.Errorf("inconsistent series %+v", s)
	}
	if s.Fanout != 3 || s.TransmitLimit != 3 || s.GossipIntervalMs != 50 || s.ClosedFormRounds <= 0 || s.ModelRounds100 < s.ModelRounds99 {
		t.Errorf("model fields %+v", s)
	}
}

func TestRestTiny(t *testing.T) {
	r, err := Rest(ctxFor(t, time.Minute), RestOptions{Sizes: []int{3}, Warmup: 100 * time.Millisecond, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 1 {
		t.Fatalf("got %d series", len(r.Series))
	}
	s := r.Series[0]
	if s.Error != "" || s.N != 3 || s.PacketsPerS <= 0 || s.BytesPerS <= s.PacketsPerS || s.RSSMiB <= 0 || s.HeapPerNodeMiB <= 0 || s.GoroutinesPerNode <= 0 || s.CPUMsPerSPerNode < 0 {
		t.Errorf("series %+v", s)
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
			if s.Votes < 1 || s.Rounds < 1 || s.RaftFormula != 4 {
				t.Errorf("raft: want at least one vote and one round, got %+v", s)
			}
		case SchemeViews:
			// The new certificate must be seen in packets: this checks
			// the packet decoder against real memberlist traffic.
			if s.RuntimeCalls < 1 || s.CertPackets < 1 || s.CertMsgs < s.CertPackets {
				t.Errorf("views: want runtime calls and certificate packets, got %+v", s)
			}
		}
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
	rep := &Report{Machine: ThisMachine(), Command: "test",
		Failover: &FailoverResult{Profile: "local", Raft: DefaultRaftTiming(), Series: []FailoverSeries{
			{Scheme: SchemeMembers, N: 3, Trials: 1, All: Quantiles{N: 1, P50: 900, P99: 1000}},
			{Scheme: SchemeMembers, N: 10, Trials: 1, All: Quantiles{N: 1, P50: 1000, P99: 1200}},
			{Scheme: SchemeRaft, N: 3, Trials: 1, All: Quantiles{N: 1, P50: 800, P99: 1100}},
			{Scheme: SchemeRaft, N: 10, Trials: 1, All: Quantiles{N: 1, P50: 700, P99: 900}},
		}},
	}
	rep.Machine.Finish()
	f1 := filepath.Join(dir, "f.json")
	if err := rep.WriteJSON(f1); err != nil {
		t.Fatal(err)
	}
	d := &Report{Dissemination: &DisseminationResult{Series: []DisseminationSeries{
		{N: 10, Certs: 1, To99: Quantiles{N: 1, P50: 60}, To100: Quantiles{N: 1, P50: 70, P99: 90}, GossipIntervalMs: 50, ClosedFormRounds: 2.4, ModelRounds99: 1.7, ModelRounds100: 1.7},
		{N: 50, Certs: 1, To99: Quantiles{N: 1, P50: 110}, To100: Quantiles{N: 1, P50: 140, P99: 200}, GossipIntervalMs: 50, ClosedFormRounds: 4.1, ModelRounds99: 2.9, ModelRounds100: 3.2},
	}}}
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
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: not an SVG (%v)", f, err)
		}
	}
	if _, err := Plot(&Report{}, dir, "svg"); err == nil {
		t.Error("plotting an empty report should fail")
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
