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
		if err := plotFailover(r.Failover, r.Machine, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if r.Dissemination != nil && len(r.Dissemination.Series) > 0 {
		f := filepath.Join(dir, "dissemination."+format)
		if err := plotDissemination(r.Dissemination, r.Machine, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("scale: the report has no failover or dissemination results to plot")
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

func plotFailover(r *FailoverResult, m Machine, file string) error {
	p := newPlot(fmt.Sprintf("Failover vs N: kill the leader, every survivor knows the new one\n(vouch profile %s; raft heartbeat/election %s/%s; solid p50, dashed p99)",
		r.Profile, r.Raft.HeartbeatTimeout, r.Raft.ElectionTimeout), machineLine(m))
	for _, scheme := range []string{SchemeMembers, SchemeViews, SchemeRaft} {
		var p50, p99 plotter.XYs
		for _, s := range r.Series {
			if s.Scheme == scheme && s.All.N > 0 {
				p50 = append(p50, plotter.XY{X: float64(s.N), Y: s.All.P50})
				p99 = append(p99, plotter.XY{X: float64(s.N), Y: s.All.P99})
			}
		}
		c := schemeColor[scheme]
		if err := addLine(p, p50, c, nil, draw.CircleGlyph{}, schemeLabel[scheme]+" p50"); err != nil {
			return err
		}
		if err := addLine(p, p99, c, dashed, draw.TriangleGlyph{}, schemeLabel[scheme]+" p99"); err != nil {
			return err
		}
	}
	return p.Save(8*vg.Inch, 5.5*vg.Inch, file)
}

func plotDissemination(r *DisseminationResult, m Machine, file string) error {
	p := newPlot("Dissemination vs N: a new certificate reaching 99% / 100% of nodes\n(measured p50 with p99 bars; model = memberlist gossip rounds × GossipInterval)", machineLine(m))
	var m99, m100, mod99, mod100, closed plotter.XYs
	var bars errXYs
	for _, s := range r.Series {
		if s.Error != "" {
			continue
		}
		x := float64(s.N)
		if s.To99.N > 0 {
			m99 = append(m99, plotter.XY{X: x, Y: s.To99.P50})
		}
		if s.To100.N > 0 {
			m100 = append(m100, plotter.XY{X: x, Y: s.To100.P50})
			bars = append(bars, errXY{x, s.To100.P50, s.To100.P99 - s.To100.P50})
		}
		g := s.GossipIntervalMs
		mod99 = append(mod99, plotter.XY{X: x, Y: s.ModelRounds99 * g})
		if s.ModelRounds100 < 1e9 {
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
	return p.Save(8*vg.Inch, 5.5*vg.Inch, file)
}

type errXY struct{ x, y, up float64 }
type errXYs []errXY

func (e errXYs) Len() int                        { return len(e) }
func (e errXYs) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errXYs) YError(i int) (float64, float64) { return 0, e[i].up }
