package scale

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// Report is the JSON a scale benchmark writes: the machine, the command
// line, and the sections it ran.
type Report struct {
	Machine        Machine              `json:"machine"`
	Command        string               `json:"command"`
	Failover       *FailoverResult      `json:"failover,omitempty"`
	Dissemination  *DisseminationResult `json:"dissemination,omitempty"`
	Rest           []*RestResult        `json:"rest,omitempty"`
	Messages       *MessagesResult      `json:"messages,omitempty"`
	FalsePositives *FalsePositiveResult `json:"false_positives,omitempty"`
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReports reads and merges reports: later files fill the sections
// earlier ones lack.
func ReadReports(paths ...string) (*Report, error) {
	out := &Report{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if out.Command == "" {
			out.Machine, out.Command = r.Machine, r.Command
		}
		// Series of the same section from several files are merged (say,
		// small sizes from one run and large ones from another); a size
		// already present is kept from the earlier file.
		switch {
		case out.Failover == nil:
			out.Failover = r.Failover
		case r.Failover != nil:
			for _, s := range r.Failover.Series {
				if out.Failover.Find(s.Scheme, s.N) == nil {
					out.Failover.Series = append(out.Failover.Series, s)
				}
			}
			for _, x := range r.Failover.Ratios {
				dup := false
				for _, y := range out.Failover.Ratios {
					dup = dup || (x.N == y.N && x.Scheme == y.Scheme)
				}
				if !dup {
					out.Failover.Ratios = append(out.Failover.Ratios, x)
				}
			}
		}
		switch {
		case out.Dissemination == nil:
			out.Dissemination = r.Dissemination
		case r.Dissemination != nil:
			for _, s := range r.Dissemination.Series {
				dup := false
				for _, t := range out.Dissemination.Series {
					dup = dup || (t.N == s.N && t.Error == "")
				}
				if !dup {
					out.Dissemination.Series = append(out.Dissemination.Series, s)
				}
			}
		}
		out.Rest = append(out.Rest, r.Rest...)
		if out.Messages == nil {
			out.Messages = r.Messages
		}
		if out.FalsePositives == nil {
			out.FalsePositives = r.FalsePositives
		}
	}
	return out, nil
}

// WriteMachine prints the machine line.
func (m Machine) Write(w io.Writer) {
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s %s; load average %s before", m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.LoadBefore)
	if m.LoadAfter != "" {
		fmt.Fprintf(w, ", %s after; %.0f s", m.LoadAfter, m.Seconds)
	}
	fmt.Fprintln(w)
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// WriteTable prints the failover results.
func (r *FailoverResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "failover: kill the leader, time until every survivor holds a certificate for one new leader (profile %s; raft heartbeat %s, election %s, lease %s, commit %s, pre-vote %v)\n",
		r.Profile, r.Raft.HeartbeatTimeout, r.Raft.ElectionTimeout, r.Raft.LeaderLeaseTimeout, r.Raft.CommitTimeout, r.Raft.PreVote)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tok/trials\tp50 ms\tp90 ms\tp99 ms\tmax ms\tfirst p50 ms\tacting p50 ms\tfalse pos\t")
	for _, s := range r.Series {
		acting := "-"
		if s.Acting != nil {
			acting = fmt.Sprintf("%.0f", s.Acting.P50)
		}
		if s.All.N == 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t-\t-\t-\t-\t-\t-\t%d\t\n", s.Scheme, s.N, s.All.N, s.Trials, s.FalsePositives)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%d\t\n", s.Scheme, s.N, s.All.N, s.Trials, s.All.P50, s.All.P90, s.All.P99, s.All.Max, s.First.P50, acting, s.FalsePositives)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nvouch / raft (ratio of medians, ratio of p99s; below 1: vouch faster)")
		tw = table(w)
		fmt.Fprintln(tw, "N\tscheme\tp50 ratio\tp99 ratio\t")
		for _, x := range r.Ratios {
			fmt.Fprintf(tw, "%d\t%s\t%.2f\t%.2f\t\n", x.N, x.Scheme, x.P50, x.P99)
		}
		return tw.Flush()
	}
	return nil
}

