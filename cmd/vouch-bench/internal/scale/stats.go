package scale

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// Quantiles summarises a sample of durations in milliseconds.
//
// The estimator is nearest rank: the q-quantile of n sorted samples is the
// ⌈q·n⌉-th. So with fewer than 100 samples p99 is the maximum (with 20
// trials, p95 is the second largest and p90 the third largest), and the
// tables say so (P99Label).
type Quantiles struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summarize computes quantiles (nearest rank) of ds.
func Summarize(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	sort.Float64s(ms)
	return Quantiles{N: len(ms), Min: ms[0], P50: rank(ms, 0.50), P90: rank(ms, 0.90), P95: rank(ms, 0.95), P99: rank(ms, 0.99), Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
}

// rankIndex is the index of the nearest-rank q-quantile among n sorted
// samples.
func rankIndex(n int, q float64) int {
	return max(0, min(int(math.Ceil(q*float64(n)))-1, n-1))
}

// rank returns the nearest-rank q-quantile of sorted xs: with fewer than
// 100 samples p99 is the maximum.
func rank(xs []float64, q float64) float64 { return xs[rankIndex(len(xs), q)] }

// P99Label names the p99 of n samples honestly: "p99" from 100 samples
// on, "p99 (= max of n)" below that, where nearest rank makes it the
// maximum.
func P99Label(n int) string {
	if n > 0 && n < 100 {
		return fmt.Sprintf("p99 (= max of %d)", n)
	}
	return "p99"
}

// Bounded is one quantile of a censored sample: Ms, or, when Above is
// set, more than Ms (the quantile fell on a sample that was cut off, such
// as a trial that timed out at its bound).
type Bounded struct {
	Ms    float64 `json:"ms"`
	Above bool    `json:"above,omitempty"`
}

// String is "1234" or "> 20000".
func (b Bounded) String() string {
	if b.Above {
		return fmt.Sprintf("> %.0f", b.Ms)
	}
	return fmt.Sprintf("%.0f", b.Ms)
}

// CensoredQuantiles summarise a sample in which some values are known
// only to exceed a bound (failovers that timed out, certificates that
// never reached every node). Censored values rank above every observed
// one, which is exact when each bound exceeds every observed value (a
// failover timeout: every success took less than the bound) and errs
// towards slower otherwise; a quantile that falls on one is reported as
// "> bound" (for the k-th censored value in rank order, the k-th smallest
// bound, which it is known to exceed). Without censored values they equal Quantiles.
type CensoredQuantiles struct {
	// N counts every sample, Censored those cut off.
	N        int     `json:"n"`
	Censored int     `json:"censored"`
	P50      Bounded `json:"p50"`
	P90      Bounded `json:"p90"`
	P95      Bounded `json:"p95"`
	P99      Bounded `json:"p99"`
}

// SummarizeCensored computes nearest-rank quantiles of the observed
// values ok together with censored values, each known only to exceed its
// bound.
func SummarizeCensored(ok []time.Duration, censored []time.Duration) CensoredQuantiles {
	n := len(ok) + len(censored)
	q := CensoredQuantiles{N: n, Censored: len(censored)}
	if n == 0 {
		return q
	}
	obs := make([]float64, len(ok))
	for i, d := range ok {
		obs[i] = ms(d)
	}
	sort.Float64s(obs)
	cut := make([]float64, len(censored))
	for i, d := range censored {
		cut[i] = ms(d)
	}
	sort.Float64s(cut)
	at := func(p float64) Bounded {
		i := rankIndex(n, p)
		if i < len(obs) {
			return Bounded{Ms: obs[i]}
		}
		// The k-th smallest censored value exceeds the k-th smallest
		// bound (each value exceeds its own).
		return Bounded{Ms: cut[i-len(obs)], Above: true}
	}
	q.P50, q.P90, q.P95, q.P99 = at(0.50), at(0.90), at(0.95), at(0.99)
	return q
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs       int       `json:"nproc"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	CPUModel   string    `json:"cpu_model"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	LoadBefore string    `json:"load_before"`
	LoadAfter  string    `json:"load_after,omitempty"`
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds,omitempty"`
}

// ThisMachine describes this machine now.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: LoadAvg(), Started: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Finish records the load and the duration at the end of a run.
func (m *Machine) Finish() {
	m.LoadAfter = LoadAvg()
	m.Seconds = math.Round(time.Since(m.Started).Seconds()*10) / 10
}

// LoadAvg returns the 1, 5 and 15 minute load averages.
func LoadAvg() string { return bench.LoadAvg() }

// killSet records which members of a cluster were killed; Cluster and
// RaftCluster share it.
type killSet struct {
	mu     sync.Mutex
	killed []bool
}

func newKillSet(n int) killSet { return killSet{killed: make([]bool, n)} }

// markKilled marks member i killed and reports whether it was alive.
func (k *killSet) markKilled(i int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed[i] {
		return false
	}
	k.killed[i] = true
	return true
}

// Alive returns the indexes of the members not killed.
func (k *killSet) Alive() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []int
	for i, dead := range k.killed {
		if !dead {
			out = append(out, i)
		}
	}
	return out
}
