package scale

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	schemeColor = map[string]color.Color{
		SchemeMembers: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		SchemeViews:   color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		SchemeRaft:    color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	}
	schemeLabel = map[string]string{
		SchemeMembers: "vouch (member list)",
		SchemeViews:   "vouch (signed views)",
		SchemeRaft:    "hashicorp/raft",
	}
	dashed = []vg.Length{vg.Points(5), vg.Points(3)}
	dotted = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
)

// Plot renders the report's failover and dissemination sections into dir
// as failover.<format> and dissemination.<format> (format: svg, png or
// pdf). It returns the files written.
func Plot(r *Report, dir, format string) ([]string, error) {
	if format == "" {
		format = "svg"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	if r.Failover != nil && len(r.Failover.Series) > 0 {
		f := filepath.Join(dir, "failover."+format)
		m := r.Machine
		if r.failoverMachine != nil {
			m = *r.failoverMachine
		}
		if err := plotFailover(r.Failover, m, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if r.Dissemination != nil && len(r.Dissemination.Series) > 0 {
		f := filepath.Join(dir, "dissemination."+format)
		m := r.Machine
		if r.disseminationMachine != nil {
			m = *r.disseminationMachine
		}
		if err := plotDissemination(r.Dissemination, m, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if r.Tradeoff != nil {
		m := r.Machine
		if r.tradeoffMachine != nil {
			m = *r.tradeoffMachine
		}
		fs, err := plotTradeoff(r.Tradeoff, m, dir, format)
		files = append(files, fs...)
		if err != nil {
			return files, err
		}
	}
	if len(r.Formation) > 0 {
		f := filepath.Join(dir, "formation."+format)
		m := r.Machine
		if r.formationMachine != nil {
			m = *r.formationMachine
		}
		if err := plotFormation(r.Formation, m, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("scale: the report has no failover, dissemination, trade-off or formation results to plot")
	}
	return files, nil
}

func newPlot(title, machine string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "cluster size N (nodes, log scale)\n" + machine
	p.Y.Label.Text = "milliseconds"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = nTicks{}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// nTicks labels each power of ten and 2, 3, 5 between them.
type nTicks struct{}

func (nTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for dec := 1.0; dec <= max*10; dec *= 10 {
		for _, m := range []float64{1, 2, 3, 5} {
			if v := dec * m; v >= min*0.999 && v <= max*1.001 {
				ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprint(v)})
			}
		}
	}
	return ts
}

func machineLine(m Machine) string {
	return fmt.Sprintf("%d CPUs, %s, %s; load %s", m.CPUs, m.CPUModel, m.GoVersion, m.LoadBefore)
}

func addLine(p *plot.Plot, xys plotter.XYs, c color.Color, dashes []vg.Length, shape draw.GlyphDrawer, label string) error {
	if len(xys) == 0 {
		return nil
	}
	sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, l.Dashes, l.Width = c, dashes, vg.Points(1.5)
	s.Color, s.Shape, s.Radius = c, shape, vg.Points(2.5)
	p.Add(l, s)
	p.Legend.Add(label, l, s)
	return nil
}

// partialMark is a point measured on only some of its trials: a hollow
// ring around its marker and a label "ok/trials", so that a reader does
// not take a survivor-biased point for a full one.
type partialMark struct {
	xy    plotter.XY
	label string
}

// markPartial draws the marks, and a legend entry for them.
func markPartial(p *plot.Plot, marks []partialMark) error {
	if len(marks) == 0 {
		return nil
	}
	var xys plotter.XYs
	var labels []string
	for _, m := range marks {
		xys = append(xys, m.xy)
		labels = append(labels, m.label)
	}
	ring, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	ring.Shape, ring.Radius, ring.Color = draw.RingGlyph{}, vg.Points(6), color.Black
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	l.Offset = vg.Point{X: vg.Points(7), Y: vg.Points(2)}
	p.Add(ring, l)
	p.Legend.Add("partial: only ok/trials succeeded (survivors only)", ring)
	return nil
}

func plotFailover(r *FailoverResult, m Machine, file string) error {
	fewest := 0
	for _, s := range r.Series {
		if s.All.N > 0 && (fewest == 0 || s.All.N < fewest) {
			fewest = s.All.N
		}
	}
	p99 := "p99"
	switch {
	case r.maxTrials() > 0 && r.maxTrials() < 100:
		p99 = fmt.Sprintf("p99 = max of ≤ %d trials (nearest rank)", r.maxTrials())
	case fewest > 0 && fewest < 100:
		p99 = "p99 (= max where < 100 trials)"
	}
	p := newPlot(fmt.Sprintf("Failover vs N: kill the leader, every survivor knows the new one\n(vouch profile %s; raft heartbeat/election %s/%s; solid p50, dashed %s)",
		r.Profile, r.Raft.HeartbeatTimeout, r.Raft.ElectionTimeout, p99), machineLine(m))
	var marks []partialMark
	for _, scheme := range []string{SchemeMembers, SchemeViews, SchemeRaft} {
		var p50s, p99s plotter.XYs
		for _, s := range r.Series {
			if s.Scheme == scheme && s.All.N > 0 {
				p50s = append(p50s, plotter.XY{X: float64(s.N), Y: s.All.P50})
				p99s = append(p99s, plotter.XY{X: float64(s.N), Y: s.All.P99})
				if s.Partial() {
					label := fmt.Sprintf("%d/%d", s.All.N, s.Trials)
					marks = append(marks, partialMark{plotter.XY{X: float64(s.N), Y: s.All.P50}, label}, partialMark{plotter.XY{X: float64(s.N), Y: s.All.P99}, label})
				}
			}
		}
		c := schemeColor[scheme]
		if err := addLine(p, p50s, c, nil, draw.CircleGlyph{}, schemeLabel[scheme]+" p50"); err != nil {
			return err
		}
		if err := addLine(p, p99s, c, dashed, draw.TriangleGlyph{}, schemeLabel[scheme]+" p99"); err != nil {
			return err
		}
	}
	if err := markPartial(p, marks); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5.5*vg.Inch, file)
}

func plotDissemination(r *DisseminationResult, m Machine, file string) error {
	p := newPlot("Dissemination vs N: a new certificate reaching 99% / 100% of nodes\n(measured p50 with p99 bars; model = memberlist gossip rounds × GossipInterval; 99% = 100% for N ≤ 100)", machineLine(m))
	var m99, m100, mod99, mod100, closed plotter.XYs
	var bars errXYs
	var marks []partialMark
	for _, s := range r.Series {
		if s.Error != "" {
			continue
		}
		x := float64(s.N)
		if s.To99.N > 0 {
			m99 = append(m99, plotter.XY{X: x, Y: s.To99.P50})
			if s.To99.N < s.Certs {
				marks = append(marks, partialMark{plotter.XY{X: x, Y: s.To99.P50}, fmt.Sprintf("%d/%d", s.To99.N, s.Certs)})
			}
		}
		if s.To100.N > 0 {
			m100 = append(m100, plotter.XY{X: x, Y: s.To100.P50})
			bars = append(bars, errXY{x, s.To100.P50, s.To100.P99 - s.To100.P50})
			if s.To100.N < s.Certs {
				marks = append(marks, partialMark{plotter.XY{X: x, Y: s.To100.P50}, fmt.Sprintf("%d/%d", s.To100.N, s.Certs)})
			}
		}
		g := s.GossipIntervalMs
		if s.ModelRounds99 >= 0 {
			mod99 = append(mod99, plotter.XY{X: x, Y: s.ModelRounds99 * g})
		}
		if s.ModelRounds100 >= 0 && s.ModelRounds100 < 1e9 {
			mod100 = append(mod100, plotter.XY{X: x, Y: s.ModelRounds100 * g})
		}
		closed = append(closed, plotter.XY{X: x, Y: s.ClosedFormRounds * g})
	}
	blue, orange, grey := color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	if err := addLine(p, m99, orange, nil, draw.SquareGlyph{}, "measured, 99% of nodes (p50)"); err != nil {
		return err
	}
	if err := addLine(p, m100, blue, nil, draw.CircleGlyph{}, "measured, 100% of nodes (p50, bar to p99)"); err != nil {
		return err
	}
	if len(bars) > 0 {
		eb, err := plotter.NewYErrorBars(bars)
		if err != nil {
			return err
		}
		eb.Color = blue
		p.Add(eb)
	}
	if err := addLine(p, mod99, orange, dashed, draw.SquareGlyph{}, "model (simulated memberlist gossip), 99%"); err != nil {
		return err
	}
	if err := addLine(p, mod100, blue, dashed, draw.CircleGlyph{}, "model (simulated memberlist gossip), 100%"); err != nil {
		return err
	}
	if err := addLine(p, closed, grey, dotted, draw.CrossGlyph{}, "closed form log_{f+1}N + ln(N)/f rounds"); err != nil {
		return err
	}
	if err := markPartial(p, marks); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5.5*vg.Inch, file)
}

type errXY struct{ x, y, up float64 }
type errXYs []errXY

func (e errXYs) Len() int                        { return len(e) }
func (e errXYs) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errXYs) YError(i int) (float64, float64) { return 0, e[i].up }

// maxTrials is the largest number of successful trials in a series.
func (r *FailoverResult) maxTrials() int {
	m := 0
	for _, s := range r.Series {
		m = max(m, s.All.N)
	}
	return m
}

// restSizeFor is the at-rest size to pair with failover size n: n if it
// was measured at rest, else the largest at-rest size below n.
func (r *TradeoffResult) restSizeFor(n int) int {
	best := 0
	if r.AtRest == nil {
		return 0
	}
	for _, s := range r.AtRest.Series {
		if s.N == n {
			return n
		}
		if s.N < n && s.N > best {
			best = s.N
		}
	}
	return best
}

// plotTradeoff draws failover p50 against false failovers per hour, one
// curve per system, one plot per failover size: tradeoff_nN.<format>.
func plotTradeoff(r *TradeoffResult, m Machine, dir, format string) ([]string, error) {
	sizes := map[int]bool{}
	for _, f := range r.Failover {
		if f == nil {
			continue
		}
		for _, s := range f.Series {
			sizes[s.N] = true
		}
	}
	var ns []int
	for n := range sizes {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	var files []string
	for _, n := range ns {
		restN := r.restSizeFor(n)
		pts := r.Points(n, restN)
		if len(pts) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Failover p50 (N = %d) against false failovers at rest (N = %d, CPU hog on one core)\nsolid: a node gave up on its leader, or it changed; dashed: leader changes; labels: S, ms", n, restN)
		p.X.Label.Text = "per hour at rest\n" + machineLine(m)
		p.Y.Label.Text = "failover p50, milliseconds"
		p.X.Min, p.Y.Min = 0, 0
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		for _, curve := range []struct {
			scheme  string
			changes bool
		}{{SchemeMembers, false}, {SchemeRaft, false}, {SchemeMembers, true}, {SchemeRaft, true}} {
			scheme := curve.scheme
			var xys plotter.XYs
			var labels []string
			for _, q := range pts {
				if q.Scheme == scheme {
					x := q.PerHour
					if curve.changes {
						x = q.ChangesPerHour
					}
					xys = append(xys, plotter.XY{X: x, Y: q.P50Ms})
					labels = append(labels, fmt.Sprintf("%.0f", q.SilenceMs))
				}
			}
			if len(xys) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(xys)
			if err != nil {
				return files, err
			}
			c := schemeColor[scheme]
			l.Color, l.Width = c, vg.Points(1.5)
			s.Color, s.Shape, s.Radius = c, draw.CircleGlyph{}, vg.Points(3)
			label := schemeLabel[scheme] + ", false failovers"
			if curve.changes {
				l.Dashes, s.Shape = dashed, draw.TriangleGlyph{}
				label = schemeLabel[scheme] + ", leader changes only"
			}
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return files, err
			}
			lab.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
			p.Add(l, s, lab)
			p.Legend.Add(label, l, s)
		}
		f := filepath.Join(dir, fmt.Sprintf("tradeoff_n%d.%s", n, format))
		if err := p.Save(8*vg.Inch, 5.5*vg.Inch, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}

// plotFormation draws formation time against N, one line per scheme over
// the sizes that formed; a size that did not form is marked at the time
// the run gave up (an open circle, "did not form").
func plotFormation(series []FormationSeries, m Machine, file string) error {
	p := newPlot("Formation in one process: time to agreement", machineLine(m))
	p.Y.Label.Text = "formation time (s)"
	p.X.Tick.Marker = nTicks{}
	byScheme := map[string][]FormationSeries{}
	for _, s := range series {
		byScheme[s.Scheme] = append(byScheme[s.Scheme], s)
	}
	schemes := make([]string, 0, len(byScheme))
	for k := range byScheme {
		schemes = append(schemes, k)
	}
	sort.Strings(schemes)
	for _, sc := range schemes {
		ss := byScheme[sc]
		sort.Slice(ss, func(i, j int) bool { return ss[i].N < ss[j].N })
		var ok, failed plotter.XYs
		for _, s := range ss {
			if s.Error == "" {
				ok = append(ok, plotter.XY{X: float64(s.N), Y: s.StartS})
			} else {
				failed = append(failed, plotter.XY{X: float64(s.N), Y: s.StartS})
			}
		}
		c := schemeColor[sc]
		if len(ok) > 0 {
			if err := addLine(p, ok, c, nil, draw.CircleGlyph{}, schemeLabel[sc]); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			sc, err := plotter.NewScatter(failed)
			if err != nil {
				return err
			}
			sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = c, draw.RingGlyph{}, vg.Points(4)
			p.Add(sc)
			p.Legend.Add("did not form (gave up)", sc)
		}
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, file)
}
