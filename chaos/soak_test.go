package chaos

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	flagSoak      = flag.Duration("soak.duration", 0, "run TestSoak for this long (e.g. 10m); 0 skips it")
	flagSoakEvery = flag.Duration("soak.interval", 5*time.Second, "how often TestSoak samples RSS, goroutines and open file descriptors")
	flagSoakChurn = flag.Duration("soak.churn", 30*time.Second, "how often TestSoak kills and restarts one in-process node (light load); 0 never")
)

// A series is one quantity sampled over the soak.
type series struct {
	name  string
	unit  string
	slack float64 // absolute allowance on top of the 10%
	vals  []float64
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// flat reports whether the last quarter's median is within 10% plus slack
// of the second quarter's (the first quarter is warm-up), and the two
// medians.
func (s *series) flat() (ok bool, q2, q4 float64) {
	n := len(s.vals)
	q2 = median(s.vals[n/4 : n/2])
	q4 = median(s.vals[3*n/4:])
	return q4 <= q2*1.10+s.slack, q2, q4
}

// procStats reads a process's resident set size (bytes), OS threads and
// open file descriptors from /proc. pid "self" is this process.
func procStats(pid string) (rss, threads, fds float64, err error) {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseFloat(fields[1], 64)
			rss = kb * 1024
		case "Threads:":
			threads, _ = strconv.ParseFloat(fields[1], 64)
		}
	}
	ents, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
	if err != nil {
		return 0, 0, 0, err
	}
	return rss, threads, float64(len(ents)), nil
}

