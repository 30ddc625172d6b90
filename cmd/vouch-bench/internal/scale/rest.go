package scale

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/node"
)

// RestOptions configure Rest.
type RestOptions struct {
	// Sizes are the cluster sizes, each measured on a fresh cluster.
	Sizes []int
	// Warmup runs after the cluster agrees and before the window, so
	// that the joins' broadcasts drain; Window is the measured window.
	Warmup, Window time.Duration
	// Schemes to measure, SchemeMembers and/or SchemeViews (signed views:
	// every node submits its view every ViewInterval), each size in each;
	// empty means SchemeMembers, or SchemeViews with Views.
	Schemes []string
	Views   bool
	Profile string
	Tuning  MemberlistTuning
	// JoinSeeds is ClusterOptions.JoinSeeds.
	JoinSeeds int
	Progress  io.Writer
	// Checkpoint, if set, receives the results so far after every
	// cluster (a copy).
	Checkpoint func(*RestResult)
}

// RestSeries is one idle cluster.
type RestSeries struct {
	N       int     `json:"n"`
	Scheme  string  `json:"scheme"`
	WindowS float64 `json:"window_s"`
	// StartS is how long the cluster took to agree after the first node
	// started.
	StartS float64 `json:"start_s"`
	// UDP packets and bytes sent per node per second (on loopback each
	// is received once, so received averages the same), and TCP streams
	// opened and bytes written per node per second.
	PacketsPerS     float64 `json:"packets_per_s_per_node"`
	BytesPerS       float64 `json:"bytes_per_s_per_node"`
	StreamsPerS     float64 `json:"streams_per_s_per_node"`
	StreamBytesPerS float64 `json:"stream_bytes_per_s_per_node"`
	// RuntimeCallsPerS counts the whole cluster's calls to the runtime.
	RuntimeCallsPerS float64 `json:"runtime_calls_per_s"`
	// CPU: process CPU time (user+sys, getrusage) over the window,
	// divided by N: milliseconds of CPU per second per node. It includes
	// the in-process runtime serving those calls.
	CPUMsPerSPerNode float64 `json:"cpu_ms_per_s_per_node"`
	CPUCoresTotal    float64 `json:"cpu_cores_total"`
	// Memory: RSS of the whole process (VmRSS) at the end of the window
	// over N, the RSS added by the cluster over N (RSS minus the RSS
	// before it started), the Go heap in use after a GC over N, and
	// goroutines per node. PeakRSSMiB is the highest VmRSS sampled every
	// 50 ms from the cluster's start (formation included) to the end of
	// the window: what "do N nodes fit" needs.
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	PeakRSSPerNodeMiB  float64 `json:"peak_rss_per_node_mib"`
	RSSMiB             float64 `json:"rss_mib"`
	RSSPerNodeMiB      float64 `json:"rss_per_node_mib"`
	RSSAddedPerNodeMiB float64 `json:"rss_added_per_node_mib"`
	HeapPerNodeMiB     float64 `json:"heap_per_node_mib"`
	GoroutinesPerNode  float64 `json:"goroutines_per_node"`
	// FalsePositives: departures of healthy members recorded by live
	// nodes while idle (from agreement to the end of the window), and
	// StartFalsePositives those recorded while the cluster formed.
	FalsePositives      int    `json:"false_positives"`
	StartFalsePositives int    `json:"start_false_positives"`
	Error               string `json:"error,omitempty"`
}

// RestResult is what Rest measured.
type RestResult struct {
	Profile   string       `json:"profile"`
	JoinSeeds int          `json:"join_seeds,omitempty"`
	Series    []RestSeries `json:"series"`
}

// Rest measures idle clusters: traffic, CPU and memory per node. If ctx
// ends first, it returns the clusters measured until then with ctx's
// error.
func Rest(ctx context.Context, o RestOptions) (*RestResult, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{10, 50, 100, 200}
	}
	if o.Warmup <= 0 {
		o.Warmup = 10 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 10 * time.Second
	}
	if o.Profile == "" {
		o.Profile = "local"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if len(o.Schemes) == 0 {
		o.Schemes = []string{SchemeMembers}
		if o.Views {
			o.Schemes = []string{SchemeViews}
		}
	}
	for _, sc := range o.Schemes {
		if sc != SchemeMembers && sc != SchemeViews {
			return nil, fmt.Errorf("scale: cost at rest: unknown scheme %q (want %s or %s)", sc, SchemeMembers, SchemeViews)
		}
	}
	rt, err := StartRuntime(ctx)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	res := &RestResult{Profile: o.Profile, JoinSeeds: o.JoinSeeds}
	for _, n := range o.Sizes {
		for _, sc := range o.Schemes {
			s, err := rest(ctx, rt, n, sc == SchemeViews, &o)
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				s.Error = err.Error()
				fmt.Fprintf(o.Progress, "  %s N=%-3d FAILED: %v\n", sc, n, err)
			}
			res.Series = append(res.Series, s)
			if o.Checkpoint != nil {
				cp := *res
				cp.Series = slices.Clone(res.Series)
				o.Checkpoint(&cp)
			}
		}
	}
	return res, nil
}

