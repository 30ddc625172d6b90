package chaos

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("chaos.duration", defaultDuration, "how long faults are injected")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the fault schedule; 0 draws one (printed, to replay a run)")
	flagMode     = flag.String("chaos.mode", defaultMode, "election scheme: views (signed views, terms), seq (member list, receipt seq) or both")
	flagNodes    = flag.Int("chaos.nodes", 10, "cluster size")
	flagProcs    = flag.Int("chaos.procs", 4, "how many of the nodes run as `vouch node` processes (SIGKILLed); the others run in the test process on lossy transports")
	flagConverge = flag.Duration("chaos.converge", defaultConverge, "bound on convergence after the faults stop")
	flagOverlap  = flag.Duration("chaos.overlap", 200*time.Millisecond, "with signed views, how long two nodes may both act as leader before it counts as a violation (log timestamps of separate processes); 0 counts every overlap")
	flagKeep     = flag.Bool("chaos.keep", false, "keep the run's directory (logs, event logs, schedule) even when it passes")
)

// TestChaos runs a runtime and ten nodes under a seeded fault schedule:
// SIGKILL and restart of node processes, abrupt kills of in-process nodes,
// SIGKILL and restart of the runtime (same data, same port), packet loss,
// duplication and delay with storms, dropped TCP streams, and partitions
// into two halves. Afterwards the cluster must converge within
// -chaos.converge, no process may have died on its own, and the checker
// must find no violation in the nodes' event logs. It prints one summary
// line per scheme, starting with "chaos: ".
func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = drawSeed()
	}
	modes := []string{*flagMode}
	if *flagMode == "both" {
		modes = []string{"views", "seq"}
	}
	for _, mode := range modes {
		if mode != "views" && mode != "seq" {
			t.Fatalf("-chaos.mode %q: want views, seq or both", mode)
		}
		t.Run(mode, func(t *testing.T) { runChaos(t, mode, seed) })
	}
}

// drawSeed draws a seed below 10⁹ (short enough to type in a replay).
func drawSeed() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])%(1_000_000_000-1) + 1
}

