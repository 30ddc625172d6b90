package replicas

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its input: %v", tc.in)
			}
		}
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(900, 1000); got != 0.9 {
		t.Errorf("Ratio(900, 1000) = %v", got)
	}
	if got := Ratio(2, 3); got != 0.667 {
		t.Errorf("Ratio(2, 3) = %v, want 0.667", got)
	}
	if got := Ratio(5, 0); got != 0 {
		t.Errorf("Ratio(5, 0) = %v, want 0", got)
	}
}

func TestRaftTimingNote(t *testing.T) {
	if got := RaftTimingNote(0); !strings.Contains(got, "heartbeat 300ms, election 300ms, leader lease 150ms") {
		t.Errorf("RaftTimingNote(0) = %q", got)
	}
	if got := RaftTimingNote(time.Second); !strings.Contains(got, "heartbeat 1s, election 1s, leader lease 500ms") {
		t.Errorf("RaftTimingNote(1s) = %q", got)
	}
}

// fakeRuntime answers Submit with err after a delay.
type fakeRuntime struct {
	err   error
	delay time.Duration
}

func (f fakeRuntime) Elect(context.Context, string, []string) (*election.Certificate, error) {
	return nil, errors.New("unused")
}
func (f fakeRuntime) Key(context.Context) (ed25519.PublicKey, error) { return nil, nil }
func (f fakeRuntime) Submit(context.Context, []byte) (*election.Certificate, error) {
	time.Sleep(f.delay)
	return &election.Certificate{}, f.err
}
func (f fakeRuntime) Describe() node.RuntimeInfo { return node.RuntimeInfo{} }

// The recorder keeps the first success that began at or after the time it
// was armed: not a failure, not a call begun before, not a later success.
func TestRecorder(t *testing.T) {
	ctx := context.Background()
	r := &recorder{Runtime: fakeRuntime{}}
	r.Submit(ctx, nil)
	if _, ok := r.done(); ok {
		t.Fatal("a success before arming counts")
	}
	r.arm(time.Now().Add(time.Hour))
	r.Submit(ctx, nil)
	if _, ok := r.done(); ok {
		t.Fatal("a success begun before the armed time counts")
	}
	r.arm(time.Now())
	r.Runtime = fakeRuntime{err: errors.New("down")}
	r.Submit(ctx, nil)
	if _, ok := r.done(); ok {
		t.Fatal("a failure counts")
	}
	r.Runtime = fakeRuntime{delay: time.Millisecond}
	r.Submit(ctx, nil)
	first, ok := r.done()
	if !ok {
		t.Fatal("a success after arming does not count")
	}
	r.Submit(ctx, nil)
	if again, _ := r.done(); !again.Equal(first) {
		t.Fatal("a later success replaced the first")
	}
}

func TestTables(t *testing.T) {
	var b bytes.Buffer
	fr := &FailoverReport{Replicas: 3, RaftTimeout: RaftTimingNote(0), Results: []FailoverResult{{Nodes: 5, Trials: 20,
		Raft: scale.Summarize([]time.Duration{time.Second}), Lead: scale.SummarizeCensored([]time.Duration{time.Second}, nil),
		All: scale.SummarizeCensored(nil, []time.Duration{30 * time.Second})}}}
	if err := WriteFailoverTable(&b, fr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"every node p50", "> 30000 ms", "p99 (= max of 20)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("failover table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	cr := &CostReport{Rounds: 3, Concurrency: 8, Members: 5, Results: []CostResult{{Config: "3 replicas", StatelessMedian: 900, StatelessRatio: 0.9, StatefulErrors: 2,
		Refusals: map[string]int{"view_refused": 2, "lease_not_renewed": 1}}}}
	if err := WriteCostTable(&b, cr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 replicas", "900", "0.90×", "lease_not_renewed 1, view_refused 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("cost table lacks %q:\n%s", want, b.String())
		}
	}
}