// peakRSS samples the process's RSS every 50 ms until stop is called, and
// returns the highest sample.
func peakRSS() (stop func() int64) {
	var peak atomic.Int64
	peak.Store(RSS())
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r := RSS(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		if r := RSS(); r > peak.Load() {
			peak.Store(r)
		}
		return peak.Load()
	}
}

func rest(ctx context.Context, rt *Runtime, n int, views bool, o *RestOptions) (RestSeries, error) {
	s := RestSeries{N: n, Scheme: SchemeMembers, WindowS: o.Window.Seconds()}
	if views {
		s.Scheme = SchemeViews
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := RSS()
	start := time.Now()
	stopPeak := peakRSS()
	peakDone := false
	defer func() {
		if !peakDone {
			stopPeak()
		}
	}()
	c, err := StartCluster(ctx, rt, ClusterOptions{N: n, Views: views, Name: fmt.Sprintf("r%d-%d", n, time.Now().UnixNano()%1e6), Profile: o.Profile, Count: true, JoinSeeds: o.JoinSeeds,
		Tune: func(i int, cfg *node.Config) { o.Tuning.apply(cfg) }})
	if err != nil {
		return s, err
	}
	defer c.Close()
	if _, _, err := c.WaitStable(ctx, 30*time.Second+time.Duration(n)*300*time.Millisecond); err != nil {
		return s, err
	}
	s.StartS = round3(time.Since(start).Seconds())
	s.StartFalsePositives = c.Departures()
	if err := sleep(ctx, o.Warmup); err != nil {
		return s, err
	}
	var before Snapshot
	for _, ctr := range c.Counters {
		before = before.Add(ctr.Snap())
	}
	calls0 := c.Elects.Load() + c.Submits.Load()
	cpu0 := CPUTime()
	t0 := time.Now()
	if err := sleep(ctx, o.Window); err != nil {
		return s, err
	}
	cpu1 := CPUTime()
	window := time.Since(t0).Seconds()
	var after Snapshot
	for _, ctr := range c.Counters {
		after = after.Add(ctr.Snap())
	}
	d := after.Sub(before)
	per := float64(n) * window
	s.WindowS = round3(window)
	s.PacketsPerS = round3(float64(d.Packets) / per)
	s.BytesPerS = round3(float64(d.Bytes) / per)
	s.StreamsPerS = round3(float64(d.Streams) / per)
	s.StreamBytesPerS = round3(float64(d.StreamBytes) / per)
	s.RuntimeCallsPerS = round3(float64(c.Elects.Load()+c.Submits.Load()-calls0) / window)
	s.CPUCoresTotal = round3((cpu1 - cpu0).Seconds() / window)
	s.CPUMsPerSPerNode = round3(float64((cpu1 - cpu0).Milliseconds()) / per)
	rss := RSS()
	peak := stopPeak()
	peakDone = true
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	const mib = 1 << 20
	s.PeakRSSMiB = round3(float64(peak) / mib)
	s.PeakRSSPerNodeMiB = round3(float64(peak) / mib / float64(n))
	s.RSSMiB = round3(float64(rss) / mib)
	s.RSSPerNodeMiB = round3(float64(rss) / mib / float64(n))
	s.RSSAddedPerNodeMiB = round3(float64(rss-rss0) / mib / float64(n))
	s.HeapPerNodeMiB = round3(float64(ms.HeapInuse) / mib / float64(n))
	s.GoroutinesPerNode = round3(float64(runtime.NumGoroutine()) / float64(n))
	s.FalsePositives = c.Departures() - s.StartFalsePositives
	fmt.Fprintf(o.Progress, "  %s N=%-3d %.1f packets/s/node, %.0f B/s/node, CPU %.2f ms/s/node, RSS %.2f MiB/node (added %.2f, peak %.2f), heap %.2f MiB/node, false positives %d idle, %d while forming (start %.1f s; load %s)\n",
		s.Scheme, n, s.PacketsPerS, s.BytesPerS, s.CPUMsPerSPerNode, s.RSSPerNodeMiB, s.RSSAddedPerNodeMiB, s.PeakRSSPerNodeMiB, s.HeapPerNodeMiB, s.FalsePositives, s.StartFalsePositives, s.StartS, LoadAvg())
	return s, nil
}

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RSS is the process's resident set size in bytes (VmRSS in
// /proc/self/status), or 0 where that is not available.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
