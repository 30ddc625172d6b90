package scale

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/vouch-dev/vouch/internal/harness/bench"
)

// Report is the JSON a scale benchmark writes: the machine, the code and
// the command line, and the sections it ran.
type Report struct {
	Machine Machine      `json:"machine"`
	Source  bench.Source `json:"source"`
	Command string       `json:"command"`
	// Partial is set while a run is under way (the file is rewritten
	// after every trial) and when it ended early: it says why, and the
	// sections hold what was measured until then.
	Partial        string               `json:"partial,omitempty"`
	Failover       *FailoverResult      `json:"failover,omitempty"`
	Dissemination  *DisseminationResult `json:"dissemination,omitempty"`
	Rest           []*RestResult        `json:"rest,omitempty"`
	Messages       *MessagesResult      `json:"messages,omitempty"`
	FalsePositives *FalsePositiveResult `json:"false_positives,omitempty"`
	Tradeoff       *TradeoffResult      `json:"tradeoff,omitempty"`
	// Formation is `vouch-bench formation`: one series per size and
	// scheme.
	Formation []FormationSeries `json:"formation,omitempty"`

	// The machines of the files ReadReports took the failover and
	// dissemination sections from.
	failoverMachine, disseminationMachine, tradeoffMachine, formationMachine *Machine
}

// NewReport starts a report of a run of command: this machine now, and
// the code that runs.
func NewReport(command string) *Report {
	return &Report{Machine: ThisMachine(), Source: bench.ThisSource(), Command: command}
}

// WriteJSON writes the report to path, through a temporary file renamed
// into place, so that a reader (or a run killed while writing) never sees
// half a file.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
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
			out.Machine, out.Source, out.Command = r.Machine, r.Source, r.Command
		}
		// Each plot names the machine of the file its section came from.
		if r.Failover != nil && out.failoverMachine == nil {
			m := r.Machine
			out.failoverMachine = &m
		}
		if r.Dissemination != nil && out.disseminationMachine == nil {
			m := r.Machine
			out.disseminationMachine = &m
		}
		if len(r.Formation) > 0 && out.formationMachine == nil {
			m := r.Machine
			out.formationMachine = &m
		}
		for _, s := range r.Formation {
			dup := false
			for _, x := range out.Formation {
				dup = dup || (x.N == s.N && x.Scheme == s.Scheme)
			}
			if !dup {
				out.Formation = append(out.Formation, s)
			}
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
		// Trade-off sections merge: the at-rest half from the first file
		// that has one, the failover settings from every file.
		switch {
		case out.Tradeoff == nil:
			out.Tradeoff = r.Tradeoff
		case r.Tradeoff != nil:
			if out.Tradeoff.AtRest == nil {
				out.Tradeoff.AtRest = r.Tradeoff.AtRest
			}
			out.Tradeoff.Failover = append(out.Tradeoff.Failover, r.Tradeoff.Failover...)
		}
		if r.Tradeoff != nil && out.tradeoffMachine == nil {
			m := r.Machine
			out.tradeoffMachine = &m
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
	fmt.Fprintf(w, "failover: kill the leader, time until every survivor holds a certificate for one new leader (profile %s; raft heartbeat %s, election %s, lease %s, commit %s, pre-vote %v; every failover bounded by %s; %d CPU-burning goroutines alongside)\n",
		r.Profile, r.Raft.HeartbeatTimeout, r.Raft.ElectionTimeout, r.Raft.LeaderLeaseTimeout, r.Raft.CommitTimeout, r.Raft.PreVote, r.Within, r.Burn)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tok/trials\tstart failed\ttimed out\tp50 ms\tp90 ms\tp95 ms\tp99* ms\tmax ms\tcensored p50 ms\tcensored p99* ms\tfirst p50 ms\tacting p50 ms\tfalse pos\t")
	fewest := 0
	for _, s := range r.Series {
		acting := "-"
		if s.Acting != nil {
			acting = fmt.Sprintf("%.0f", s.Acting.P50)
		}
		trials := fmt.Sprintf("%d/%d", s.All.N, s.Trials)
		if s.GaveUp {
			trials += " (gave up)"
		}
		cens50, cens99 := "-", "-"
		if s.Censored.N > 0 {
			cens50, cens99 = s.Censored.P50.String(), s.Censored.P99.String()
		}
		if s.All.N == 0 {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t-\t-\t-\t-\t-\t%s\t%s\t-\t-\t%d\t\n", s.Scheme, s.N, trials, s.StartFailed, s.TimedOut, cens50, cens99, s.FalsePositives)
			continue
		}
		if fewest == 0 || s.All.N < fewest {
			fewest = s.All.N
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t%.0f\t%s\t%d\t\n", s.Scheme, s.N, trials, s.StartFailed, s.TimedOut,
			s.All.P50, s.All.P90, s.All.P95, s.All.P99, s.All.Max, cens50, cens99, s.First.P50, acting, s.FalsePositives)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "quantiles: nearest rank over the successful trials; * %s. Censored: the timed-out trials counted too, as \"> %s\" (start failures, where nothing was killed, are left out).\n",
		p99Note(fewest), r.Within)
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nvouch / raft (ratio of medians, ratio of p99s; below 1: vouch faster; \"partial\": a series had failed trials, so survivors are compared)")
		tw = table(w)
		fmt.Fprintln(tw, "N\tscheme\tp50 ratio\tp99* ratio\t\t")
		for _, x := range r.Ratios {
			note := ""
			if x.Partial {
				note = "partial"
			}
			fmt.Fprintf(tw, "%d\t%s\t%.2f\t%.2f\t%s\t\n", x.N, x.Scheme, x.P50, x.P99, note)
		}
		return tw.Flush()
	}
	return nil
}

