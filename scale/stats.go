package scale

import (
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Quantiles summarises a sample of durations in milliseconds.
type Quantiles struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
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
	return Quantiles{N: len(ms), Min: ms[0], P50: rank(ms, 0.50), P90: rank(ms, 0.90), P99: rank(ms, 0.99), Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
}

// rank returns the nearest-rank q-quantile of sorted xs: with fewer than
// 100 samples p99 is the maximum.
func rank(xs []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
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
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

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