func runChaos(t *testing.T, mode string, seed uint64) {
	n, procs := *flagNodes, *flagProcs
	if n < 4 || procs < 1 || procs > n/2 {
		t.Fatalf("need at least 4 nodes and 1 to n/2 processes, got %d and %d", n, procs)
	}
	fmt.Printf("chaos: seed=%d mode=%s duration=%s nodes=%d (%d processes) — replay with -chaos.seed %d -chaos.mode %s -chaos.duration %s\n",
		seed, mode, *flagDuration, n, procs, seed, mode, *flagDuration)
	dir, err := os.MkdirTemp("", "vouch-chaos-"+mode+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || *flagKeep {
			t.Logf("logs, event logs and the schedule are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	h := newHarness(t, dir, mode, n, procs, seed)
	defer h.stopAll()
	real := make([]bool, n)
	for i, m := range h.members {
		real[i] = m.real
	}
	for _, m := range h.members {
		if err := h.start(m); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := h.converge(time.Now(), 30*time.Second, time.Second); err != nil {
		t.Fatalf("the cluster did not agree before any fault: %v", err)
	} else {
		t.Logf("%s: %d nodes agreed in %v before any fault", mode, n, d.Round(time.Millisecond))
	}

	sched := makeSchedule(seed, scheduleConfig{duration: *flagDuration, nodes: n, real: real, maxDown: 3})
	var desc strings.Builder
	for i, m := range h.members {
		kind := "in process"
		if m.real {
			kind = "process"
		}
		fmt.Fprintf(&desc, "node #%d = %s (%s)\n", i, m.name, kind)
	}
	desc.WriteString(sched.String())
	os.WriteFile(filepath.Join(dir, "schedule.txt"), []byte(desc.String()), 0o600)
	t.Logf("schedule (seed %d):\n%s", seed, desc.String())

	var violations []string
	r := &runner{h: h, killed: map[int]int{}}
	start := time.Now()
	// The background loss is a fault too: it ends with the window, even
	// if an event is still being carried out then (say, a runtime restart
	// waiting for the runtime to answer).
	windowEnd := start.Add(*flagDuration)
	bgOff := time.AfterFunc(*flagDuration, func() { h.net.SetFaults(Faults{}) })
	defer bgOff.Stop()
	for _, e := range sched.events {
		if d := time.Until(start.Add(e.at)); d > 0 {
			time.Sleep(d) // the schedule's clock, not a wait for a condition
		}
		if err := r.apply(e); err != nil {
			violations = append(violations, fmt.Sprintf("%s: %v", e, err))
		}
	}
	if d := time.Until(windowEnd); d > 0 {
		time.Sleep(d) // the window's end, on the schedule's clock
	}
	// The window is over: lift every fault that is still on (normally
	// none: every scheduled fault ends within the window).
	if !h.net.Faults().Zero() { // an event ran late and raised them again
		r.lifted("end the packet faults (an event ran past the window)")
		h.net.SetFaults(Faults{})
	}
	if h.net.Partitioned() {
		r.lifted("heal the partition (still on after the window)")
		h.net.Heal()
	}
	if !h.rtUp {
		r.lifted("restart the runtime (still down after the window)")
		if err := h.startRuntime(); err != nil {
			violations = append(violations, err.Error())
		}
	}
	for _, m := range h.members {
		if !m.up {
			r.lifted("restart " + m.name + " (still down after the window)")
		}
		if err := h.start(m); err != nil {
			violations = append(violations, err.Error())
		}
	}
	// The convergence clock starts when the last fault was lifted: the
	// window's end (when the background loss ends) or, if later, the
	// moment the last heal or restart was begun (a restart's own time
	// until the process answers counts as convergence).
	from, fromWhat := windowEnd, "the end of the fault window"
	if r.lastLift.After(from) {
		from, fromWhat = r.lastLift, r.lastLiftWhat
	}
	conv, convErr := h.converge(from, *flagConverge, time.Second)
	fromS := fmt.Sprintf("%.1fs", from.Sub(start).Seconds())
	if convErr != nil {
		violations = append(violations, fmt.Sprintf("after the last fault was lifted (%s into the run: %s): %v", fromS, fromWhat, convErr))
	} else {
		t.Logf("converged %v after the last fault was lifted (%s into the run: %s)", conv.Round(time.Millisecond), fromS, fromWhat)
	}
	for _, d := range h.unexpectedDeaths() {
		violations = append(violations, "unexpected death: "+d)
	}
	h.stopAll()
	stopped := time.Now()

	rep, err := CheckFiles(h.eventFiles(), h.trust())
	if err != nil {
		t.Fatal(err)
	}
	violations = append(violations, rep.Violations...)
	// With signed views a leader acts only under a lease that ends before
	// anyone else may start: no two nodes may act at once. The member-list
	// scheme has no leases (two sides of a partition each elect one), so
	// there overlaps are only reported.
	iv, err := h.leaderships(stopped)
	if err != nil {
		t.Fatal(err)
	}
	overlaps := Overlaps(iv)
	maxOverlap := time.Duration(0)
	if len(overlaps) > 0 {
		maxOverlap = overlaps[0].For
	}
	for i, o := range overlaps {
		if mode == "views" && (o.For > *flagOverlap || *flagOverlap == 0) {
			violations = append(violations, "two leaders at once: "+o.String())
		} else if i < 10 && mode == "views" {
			t.Logf("leaders overlapped (within -chaos.overlap %v, the tolerance for log and kill timestamps): %s", *flagOverlap, o)
		} else if i < 10 {
			t.Logf("leaders overlapped (the member-list scheme has no leases): %s", o)
		}
	}
	st := h.net.Stats()
	convS := fmt.Sprintf("%.1fs", conv.Seconds())
	if convErr != nil {
		convS = fmt.Sprintf("none(>%s)", *flagConverge)
	}
	summary := fmt.Sprintf("chaos: seed=%d faults=%d (kills=%d [%d SIGKILL, %d in-process, %d aimed at the leader, %d retargeted, %d skipped], runtime restarts=%d, partitions=%d, loss storms=%d, drops=%d, dups=%d, delays=%d, stream drops=%d, partitioned=%d of %d packets) elections=%d leaderships=%d overlaps=%d (max %v) convergence=%s (from %s) violations=%d mode=%s duration=%s",
		seed, r.faults(), r.kills, r.sigkills, r.kills-r.sigkills, r.leaderKills, r.retargeted, r.skipped, r.rtRestarts, r.parts, r.storms,
		st.Dropped, st.Duplicated, st.Delayed, st.StreamsDropped, st.Partitioned, st.Packets,
		rep.Elections, len(iv), len(overlaps), maxOverlap.Round(time.Millisecond), convS, fromS, len(violations), mode, *flagDuration)
	fmt.Println(summary)
	t.Log(summary)
	t.Logf("checker: %d events, %d certificates accepted, %d leader actions, %d re-accepted after a restart", rep.Events, rep.Accepted, rep.Acted, rep.Reaccepted)
	if rep.Accepted == 0 || rep.Elections == 0 {
		violations = append(violations, "the event logs hold no accepted certificate")
	}
	if len(violations) > 0 {
		for i, v := range violations {
			if i == 30 {
				t.Errorf("... and %d more", len(violations)-30)
				break
			}
			t.Errorf("violation: %s", v)
		}
		t.Errorf("replay: go test ./internal/harness/chaos -run 'TestChaos/%s' -chaos.seed %d -chaos.mode %s -chaos.duration %s", mode, seed, mode, *flagDuration)
	}
}

// runner carries out a schedule and counts what it did.
type runner struct {
	h      *harness
	killed map[int]int // kill id -> member index, or -1 when skipped

	kills, sigkills, leaderKills, retargeted, skipped, rtRestarts, parts, storms int

	// lastLift is when the last fault was lifted (a heal or a restart
	// begun), and what it was.
	lastLift     time.Time
	lastLiftWhat string
}

// lifted records that a fault is being lifted now.
func (r *runner) lifted(what string) { r.lastLift, r.lastLiftWhat = time.Now(), what }

// retarget picks the node a kill hits when its target is already down:
// the first node up after it in index order (wrapping around), so that a
// replay, given the same nodes up, makes the same choice; -1 if every
// node is down. Targets go down when a kill aimed at the leader hit
// another node than the one the schedule drew, so the schedule's
// bookkeeping of who is down drifts from the run's.
func (r *runner) retarget(i int) int {
	n := len(r.h.members)
	for k := 1; k < n; k++ {
		if j := (i + k) % n; r.h.members[j].up {
			return j
		}
	}
	return -1
}

func (r *runner) faults() int { return r.kills + r.rtRestarts + r.parts + r.storms }

// apply carries out one scheduled event.
func (r *runner) apply(e event) error {
	h := r.h
	switch e.act {
	case actKill:
		i, aimed := e.node, false
		if e.leader {
			if lm := h.currentLeader(); lm != nil {
				i, aimed = slices.Index(h.members, lm), true
			}
		}
		m := h.members[i]
		if !m.up {
			j := r.retarget(i)
			if j < 0 {
				h.t.Logf("%s: skipped, node %s is already down and so is every other", e, m.name)
				r.killed[e.id] = -1
				r.skipped++
				return nil
			}
			h.t.Logf("%s: node %s is already down; killing the next node up, %s, instead", e, m.name, h.members[j].name)
			i, m = j, h.members[j]
			r.retargeted++
		}
		h.t.Logf("%s: %s (%s)", e, m.name, map[bool]string{true: "SIGKILL", false: "in process"}[m.real])
		r.killed[e.id] = i
		h.kill(m)
		r.kills++
		if m.real {
			r.sigkills++
		}
		if aimed {
			r.leaderKills++
		}
		return nil
	case actStart:
		i, ok := r.killed[e.id]
		if !ok || i < 0 {
			return nil
		}
		h.t.Logf("%s: %s", e, h.members[i].name)
		r.lifted("restart " + h.members[i].name)
		return h.start(h.members[i])
	}
	h.t.Logf("%s", e)
	switch e.act {
	case actRuntimeKill:
		h.killRuntime()
		r.rtRestarts++
	case actRuntimeStart:
		r.lifted("restart the runtime")
		return h.startRuntime()
	case actPartition:
		var a, b []string
		in := map[int]bool{}
		for _, i := range e.sideA {
			in[i] = true
		}
		for i, m := range h.members {
			addr := "127.0.0.1:" + m.name
			if in[i] {
				a = append(a, addr)
			} else {
				b = append(b, addr)
			}
		}
		r.parts++
		return h.net.Partition(a, b)
	case actHeal:
		r.lifted("heal the partition")
		h.net.Heal()
	case actStorm:
		r.storms++
		h.net.SetFaults(*e.faults)
	case actCalm:
		if e.at > 0 {
			r.lifted("end the loss storm")
		}
		h.net.SetFaults(*e.faults)
	}
	return nil
}
