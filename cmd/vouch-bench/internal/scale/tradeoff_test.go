package scale

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMain lets this test binary serve as a raft child (StartRaftProcs
// starts os.Executable()).
func TestMain(m *testing.M) {
	if IsRaftChild() {
		RaftChildMain()
	}
	os.Exit(m.Run())
}

func TestSilenceMapping(t *testing.T) {
	for _, c := range []struct {
		s                  time.Duration
		ping, probe, ptime time.Duration
	}{
		{250 * time.Millisecond, 50 * time.Millisecond, 0, 0},
		{500 * time.Millisecond, 100 * time.Millisecond, 0, 0},
		{time.Second, 200 * time.Millisecond, 400 * time.Millisecond, 200 * time.Millisecond},
	} {
		s := Silence(c.s)
		v := s.VouchTuning()
		if v.LeaderTimeout != c.s || v.LeaderPingInterval != c.ping || v.ProbeInterval != c.probe || v.ProbeTimeout != c.ptime {
			t.Errorf("%s: vouch %+v", s, v)
		}
		r := s.RaftTiming()
		// A raft follower waits at most 2×HeartbeatTimeout: the same
		// maximum silence.
		if 2*r.HeartbeatTimeout != c.s || r.ElectionTimeout != r.HeartbeatTimeout || r.LeaderLeaseTimeout != c.s/4 || !r.PreVote {
			t.Errorf("%s: raft %+v", s, r)
		}
		if f := (&FailoverResult{Tuning: v, Raft: r}); silenceOf(f, SchemeMembers) != ms64(c.s) || silenceOf(f, SchemeRaft) != ms64(c.s) {
			t.Errorf("%s: silenceOf does not invert the mapping", s)
		}
	}
}

func TestIncidents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c := incidents{quiet: time.Second}
	abc := func(l string) []string { return []string{l, l, l} }
	// Not agreed yet: no baseline, nothing counted.
	c.observe(at(0), []string{"a", "", "a"}, 0)
	c.observe(at(10), abc("a"), 5) // baseline: leader a, 5 marks
	c.observe(at(20), abc("a"), 5)
	// Disagreement alone (a raft follower in a pre-vote) is no event.
	c.observe(at(30), []string{"a", "", "a"}, 5)
	if c.count != 0 {
		t.Fatalf("count %d before any event", c.count)
	}
	// An alarm (marks up) opens an incident; a leader change and more
	// alarms less than a second after the last event are the same one.
	c.observe(at(100), abc("a"), 6)
	c.observe(at(200), []string{"b", "a", "a"}, 8)
	c.observe(at(300), abc("b"), 8)
	c.observe(at(1200), abc("b"), 9)
	if c.count != 1 || c.changes != 1 || c.leader != "b" {
		t.Fatalf("count %d changes %d leader %q, want 1, 1, b", c.count, c.changes, c.leader)
	}
	// Calm samples are no events, whatever their number.
	for ms := 1300; ms < 5000; ms += 100 {
		c.observe(at(ms), abc("b"), 9)
	}
	// A lone alarm a second or more after the last event is another
	// incident, without a leader change.
	c.observe(at(5000), abc("b"), 10)
	if c.count != 2 || c.changes != 1 || len(c.at) != 2 || !c.at[1].Equal(at(5000)) {
		t.Fatalf("count %d changes %d at %v", c.count, c.changes, c.at)
	}
	// Events each under a second apart chain into one incident.
	for ms := 5500; ms <= 8000; ms += 500 {
		c.observe(at(ms), abc("b"), 10+uint64(ms))
	}
	if c.count != 2 {
		t.Fatalf("count %d, want 2: a chain of events under a second apart is one incident", c.count)
	}
	// A leader change alone is an event; marks going down (a restarted
	// count) are not.
	c.observe(at(10000), abc("c"), 1)
	if c.count != 3 || c.changes != 2 {
		t.Fatalf("count %d changes %d, want 3, 2", c.count, c.changes)
	}
}

func TestPerHour(t *testing.T) {
	if got := PerHour(3, 10*time.Minute); got != 18 {
		t.Errorf("3 in 10 min = %v per hour, want 18", got)
	}
	if got := PerHour(0, 10*time.Minute); got != 0 {
		t.Errorf("0 in 10 min = %v", got)
	}
	if got := PerHour(1, 0); got != 0 {
		t.Errorf("no duration: %v", got)
	}
}

// tradeoffFixture is a trade-off result: vouch without false failovers at
// any setting, raft with some at the two shorter silences.
func tradeoffFixture() *TradeoffResult {
	r := &TradeoffResult{AtRest: &AtRestResult{}}
	p50 := map[string]map[time.Duration]float64{
		SchemeMembers: {250 * time.Millisecond: 300, 500 * time.Millisecond: 500, time.Second: 1000},
		SchemeRaft:    {250 * time.Millisecond: 250, 500 * time.Millisecond: 450, time.Second: 900},
	}
	perHour := map[string]map[time.Duration]int{
		SchemeMembers: {250 * time.Millisecond: 0, 500 * time.Millisecond: 0, time.Second: 0},
		SchemeRaft:    {250 * time.Millisecond: 30, 500 * time.Millisecond: 2, time.Second: 0},
	}
	for _, d := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		s := Silence(d)
		f := &FailoverResult{Tuning: s.VouchTuning(), Raft: s.RaftTiming()}
		for _, scheme := range []string{SchemeMembers, SchemeRaft} {
			f.Series = append(f.Series, FailoverSeries{Scheme: scheme, N: 5, Trials: 20, All: Quantiles{N: 20, P50: p50[scheme][d], P99: 2 * p50[scheme][d]}})
			r.AtRest.Series = append(r.AtRest.Series, AtRestSeries{Scheme: scheme, SilenceMs: ms64(d), N: 5, FalseFailovers: perHour[scheme][d], DurationS: 3600, PerHour: float64(perHour[scheme][d]),
				LeaderChanges: perHour[scheme][d] / 2})
		}
		r.Failover = append(r.Failover, f)
	}
	return r
}