// TestSoak runs an idle-to-lightly-loaded cluster for -soak.duration: a
// runtime process, 3 node processes and 7 nodes in this process on the
// signed-views scheme (each node submits a view every 250 ms, so the
// runtime serves about 40 runs a second), killing and restarting one
// in-process node every -soak.churn. It samples this process's RSS,
// goroutines and open file descriptors, and the runtime's and node
// processes' RSS and file descriptors, and asserts that they stay flat:
// the last quarter's median within 10% (plus a small allowance) of the
// second quarter's. Finally it stops the in-process nodes and asserts that
// this process's descriptors and goroutines return to what they were
// before the nodes started.
func TestSoak(t *testing.T) {
	if *flagSoak <= 0 {
		t.Skip("soak test: run with -soak.duration 10m")
	}
	dir, err := os.MkdirTemp("", "vouch-soak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || *flagKeep {
			t.Logf("logs and samples are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	const n, procs = 10, 3
	h := newHarness(t, dir, "views", n, procs, 1)
	defer h.stopAll()

	// The node processes first: the baseline for leaks is this process
	// with the runtime and them running (each child costs a descriptor for
	// its output file, a pidfd and a goroutine waiting for it).
	for _, m := range h.members {
		if m.real {
			if err := h.start(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	httpc.CloseIdleConnections()
	_, _, fds0, err := procStats("self")
	if err != nil {
		t.Fatal(err)
	}
	g0 := runtime.NumGoroutine()
	for _, m := range h.members {
		if err := h.start(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.converge(30*time.Second, time.Second); err != nil {
		t.Fatalf("no agreement at start: %v", err)
	}
	var inproc, real []*member
	for _, m := range h.members {
		if m.real {
			real = append(real, m)
		} else {
			inproc = append(inproc, m)
		}
	}

	self := []*series{
		{name: "test process RSS", unit: "MiB", slack: 8},
		{name: "test process goroutines", slack: 20},
		{name: "test process open fds", slack: 4},
		{name: "runtime RSS", unit: "MiB", slack: 8},
		{name: "runtime open fds", slack: 4},
		{name: "node processes RSS (sum)", unit: "MiB", slack: 8},
		{name: "node processes open fds (sum)", slack: 4},
		{name: "node processes threads (sum)", slack: 4},
	}
	csv, err := os.Create(filepath.Join(dir, "soak.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer csv.Close()
	fmt.Fprintln(csv, "seconds,self_rss_mib,self_goroutines,self_fds,runtime_rss_mib,runtime_fds,nodes_rss_mib,nodes_fds,nodes_threads")

	start := time.Now()
	sample := time.NewTicker(*flagSoakEvery)
	defer sample.Stop()
	var churn <-chan time.Time
	if *flagSoakChurn > 0 {
		ct := time.NewTicker(*flagSoakChurn)
		defer ct.Stop()
		churn = ct.C
	}
	restarts, next := 0, 0
	var failures []string
	for time.Since(start) < *flagSoak {
		select {
		case <-churn:
			m := inproc[next%len(inproc)]
			next++
			h.kill(m)
			// Let the others see it die before it comes back.
			poll(h.ctx, 10*time.Second, func() error {
				for _, o := range inproc {
					if o.up && slices.Contains(o.node.Status().View, m.name) {
						return fmt.Errorf("%s still sees %s", o.name, m.name)
					}
				}
				return nil
			})
			if err := h.start(m); err != nil {
				failures = append(failures, err.Error())
			}
			restarts++
		case <-sample.C:
			rss, _, fds, err := procStats("self")
			if err != nil {
				t.Fatal(err)
			}
			rtRSS, _, rtFDs, err := procStats(strconv.Itoa(h.rt.cmd.Process.Pid))
			if err != nil {
				failures = append(failures, "runtime: "+err.Error())
				continue
			}
			var nRSS, nFDs, nThreads float64
			for _, m := range real {
				r, th, f, err := procStats(strconv.Itoa(m.proc.cmd.Process.Pid))
				if err != nil {
					failures = append(failures, m.name+": "+err.Error())
					continue
				}
				nRSS, nFDs, nThreads = nRSS+r, nFDs+f, nThreads+th
			}
			row := []float64{rss / (1 << 20), float64(runtime.NumGoroutine()), fds, rtRSS / (1 << 20), rtFDs, nRSS / (1 << 20), nFDs, nThreads}
			for i, v := range row {
				self[i].vals = append(self[i].vals, v)
			}
			fmt.Fprintf(csv, "%.0f", time.Since(start).Seconds())
			for _, v := range row {
				fmt.Fprintf(csv, ",%.1f", v)
			}
			fmt.Fprintln(csv)
		}
	}
	if err := h.agreed(); err != nil {
		// One more chance: a churned node may be rejoining.
		if _, err := h.converge(15*time.Second, time.Second); err != nil {
			failures = append(failures, "no agreement at the end: "+err.Error())
		}
	}
	for _, d := range h.unexpectedDeaths() {
		failures = append(failures, "unexpected death: "+d)
	}

	// Leaks: stop the in-process nodes; this process's descriptors and
	// goroutines must come back to where they were before they started.
	for _, m := range inproc {
		h.kill(m)
	}
	var fds1 float64
	var g1 int
	err = poll(h.ctx, 20*time.Second, func() error {
		httpc.CloseIdleConnections()
		_, _, fds1, _ = procStats("self")
		g1 = runtime.NumGoroutine()
		if fds1 > fds0+2 || g1 > g0+5 {
			return fmt.Errorf("%.0f fds (%.0f before the nodes started), %d goroutines (%d before)", fds1, fds0, g1, g0)
		}
		return nil
	})
	if err != nil {
		failures = append(failures, "leak after stopping the in-process nodes: "+err.Error())
	}
	rep, err := CheckFiles(h.eventFiles(), h.trust())
	if err != nil {
		t.Fatal(err)
	}
	failures = append(failures, rep.Violations...)

	var b strings.Builder
	fmt.Fprintf(&b, "soak: %v, %d samples every %v, %d in-process restarts, %d elections, violations=%d\n",
		time.Since(start).Round(time.Second), len(self[0].vals), *flagSoakEvery, restarts, rep.Elections, len(rep.Violations))
	fmt.Fprintf(&b, "  %-32s %10s %10s %10s %10s  %s\n", "series", "Q2 median", "Q4 median", "min", "max", "flat")
	for _, s := range self {
		if len(s.vals) < 8 {
			failures = append(failures, fmt.Sprintf("%s: only %d samples", s.name, len(s.vals)))
			continue
		}
		ok, q2, q4 := s.flat()
		verdict := "yes"
		if !ok {
			verdict = fmt.Sprintf("NO (over %.1f)", q2*1.10+s.slack)
			failures = append(failures, fmt.Sprintf("%s is not flat: second quarter median %.1f, last quarter %.1f %s", s.name, q2, q4, s.unit))
		}
		fmt.Fprintf(&b, "  %-32s %10.1f %10.1f %10.1f %10.1f  %s %s\n", s.name, q2, q4, slices.Min(s.vals), slices.Max(s.vals), verdict, s.unit)
	}
	fmt.Fprintf(&b, "  after stopping the in-process nodes: %.0f fds (%.0f before they started), %d goroutines (%d before)\n", fds1, fds0, g1, g0)
	fmt.Print(b.String())
	t.Log(b.String())
	for _, f := range failures {
		t.Error(f)
	}
}
