package chaos

import (
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestSoakSlope: a steady leak small enough to pass the quartile check
// is caught by the slope check; noise and a flat series are not.
func TestSoakSlope(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(perMin, noise float64) *series {
		s := &series{slack: 8, slopeBound: 0.5}
		for i := range 120 { // 10 minutes, every 5 s
			m := float64(i) * 5 / 60
			s.add(m, 23+perMin*m+noise*(rng.Float64()*2-1))
		}
		return s
	}
	leak := mk(1, 1) // 1 MiB/min on a 23 MiB process: +10 MiB in 10 min
	if ok, _, _ := leak.flat(); !ok {
		t.Fatal("the quartile check alone should let this leak pass (that is why the slope check exists)")
	}
	if grows, judged, slope, se := leak.growing(); !grows || !judged || math.Abs(slope-1) > 0.2 {
		t.Fatalf("a 1 MiB/min leak: growing=%v, slope %.2f ± %.2f", grows, slope, se)
	}
	for _, s := range []*series{mk(0, 2), mk(0, 0), mk(-1, 1)} {
		if grows, judged, slope, se := s.growing(); grows || !judged {
			t.Fatalf("no leak, but growing=%v (judged %v): slope %.2f ± %.2f", grows, judged, slope, se)
		}
	}
	// OS threads step up and never down: a high-water mark, left to the
	// quartile rule.
	threads := &series{slack: 4}
	for i := range 120 {
		v := 24.0
		if i > 90 {
			v = 26
		}
		threads.add(float64(i)*5/60, v)
	}
	if grows, judged, _, _ := threads.growing(); grows || judged {
		t.Fatalf("a thread high-water mark judged by slope: growing=%v judged=%v", grows, judged)
	}
	if ok, _, _ := threads.flat(); !ok {
		t.Fatal("a step of 2 threads is within the quartile rule's allowance")
	}
	// A 40 s soak's second half is warm-up as much as anything: its
	// slope is reported, not judged.
	short := &series{slopeBound: 0.5}
	for i := range 20 {
		short.add(float64(i)*2/60, 23+float64(i))
	}
	if grows, judged, slope, _ := short.growing(); grows || judged || slope < 20 {
		t.Fatalf("a 40 s soak: growing=%v judged=%v slope %.2f", grows, judged, slope)
	}
}

// TestGoroutinesOf reads go_goroutines from real Prometheus pages: one
// with the Go collector, one without.
func TestGoroutinesOf(t *testing.T) {
	with := prometheus.NewRegistry()
	with.MustRegister(collectors.NewGoCollector())
	srv := httptest.NewServer(promhttp.HandlerFor(with, promhttp.HandlerOpts{}))
	defer srv.Close()
	if g, ok := goroutinesOf(srv.URL); !ok || g < 1 {
		t.Fatalf("with a Go collector: %v, %v", g, ok)
	}
	without := prometheus.NewRegistry()
	without.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	srv2 := httptest.NewServer(promhttp.HandlerFor(without, promhttp.HandlerOpts{}))
	defer srv2.Close()
	if _, ok := goroutinesOf(srv2.URL); ok {
		t.Fatal("a page without go_goroutines gave a count")
	}
	if _, ok := goroutinesOf("http://127.0.0.1:1/metrics"); ok {
		t.Fatal("an unreachable page gave a count")
	}
}