func TestAtEqualRate(t *testing.T) {
	r := tradeoffFixture()
	pts := r.Points(5, 5)
	if len(pts) != 6 {
		t.Fatalf("%d points, want 6", len(pts))
	}
	e, ok := AtEqualRate(pts)
	if !ok {
		t.Fatal("no comparison")
	}
	// Both reach 0 per hour: vouch at 250 ms (300 ms), raft only at 1 s
	// (900 ms).
	if e.PerHour != 0 || e.Vouch.SilenceMs != 250 || e.Raft.SilenceMs != 1000 || e.P50Ratio != round3(300.0/900) {
		t.Errorf("%+v", e)
	}
	// Where raft's lowest rate is 2 per hour, each system's fastest
	// setting at no more than that.
	e, _ = AtEqualRate(pts[:4]) // the 250 and 500 ms settings
	if e.PerHour != 2 || e.Vouch.SilenceMs != 250 || e.Raft.SilenceMs != 500 {
		t.Errorf("%+v", e)
	}
	// By leader changes alone raft reaches 1 per hour at 500 ms.
	if e, _ := AtEqualChanges(pts[:4]); e.PerHour != 1 || e.Raft.SilenceMs != 500 || e.Vouch.SilenceMs != 250 {
		t.Errorf("by leader changes: %+v", e)
	}
	if _, ok := AtEqualRate(pts[:1]); ok {
		t.Error("a comparison with one system only")
	}
	if got := r.restSizeFor(100); got != 5 {
		t.Errorf("rest size for 100: %d, want 5", got)
	}
}

func TestTradeoffReportAndPlot(t *testing.T) {
	dir := t.TempDir()
	r := tradeoffFixture()
	rest := NewReport("rest")
	rest.Tradeoff = &TradeoffResult{AtRest: r.AtRest}
	fail := NewReport("failover")
	fail.Tradeoff = &TradeoffResult{Failover: r.Failover}
	f1, f2 := filepath.Join(dir, "rest.json"), filepath.Join(dir, "fail.json")
	if err := rest.WriteJSON(f1); err != nil {
		t.Fatal(err)
	}
	if err := fail.WriteJSON(f2); err != nil {
		t.Fatal(err)
	}
	merged, err := ReadReports(f1, f2)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Tradeoff == nil || merged.Tradeoff.AtRest == nil || len(merged.Tradeoff.Failover) != 3 {
		t.Fatalf("merged %+v", merged.Tradeoff)
	}
	files, err := Plot(merged, dir, "svg")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Base(files[0]) != "tradeoff_n5.svg" {
		t.Fatalf("wrote %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !bytes.Contains(b, []byte("hashicorp/raft")) || !bytes.Contains(b, []byte("leader changes only")) {
		t.Error("the plot lacks its legend or axis")
	}
	var buf bytes.Buffer
	if err := r.AtRest.WriteTable(&buf); err != nil || !bytes.Contains(buf.Bytes(), []byte("per hour")) {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
}

// TestRaftProcs: raft servers in two child processes elect a leader, and
// elect another when it is killed.
func TestRaftProcs(t *testing.T) {
	c, err := StartRaftProcs(3, 2, Silence(500*time.Millisecond).RaftTiming())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxFor(t, time.Minute)
	leader, err := waitRaftStable(ctx, c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	li := c.Index(leader)
	if li < 0 || len(c.procs) != 2 {
		t.Fatalf("leader %q, %d processes", leader, len(c.procs))
	}
	c.Kill(li)
	var surv []int
	for _, i := range c.Alive() {
		if i != li {
			surv = append(surv, i)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l, ok := c.Agreement(surv, leader); ok {
			if l == leader {
				t.Fatalf("the killed server %q still leads", l)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader within 30 s: %s", c.describe(surv))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAtRestTiny runs both systems idle for a moment, without a hog.
func TestAtRestTiny(t *testing.T) {
	r, err := AtRest(ctxFor(t, 2*time.Minute), AtRestOptions{Silences: []Silence{Silence(500 * time.Millisecond)}, Sizes: []int{3}, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 2 || r.Series[0].Scheme != SchemeMembers || r.Series[1].Scheme != SchemeRaft {
		t.Fatalf("series %+v", r.Series)
	}
	for _, s := range r.Series {
		if s.Error != "" || s.DurationS < 2 || s.N != 3 || s.SilenceMs != 500 {
			t.Errorf("series %+v", s)
		}
	}
}