// p99Note explains the p99 column given its smallest sample.
func p99Note(fewest int) string {
	if fewest > 0 && fewest < 100 {
		return fmt.Sprintf("with fewer than 100 samples p99 is the maximum: %s in the smallest row", P99Label(fewest))
	}
	return "p99 is the ⌈0.99 n⌉-th of n sorted samples"
}

// WriteTable prints the dissemination results.
func (r *DisseminationResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "dissemination: the leader obtains a fresh certificate every %s; time until 90%%, 99%% and 100%% of the nodes accepted it, next to the gossip model\n", r.Refresh)
	tw := table(w)
	fmt.Fprintln(tw, "N\tcerts\tincomplete\t90% p50 ms\t90% p99* ms\t99% p50 ms\t99% p99* ms\t100% p50 ms\t100% p99* ms\t100% censored p50 ms\t100% censored p99* ms\tfanout\tlimit\tclosed form rounds (ms)\tmodel 90% rounds (ms)\tmodel 99% rounds (ms)\tmodel 100% rounds (ms)\tmeasured 100% p50 rounds\t")
	fewest, same := 0, false
	for _, s := range r.Series {
		g := s.GossipIntervalMs
		rounds := "-"
		if g > 0 && s.To100.N > 0 {
			rounds = fmt.Sprintf("%.1f", s.To100.P50/g)
		}
		if s.To100.N > 0 && (fewest == 0 || s.To100.N < fewest) {
			fewest = s.To100.N
		}
		same = same || (s.K99 > 0 && s.K99 == s.N)
		model := func(rounds float64) string {
			if rounds < 0 {
				return "never"
			}
			return fmt.Sprintf("%.1f (%.0f)", rounds, rounds*g)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t%d\t%d\t%.1f (%.0f)\t%s\t%s\t%s\t%s\t\n", s.N, s.Certs, s.Incomplete,
			s.To90.P50, s.To90.P99, s.To99.P50, s.To99.P99, s.To100.P50, s.To100.P99, s.To100Censored.P50, s.To100Censored.P99,
			s.Fanout, s.TransmitLimit, s.ClosedFormRounds, s.ClosedFormRounds*g, model(s.ModelRounds90), model(s.ModelRounds99), model(s.ModelRounds100), rounds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "quantiles over the certificates that got there; * %s. Censored: the certificates that never reached every node counted too, as \"> how long the run watched them\".\n", p99Note(fewest))
	if same {
		fmt.Fprintln(w, "99% waits for ⌈0.99 N⌉ nodes, which is N for N ≤ 100: there the 99% and 100% columns are the same measurement.")
	}
	return nil
}

