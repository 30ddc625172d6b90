package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// Leadership intervals come from the nodes' JSON logs (slog's JSON
// handler, `vouch node --log-format json`): a node acts as leader from
// its "I AM THE LEADER" line until its "stopped leading" line, which it
// logs as it cancels the OnStartedLeading context, or until the line's
// "lease_end" when it has one: the leadership context ended by itself at
// that lease end (signed views), however late the node's loop logged it. A harness that kills a
// node writes a line with message KilledMsg (time: just before the kill)
// into the node's log, which ends any interval still open; an interval
// still open at the end of the log ends at the time given to
// Leaderships.
const (
	StartedMsg = "I AM THE LEADER"
	StoppedMsg = "stopped leading"
	KilledMsg  = "chaos: killed"
)

// Interval is a time a node acted as leader.
type Interval struct {
	Node       string
	Seq        uint64 // the seq or term it started leading with
	Start, End time.Time
	Killed     bool // ended by a kill, not by the node
}

type logLine struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	Seq      uint64    `json:"seq"`
	LeaseEnd time.Time `json:"lease_end"`
}

// Leaderships reads one node's JSON log and returns its leadership
// intervals. Lines that are not JSON (a process's own messages on stderr)
// are skipped.
func Leaderships(node string, r io.Reader, end time.Time) ([]Interval, error) {
	var out []Interval
	var open *Interval
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		b := sc.Bytes()
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		var l logLine
		if json.Unmarshal(b, &l) != nil {
			continue
		}
		switch l.Msg {
		case StartedMsg:
			if open == nil {
				open = &Interval{Node: node, Seq: l.Seq, Start: l.Time}
			}
		case StoppedMsg, KilledMsg:
			if open != nil {
				open.End, open.Killed = l.Time, l.Msg == KilledMsg
				if !l.LeaseEnd.IsZero() && l.LeaseEnd.Before(l.Time) {
					open.End = maxTime(l.LeaseEnd, open.Start)
				}
				out = append(out, *open)
				open = nil
			}
		}
	}
	if open != nil {
		open.End = end
		out = append(out, *open)
	}
	return out, sc.Err()
}

// Overlap is two nodes acting as leader at once.
type Overlap struct {
	A, B Interval
	For  time.Duration
}

func (o Overlap) String() string {
	return fmt.Sprintf("%s (leading since %s at seq/term %d) and %s (since %s at %d) both acted as leader for %v, until %s",
		o.A.Node, o.A.Start.Format("15:04:05.000"), o.A.Seq, o.B.Node, o.B.Start.Format("15:04:05.000"), o.B.Seq,
		o.For.Round(time.Millisecond), minTime(o.A.End, o.B.End).Format("15:04:05.000"))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Overlaps returns every pair of intervals of different nodes that
// overlap in time, longest first.
func Overlaps(iv []Interval) []Overlap {
	sort.Slice(iv, func(i, j int) bool { return iv[i].Start.Before(iv[j].Start) })
	var out []Overlap
	for i := range iv {
		for j := i + 1; j < len(iv) && iv[j].Start.Before(iv[i].End); j++ {
			if iv[i].Node == iv[j].Node {
				continue
			}
			d := minTime(iv[i].End, iv[j].End).Sub(maxTime(iv[i].Start, iv[j].Start))
			if d > 0 {
				out = append(out, Overlap{A: iv[i], B: iv[j], For: d})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].For > out[j].For })
	return out
}
