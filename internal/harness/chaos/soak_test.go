package chaos

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
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
	// slopeBound is the steepest growth allowed over the second half of
	// the soak, in units per minute; 0 leaves the series to the quartile
	// rule alone.
	slopeBound float64
	vals       []float64
	mins       []float64 // when each value was sampled, minutes into the soak
}

func (s *series) add(min, v float64) {
	s.vals = append(s.vals, v)
	s.mins = append(s.mins, min)
}

// slope fits a least-squares line to the second half of the samples and
// returns its slope (units per minute) and the slope's standard error.
func (s *series) slope() (slope, se float64) {
	xs, ys := s.mins[len(s.mins)/2:], s.vals[len(s.vals)/2:]
	n := float64(len(xs))
	if n < 3 {
		return 0, 0
	}
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, 0
	}
	slope = sxy / sxx
	var rss float64
	for i := range xs {
		r := ys[i] - my - slope*(xs[i]-mx)
		rss += r * r
	}
	return slope, math.Sqrt(rss / (n - 2) / sxx)
}

// minSlopeSpan is the shortest second half whose slope is judged: over
// less, a process's warm-up (heaps and caches still filling) is a slope
// too, so shorter soaks report it without failing on it.
const minSlopeSpan = 2.0 // minutes

// growing reports whether the second half grows faster than slopeBound,
// beyond noise: the slope minus two standard errors (a one-sided 97.5%
// bound) is above it. A steady leak has small residuals, so a small
// standard error, and is caught; sampling noise is not taken for one.
// judged is false when the second half spans less than minSlopeSpan.
func (s *series) growing() (grows, judged bool, slope, se float64) {
	slope, se = s.slope()
	half := s.mins[len(s.mins)/2:]
	if s.slopeBound <= 0 || len(half) < 3 || half[len(half)-1]-half[0] < minSlopeSpan {
		return false, false, slope, se
	}
	return slope-2*se > s.slopeBound, true, slope, se
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

// goroutinesOf reads go_goroutines from a Prometheus text page; ok is
// false when the page cannot be read or has no such metric (its registry
// has no Go collector).
func goroutinesOf(url string) (float64, bool) {
	resp, err := httpc.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
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
// goroutines and open file descriptors; the runtime's and node
// processes' RSS, file descriptors and OS threads (/proc); and their
// goroutines if their /metrics pages export go_goroutines. Every series
// must stay flat, two ways: the last quarter's median within 10% (plus a
// small allowance) of the second quarter's, and the least-squares slope
// of the second half no steeper than a bound per process and minute
// (0.5 MiB, 2 goroutines, 0.5 descriptors) beyond two standard errors
// (judged when the second half spans at least 2 minutes: a soak of 4
// minutes or more; not for OS threads, a high-water mark in Go).
// Finally it stops the in-process nodes and asserts that this process's
// descriptors and goroutines return to what they were before the nodes
// started.
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
	seed := drawSeed()
	t.Logf("soak: seed %d (ports, and which nodes are processes)", seed)
	h := newHarness(t, dir, "views", n, procs, seed)
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
	if _, err := h.converge(time.Now(), 30*time.Second, time.Second); err != nil {
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

	// Goroutines of the runtime and node processes, from their /metrics
	// pages if those export go_goroutines (a Go collector registered);
	// else only their OS threads, from /proc.
	metricsURLs := map[string]string{"runtime": h.rtURL() + "/metrics"}
	for _, m := range real {
		metricsURLs[m.name] = fmt.Sprintf("http://127.0.0.1:%d/metrics", m.httpPort)
	}
	_, rtGo := goroutinesOf(metricsURLs["runtime"])
	nodesGo := true
	for _, m := range real {
		_, ok := goroutinesOf(metricsURLs[m.name])
		nodesGo = nodesGo && ok
	}
	var noGo []string
	if !rtGo {
		noGo = append(noGo, "the runtime")
	}
	if !nodesGo {
		noGo = append(noGo, "the node processes")
	}
	if len(noGo) > 0 {
		t.Logf("no goroutine count for %s: /metrics has no go_goroutines (their private Prometheus registries have no Go collector); their OS threads from /proc are sampled instead", strings.Join(noGo, " and "))
	}

	// Slope bounds per process and minute. OS threads get none: Go never
	// ends a thread it started, so their count is a high-water mark that
	// steps up when the machine is busy (a step is a steep slope with a
	// small error); the quartile rule bounds them.
	const (
		rssSlope = 0.5 // MiB per minute
		gSlope   = 2   // goroutines per minute
		fdSlope  = 0.5 // descriptors per minute
	)
	np := float64(len(real))
	selfRSS := &series{name: "test process RSS", unit: "MiB", slack: 8, slopeBound: rssSlope}
	selfG := &series{name: "test process goroutines", slack: 20, slopeBound: gSlope}
	selfFD := &series{name: "test process open fds", slack: 4, slopeBound: fdSlope}
	rtRSSs := &series{name: "runtime RSS", unit: "MiB", slack: 8, slopeBound: rssSlope}
	rtFDs := &series{name: "runtime open fds", slack: 4, slopeBound: fdSlope}
	rtThreads := &series{name: "runtime threads", slack: 4}
	nRSSs := &series{name: "node processes RSS (sum)", unit: "MiB", slack: 8, slopeBound: rssSlope * np}
	nFDs := &series{name: "node processes open fds (sum)", slack: 4, slopeBound: fdSlope * np}
	nThreads := &series{name: "node processes threads (sum)", slack: 4}
	self := []*series{selfRSS, selfG, selfFD, rtRSSs, rtFDs, rtThreads}
	var rtG, nG *series
	if rtGo {
		rtG = &series{name: "runtime goroutines", slack: 20, slopeBound: gSlope}
		self = append(self, rtG)
	}
	self = append(self, nRSSs, nFDs, nThreads)
	if nodesGo {
		nG = &series{name: "node processes goroutines (sum)", slack: 20, slopeBound: gSlope * np}
		self = append(self, nG)
	}
	csv, err := os.Create(filepath.Join(dir, "soak.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer csv.Close()
	var header []string
	for _, s := range self {
		header = append(header, strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(s.name))
	}
	fmt.Fprintln(csv, "seconds,"+strings.Join(header, ","))

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
			at := time.Since(start).Minutes()
			rss, _, fds, err := procStats("self")
			if err != nil {
				t.Fatal(err)
			}
			rtRSS, rtTh, rtFD, err := procStats(strconv.Itoa(h.rt.cmd.Process.Pid))
			if err != nil {
				failures = append(failures, "runtime: "+err.Error())
				continue
			}
			var nRSS, nFD, nTh, nGo float64
			for _, m := range real {
				r, th, f, err := procStats(strconv.Itoa(m.proc.cmd.Process.Pid))
				if err != nil {
					failures = append(failures, m.name+": "+err.Error())
					continue
				}
				nRSS, nFD, nTh = nRSS+r, nFD+f, nTh+th
				if nG != nil {
					g, ok := goroutinesOf(metricsURLs[m.name])
					if !ok {
						failures = append(failures, m.name+": /metrics did not answer go_goroutines")
					}
					nGo += g
				}
			}
			selfRSS.add(at, rss/(1<<20))
			selfG.add(at, float64(runtime.NumGoroutine()))
			selfFD.add(at, fds)
			rtRSSs.add(at, rtRSS/(1<<20))
			rtFDs.add(at, rtFD)
			rtThreads.add(at, rtTh)
			if rtG != nil {
				g, ok := goroutinesOf(metricsURLs["runtime"])
				if !ok {
					failures = append(failures, "runtime: /metrics did not answer go_goroutines")
				}
				rtG.add(at, g)
			}
			nRSSs.add(at, nRSS/(1<<20))
			nFDs.add(at, nFD)
			nThreads.add(at, nTh)
			if nG != nil {
				nG.add(at, nGo)
			}
			fmt.Fprintf(csv, "%.0f", time.Since(start).Seconds())
			for _, s := range self {
				fmt.Fprintf(csv, ",%.1f", s.vals[len(s.vals)-1])
			}
			fmt.Fprintln(csv)
		}
	}
	if err := h.agreed(); err != nil {
		// One more chance: a churned node may be rejoining.
		if _, err := h.converge(time.Now(), 15*time.Second, time.Second); err != nil {
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
	fmt.Fprintf(&b, "  %-32s %10s %10s %10s %10s %22s  %s\n", "series", "Q2 median", "Q4 median", "min", "max", "slope/min (bound)", "flat")
	for _, s := range self {
		if len(s.vals) < 8 {
			failures = append(failures, fmt.Sprintf("%s: only %d samples", s.name, len(s.vals)))
			continue
		}
		ok, q2, q4 := s.flat()
		grows, judged, slope, se := s.growing()
		verdict := "yes"
		switch {
		case !ok:
			verdict = fmt.Sprintf("NO (Q4 over %.1f)", q2*1.10+s.slack)
			failures = append(failures, fmt.Sprintf("%s is not flat: second quarter median %.1f, last quarter %.1f %s", s.name, q2, q4, s.unit))
		case grows:
			verdict = "NO (growing)"
		case s.slopeBound <= 0:
			verdict = "yes (quartiles only: a high-water mark)"
		case !judged:
			verdict = fmt.Sprintf("yes (quartiles only: slope not judged under %.0f min of second half)", minSlopeSpan)
		}
		if grows {
			failures = append(failures, fmt.Sprintf("%s grows: %.2f ± %.2f %s per minute over the second half, above the bound of %.2f", s.name, slope, se, s.unit, s.slopeBound))
		}
		fmt.Fprintf(&b, "  %-32s %10.1f %10.1f %10.1f %10.1f %9.2f±%.2f (%5.2f)  %s %s\n", s.name, q2, q4, slices.Min(s.vals), slices.Max(s.vals), slope, se, s.slopeBound, verdict, s.unit)
	}
	fmt.Fprintf(&b, "  after stopping the in-process nodes: %.0f fds (%.0f before they started), %d goroutines (%d before)\n", fds1, fds0, g1, g0)
	fmt.Print(b.String())
	t.Log(b.String())
	for _, f := range failures {
		t.Error(f)
	}
}
