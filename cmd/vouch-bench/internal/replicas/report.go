package replicas

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vouch-dev/vouch/cmd/vouch-bench/internal/scale"
)

// Median is the median of xs (the mean of the middle two for an even
// count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Ratio is a/b rounded to 3 decimals; 0 when b is not positive.
func Ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

// WriteFailoverTable prints one line per cluster size.
func WriteFailoverTable(w io.Writer, r *FailoverReport) error {
	fmt.Fprintf(w, "replica failover: SIGKILL of the raft leader of %d replica processes; raft timing %s\n", r.Replicas, r.RaftTimeout)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\ttrials\traft leader p50\tp99\tleader renewed p50\tp99\tevery node p50\tp99\tlapses\tterm changes\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%d\t%d\t%.0f ms\t%.0f ms\t%s ms\t%s ms\t%s ms\t%s ms\t%d\t%d\t\n", x.Nodes, x.Trials, x.Raft.P50, x.Raft.P99,
			x.Lead.P50, x.Lead.P99, x.All.P50, x.All.P99, x.Lapses, x.TermChanges)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Results) > 0 {
		fmt.Fprintf(w, "p99 is nearest rank: %s\n", scale.P99Label(r.Results[0].Trials))
	}
	fmt.Fprintf(w, "load average before %s, after %s; %d CPUs (%s)\n", r.Machine.LoadBefore, r.Machine.LoadAfter, r.Machine.CPUs, r.Machine.CPUModel)
	return nil
}

// WriteCostTable prints one line per configuration.
func WriteCostTable(w io.Writer, r *CostReport) error {
	fmt.Fprintf(w, "cost of replication: medians of %d interleaved rounds; raft timing %s\n", r.Rounds, r.RaftTimeout)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "configuration\tstateless runs/s (c=%d)\tratio\tp50 µs\tsubmissions/s (%d members)\tratio\tfailed\traft elections\t\n", r.Concurrency, r.Members)
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f×\t%.0f\t%.0f\t%.2f×\t%d\t%d\t\n", x.Config, x.StatelessMedian, x.StatelessRatio, x.StatelessP50Micros, x.StatefulMedian, x.StatefulRatio, x.StatefulErrors, x.RaftTermChanges)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.FirstError != "" {
			fmt.Fprintf(w, "%s: first failed submission: %s\n", x.Config, x.FirstError)
		}
		if len(x.Refusals) > 0 {
			codes := slices.Sorted(maps.Keys(x.Refusals))
			parts := make([]string, len(codes))
			for i, c := range codes {
				parts[i] = fmt.Sprintf("%s %d", c, x.Refusals[c])
			}
			fmt.Fprintf(w, "%s: refusals (lease refusals are answers): %s\n", x.Config, strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(w, "load average before %s, after %s; %d CPUs (%s)\n", r.Machine.LoadBefore, r.Machine.LoadAfter, r.Machine.CPUs, r.Machine.CPUModel)
	return nil
}