// WriteTable prints the cost at rest.
func (r *RestResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "cost at rest (profile %s): per node, averaged over the window\n", r.Profile)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tpackets/s\tbytes/s\tTCP streams/s\tTCP bytes/s\truntime calls/s (all)\tCPU ms/s\tCPU cores (all)\tRSS MiB/node\tpeak RSS MiB/node\tRSS added MiB/node\theap MiB/node\tgoroutines/node\tstart s\tfalse pos idle\tfalse pos forming\t")
	for _, s := range r.Series {
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\tFAILED: %s\n", s.Scheme, s.N, s.Error) // last cell: no column
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.2f\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%d\t%d\t\n", s.Scheme, s.N, s.PacketsPerS, s.BytesPerS, s.StreamsPerS, s.StreamBytesPerS, s.RuntimeCallsPerS,
			s.CPUMsPerSPerNode, s.CPUCoresTotal, s.RSSPerNodeMiB, s.PeakRSSPerNodeMiB, s.RSSAddedPerNodeMiB, s.HeapPerNodeMiB, s.GoroutinesPerNode, s.StartS, s.FalsePositives, s.StartFalsePositives)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "RSS is the whole process (runtime included) over N at the end of the window; peak RSS the highest sample (every 50 ms) from the cluster's start, formation included.")
	return nil
}

// ExcessString shows the excess runtime calls with their spread: "≈0
// (IQR −1.5 to 0.8)" when the quartiles include 0, else "11.1 (IQR 5.0
// to 15.2)".
func (s *MessagesSeries) ExcessString() string {
	if s.ExcessIsNoise() {
		return fmt.Sprintf("≈0 (IQR %.1f to %.1f)", s.ExcessP25, s.ExcessP75)
	}
	return fmt.Sprintf("%.1f (IQR %.1f to %.1f)", s.ExcessRuntimeCalls, s.ExcessP25, s.ExcessP75)
}

// WriteTable prints the messages per election.
func (r *MessagesResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "messages per election (medians over trials; window = kill to every survivor holding the new certificate + %s; a request and its answer are 2 messages)\n", r.Tail)
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tN\tok/trials\twindow ms\truntime calls\tidle calls/s\texcess calls\tcert packets\tcert copies\tpre-votes sent+answered\tvotes sent+answered\tannounce sent+answered\trounds\tformula 4(N-1)/round\ttotal msgs\tMinBFT formula n(n-1)\tPBFT formula 2n(n-1)\t")
	for _, s := range r.Series {
		if s.Scheme == SchemeRaft {
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%.0f\t-\t-\t-\t-\t-\t%.0f+%.0f\t%.0f+%.0f\t%.0f+%.0f\t%.0f\t%d\t%.0f\t%d\t%d\t\n", s.Scheme, s.N, s.Trials-s.Failed, s.Trials, s.WindowMs,
				s.PreVotes, s.PreVoteResps, s.Votes, s.VoteResps, s.Announces, s.AnnounceResps, s.Rounds, s.RaftFormula, s.Total, s.MinBFT, s.PBFT)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%.0f\t%.0f\t%.1f\t%s\t%.0f\t%.0f\t-\t-\t-\t-\t-\t%.0f\t%d\t%d\t\n", s.Scheme, s.N, s.Trials-s.Failed, s.Trials, s.WindowMs,
				s.RuntimeCalls, s.IdleCallsPerS, s.ExcessString(), s.CertPackets, s.CertMsgs, s.Total, s.MinBFT, s.PBFT)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "total: vouch, certificate packets + 2 × max(0, excess runtime calls); raft, every pre-vote, vote and announcing AppendEntries request and answer. MinBFT and PBFT are formulas, not measurements.")
	return nil
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
func CommandLine(args []string) string { return bench.CommandLine(args) }

// WriteTable prints the false failovers at rest.
func (r *AtRestResult) WriteTable(w io.Writer) error {
	tw := table(w)
	fmt.Fprintln(tw, "scheme\tmax silence ms\tN\tfalse failovers\tper hour\tleader changes\talarms\tdeparted\tpre-votes\tminutes\t")
	for _, s := range r.Series {
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%.1f\t\n", s.Scheme, s.SilenceMs, s.N, s.FalseFailovers, s.PerHour, s.LeaderChanges, s.Alarms, s.Departures, s.PreVotes, s.DurationS/60)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "hog: %s; load averages: %v\n", r.Hog, r.Loads)
	return err
}