// WriteTable prints the dissemination results.
func (r *DisseminationResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "dissemination: the leader obtains a fresh certificate every %s; time until 99%% and 100%% of the nodes accepted it, next to the gossip model\n", r.Refresh)
	tw := table(w)
	fmt.Fprintln(tw, "N\tcerts\t99% p50 ms\t99% p99 ms\t100% p50 ms\t100% p99 ms\tincomplete\tfanout\tlimit\tclosed form rounds (ms)\tmodel 99% rounds (ms)\tmodel 100% rounds (ms)\tmeasured 100% p50 rounds\t")
	for _, s := range r.Series {
		g := s.GossipIntervalMs
		rounds := "-"
		if g > 0 && s.To100.N > 0 {
			rounds = fmt.Sprintf("%.1f", s.To100.P50/g)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%.1f (%.0f)\t%.1f (%.0f)\t%.1f (%.0f)\t%s\t\n", s.N, s.Certs, s.To99.P50, s.To99.P99, s.To100.P50, s.To100.P99, s.Incomplete,
			s.Fanout, s.TransmitLimit, s.ClosedFormRounds, s.ClosedFormRounds*g, s.ModelRounds99, s.ModelRounds99*g, s.ModelRounds100, s.ModelRounds100*g, rounds)
	}
	return tw.Flush()
}

// WriteTable prints the cost at rest.
func (r *RestResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "cost at rest (profile %s): per node, averaged over the window\n", r.Profile)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tpackets/s\tbytes/s\tTCP streams/s\tTCP bytes/s\truntime calls/s (all)\tCPU ms/s\tCPU cores (all)\tRSS MiB/node\tRSS added MiB/node\theap MiB/node\tgoroutines/node\tstart s\tfalse pos idle\tfalse pos forming\t")
	for _, s := range r.Series {
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\tFAILED: %s\n", s.Scheme, s.N, s.Error) // last cell: no column
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.2f\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%d\t%d\t\n", s.Scheme, s.N, s.PacketsPerS, s.BytesPerS, s.StreamsPerS, s.StreamBytesPerS, s.RuntimeCallsPerS,
			s.CPUMsPerSPerNode, s.CPUCoresTotal, s.RSSPerNodeMiB, s.RSSAddedPerNodeMiB, s.HeapPerNodeMiB, s.GoroutinesPerNode, s.StartS, s.FalsePositives, s.StartFalsePositives)
	}
	return tw.Flush()
}

// WriteTable prints the messages per election.
func (r *MessagesResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "messages per election (medians over trials; window = kill to every survivor holding the new certificate + %s)\n", r.Tail)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tok/trials\twindow ms\truntime calls\tidle calls/s\texcess calls\tcert packets\tcert copies\tpre-votes\tvotes\trounds\t2(N-1)/round\ttotal\tMinBFT n(n-1)\tPBFT 2n(n-1)\t")
	for _, s := range r.Series {
		if s.Scheme == SchemeRaft {
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%.0f\t-\t-\t-\t-\t-\t%.0f\t%.0f\t%.0f\t%d\t%.0f\t%d\t%d\t\n", s.Scheme, s.N, s.Trials-s.Failed, s.Trials, s.WindowMs, s.PreVotes, s.Votes, s.Rounds, s.RaftFormula, s.Total, s.MinBFT, s.PBFT)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%.0f\t%.0f\t%.1f\t%.1f\t%.0f\t%.0f\t-\t-\t-\t-\t%.0f\t%d\t%d\t\n", s.Scheme, s.N, s.Trials-s.Failed, s.Trials, s.WindowMs, s.RuntimeCalls, s.IdleCallsPerS, s.ExcessRuntimeCalls, s.CertPackets, s.CertMsgs, s.Total, s.MinBFT, s.PBFT)
		}
	}
	return tw.Flush()
}

// WriteTable prints the false-positive count.
func (r *FalsePositiveResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "false positives: %d idle nodes (%s, profile %s) for %.0f s, %d CPU-burning goroutines alongside\n", r.N, r.Scheme, r.Profile, r.DurationS, r.Burn)
	tw := table(w)
	fmt.Fprintln(tw, "healthy nodes declared departed\tsuspicions\tdeclared failed\tleader changes\truntime calls\tCPU cores\tload at end\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t\n", r.Departures, r.Suspicions, r.Failures, r.LeaderChanges, r.RuntimeCalls, r.CPUCores, r.LoadAvg)
	return tw.Flush()
}

// CommandLine quotes args as a shell would need them.
func CommandLine(args []string) string {
	var q []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$&|;<>*?()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}
