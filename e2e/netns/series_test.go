//go:build netns && linux

package netns

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The failover series of docs/BENCHMARKS.md, opt-in: VOUCH_NETNS_SERIES
// lists cluster sizes (e.g. "5,25"), VOUCH_NETNS_TRIALS the trials per
// size, scheme and placement (default 20), VOUCH_NETNS_SERIES_JSON a file
// to write the results to. Each size and scheme runs two clusters side by
// side from the same vouch binary with the same flags: one with every
// process in its own namespace, one with every process on 127.0.0.1 in
// this namespace; their trials alternate, so load falls on both alike.
// p99 is the slowest trial (nearest rank of 20).
func TestFailoverSeries(t *testing.T) {
	sizes := os.Getenv("VOUCH_NETNS_SERIES")
	if sizes == "" {
		t.Skip("netns test bed: set VOUCH_NETNS_SERIES=5,25 (and VOUCH_NETNS_TRIALS, default 20; VOUCH_NETNS_SERIES_JSON=FILE) to measure failover series")
	}
	trials := 20
	if v := os.Getenv("VOUCH_NETNS_TRIALS"); v != "" {
		var err error
		if trials, err = strconv.Atoi(v); err != nil || trials < 1 {
			t.Fatalf("VOUCH_NETNS_TRIALS=%q: want a positive number", v)
		}
	}
	var ns []int
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 || n > 60 {
			t.Fatalf("VOUCH_NETNS_SERIES: %q is not a size from 3 to 60", f)
		}
		ns = append(ns, n)
	}
	out := seriesOutput{
		Benchmark: "netns-failover-series",
		Command:   fmt.Sprintf("VOUCH_NETNS_SERIES=%s VOUCH_NETNS_TRIALS=%d go test -tags netns -run TestFailoverSeries -v -timeout 0 ./e2e/netns/", sizes, trials),
		Method: "per size and scheme, two clusters from the same vouch binary with the same flags (--profile local): every runtime and node " +
			"a separate process in its own network namespace (veth pairs and bridges), and every process on 127.0.0.1 in the root namespace; " +
			"trials alternate namespaces, loopback. A trial SIGKILLs the leader and measures until every survivor's /status names the next " +
			"(agree) and, with signed views, until the next answers GET /leader with 200 (acts), polled every 50 ms; the killed node then " +
			"restarts and leads again. p99 by nearest rank (of 20: the slowest).",
		Machine: seriesMachine{
			NProc: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAverage(), Started: time.Now().UTC(),
		},
		Trials: trials,
	}
	for _, n := range ns {
		for _, views := range []bool{false, true} {
			scheme := schemeName(views)
			t.Run(fmt.Sprintf("%s N=%d", scheme, n), func(t *testing.T) {
				rows := failoverBothPlacements(t, views, n, trials)
				out.Results = append(out.Results, rows...)
				nsRow, loRow := rows[0], rows[1]
				t.Logf("series: %s, N = %d, until every survivor names the next: namespaces %s; loopback %s; ratio at p50 %.2f",
					scheme, n, percentiles(nsRow.agree), percentiles(loRow.agree), p50Ratio(nsRow.agree, loRow.agree))
				if views {
					t.Logf("series: %s, N = %d, until the next acts: namespaces %s; loopback %s; ratio at p50 %.2f",
						scheme, n, percentiles(nsRow.acts), percentiles(loRow.acts), p50Ratio(nsRow.acts, loRow.acts))
				}
			})
		}
	}
	out.Machine.LoadAfter = loadAverage()
	out.Machine.Seconds = time.Since(out.Machine.Started).Round(100 * time.Millisecond).Seconds()
	if path := os.Getenv("VOUCH_NETNS_SERIES_JSON"); path != "" {
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("series: results written to %s", path)
	}
}

// seriesOutput is the JSON that VOUCH_NETNS_SERIES_JSON names.
type seriesOutput struct {
	Benchmark string        `json:"benchmark"`
	Command   string        `json:"command"`
	Method    string        `json:"method"`
	Machine   seriesMachine `json:"machine"`
	Trials    int           `json:"trials"`
	Results   []seriesRow   `json:"results"`
}

type seriesMachine struct {
	NProc      int       `json:"nproc"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	LoadBefore string    `json:"load_before"`
	LoadAfter  string    `json:"load_after"`
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
}

// seriesRow is one size, scheme and placement.
type seriesRow struct {
	Nodes     int          `json:"nodes"`
	Scheme    string       `json:"scheme"`
	Placement string       `json:"placement"`
	FormedMS  float64      `json:"formed_ms"`
	Agree     *seriesStats `json:"agree"`
	Acts      *seriesStats `json:"acts,omitempty"`
	// The ratios namespaces ÷ loopback at p50, on the namespaces row.
	AgreeRatioP50 float64 `json:"agree_p50_ratio_to_loopback,omitempty"`
	ActsRatioP50  float64 `json:"acts_p50_ratio_to_loopback,omitempty"`

	agree, acts []time.Duration
}

type seriesStats struct {
	N       int       `json:"n"`
	P50     float64   `json:"p50_ms"`
	P99     float64   `json:"p99_ms"`
	Samples []float64 `json:"samples_ms"`
}

func schemeName(views bool) string {
	if views {
		return "signed views"
	}
	return "member list"
}

// placement is one cluster of a series and how to (re)start its nodes.
type placement struct {
	name  string // "namespaces" or "loopback"
	c     *cluster
	start func(name string, peers []string)
	lead  string
	ans   leaderAnswer
	row   seriesRow
}

// failoverBothPlacements measures one size and scheme in both
// placements, trials alternating, and returns the namespaces row first.
func failoverBothPlacements(t *testing.T, views bool, n, trials int) []seriesRow {
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("n%02d", i))
	}
	nsc := newCluster(t, views)
	nsc.addHosts(names...)
	lo := newLoopbackCluster(t, views, names)
	places := []*placement{
		{name: "namespaces", c: nsc, start: func(name string, peers []string) { nsc.startNode(name, peers) }},
		{name: "loopback", c: lo.c, start: lo.startNode},
	}
	for _, p := range places {
		p.form(names)
	}
	for i := range trials {
		for _, p := range places {
			p.trial(names)
		}
		if (i+1)%5 == 0 {
			t.Logf("%s N = %d: %d of %d trials in each placement, load %s", schemeName(views), n, i+1, trials, loadAverage())
		}
	}
	rows := []seriesRow{places[0].row, places[1].row}
	for i := range rows {
		rows[i].Agree = stats(rows[i].agree)
		if views {
			rows[i].Acts = stats(rows[i].acts)
		}
	}
	rows[0].AgreeRatioP50 = p50Ratio(rows[0].agree, rows[1].agree)
	if views {
		rows[0].ActsRatioP50 = p50Ratio(rows[0].acts, rows[1].acts)
	}
	return rows
}

// form starts every node, each joining the first (the first joins the
// second), and waits until they see each other and agree (with signed
// views: one acts).
func (p *placement) form(names []string) {
	t := p.c.b.t
	formed := time.Now()
	for i, name := range names {
		peer := names[0]
		if i == 0 {
			peer = names[1]
		}
		p.start(name, []string{peer})
	}
	p.c.waitMembers(120*time.Second, names...)
	p.lead = highest(names)
	if p.c.views {
		p.lead, p.ans = p.c.waitActing(120*time.Second, 0, names...)
	}
	p.c.waitAgree(120*time.Second, p.lead, names...)
	d := time.Since(formed)
	p.row = seriesRow{Nodes: len(names), Scheme: schemeName(p.c.views), Placement: p.name, FormedMS: ms(d)}
	t.Logf("%s, %s: %d nodes formed in %v, %s leads", schemeName(p.c.views), p.name, len(names), d.Round(time.Millisecond), p.lead)
}

// trial SIGKILLs the leader, measures until every survivor's /status
// names the next (agree) and, with signed views, until the next answers
// GET /leader with 200 (acts), then restarts the killed node and waits
// until it leads again. The same as failoverSeries in netns_test.go.
func (p *placement) trial(names []string) {
	c := p.c
	killed := time.Now()
	c.nodes[p.lead].p.kill()
	alive := without(names, p.lead)
	next := highest(alive)
	if c.views {
		var after leaderAnswer
		next, after = c.waitActing(30*time.Second, p.ans.Token, alive...)
		p.row.acts = append(p.row.acts, time.Since(killed))
		p.ans = after
	}
	c.waitAgree(30*time.Second, next, alive...)
	p.row.agree = append(p.row.agree, time.Since(killed))
	p.start(p.lead, []string{next})
	c.waitMembers(60*time.Second, names...)
	if c.views {
		p.lead, p.ans = c.waitActing(60*time.Second, p.ans.Token-1, names...)
	}
	c.waitAgree(60*time.Second, p.lead, names...)
}

// loopbackCluster is a cluster whose runtime and nodes are processes in
// this (the root) namespace on 127.0.0.1, each on ports of its own. Its
// hosts have no namespace: their HTTP clients dial the node's own port
// where host.getJSON asks for httpPort, so the cluster's polling
// (agree, acting) is the same code as in namespaces.
type loopbackCluster struct {
	c         *cluster
	gossip    map[string]int // node name: gossip port
	httpPorts map[string]int // node name: --http port
}

// newLoopbackCluster starts a runtime on 127.0.0.1, deploys the election
// function as newCluster does, and creates the named nodes' hosts (and,
// with signed views, their identities and cluster.json). It runs after
// newCluster, whose requireNetns built vouch (calling that again would
// remove this test's namespaces as leftovers).
func newLoopbackCluster(t *testing.T, views bool, names []string) *loopbackCluster {
	t.Helper()
	b := &bed{t: t, id: "loopback", dir: t.TempDir()}
	c := &cluster{b: b, views: views, nodes: map[string]*node{}}
	lo := &loopbackCluster{c: c, gossip: map[string]int{}, httpPorts: map[string]int{}}
	ports := freePorts(t, 1+2*len(names))
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	c.rtURL = "https://" + listen
	c.env = []string{"VOUCH_ENCLAVE=" + c.rtURL}
	// Only /healthz goes through this client; vouch itself pins the attested key.
	c.rt = &host{b: b, name: "runtime", http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	t.Cleanup(c.rt.http.CloseIdleConnections)
	lo.startProc("runtime", "enclave", "--listen", listen, "--data", "vouch-data")
	c.setUpFunction(lo.run)
	for i, name := range names {
		lo.gossip[name], lo.httpPorts[name] = ports[1+2*i], ports[2+2*i]
		addr := fmt.Sprintf("127.0.0.1:%d", lo.httpPorts[name])
		var d net.Dialer
		tr := &http.Transport{DialContext: d.DialContext}
		h := &host{b: b, name: name, idx: i + 1, http: &http.Client{Timeout: 2 * time.Second, Transport: tr}}
		tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			if a == fmt.Sprintf("127.0.0.1:%d", httpPort) {
				a = addr
			}
			return d.DialContext(ctx, network, a)
		}
		t.Cleanup(h.http.CloseIdleConnections)
		c.nodes[name] = &node{host: h}
		c.names = append(c.names, name)
	}
	if views {
		lo.run(nil, "cluster", "init", "--name", "nsbed", "--owner-key", "owner.pem", "-o", "cluster.json")
		for _, name := range names {
			lo.run(nil, "node", "id", "--data", "data-"+name)
			lo.run(nil, "cluster", "add-member", "--id", name, "--node-data", "data-"+name, "--config", "cluster.json", "--owner-key", "owner.pem")
		}
	}
	return lo
}

// startNode starts `vouch node` on 127.0.0.1 with the flags
// cluster.startNode gives a node in a namespace, but ports of its own.
func (lo *loopbackCluster) startNode(name string, peers []string) {
	c := lo.c
	gp := lo.gossip[name]
	args := []string{"node", "-p", strconv.Itoa(gp), "--name", name,
		"--http", fmt.Sprintf("127.0.0.1:%d", lo.httpPorts[name]), "--enclave", c.rtURL, "--log-level", "debug"}
	if c.views {
		args = append(args, "--cluster-config", "cluster.json", "--data", "data-"+name)
	} else {
		args = append(args, "-f", c.fid, "-fh", c.sum)
	}
	args = append(args, "--bind", fmt.Sprintf("127.0.0.1:%d", gp))
	for _, p := range peers {
		args = append(args, "-n", fmt.Sprintf("127.0.0.1:%d", lo.gossip[p]))
	}
	c.nodes[name].p = lo.startProc(name, args...)
}

// startProc runs `vouch args...` in this namespace, in the cluster's
// directory, as host.start does in a namespace.
func (lo *loopbackCluster) startProc(name string, args ...string) *proc {
	t := lo.c.b.t
	t.Helper()
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = lo.c.b.dir
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := spawn(cmd); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s (loopback):\n%s", p.name, out.String())
		}
	})
	return p
}

// run runs `vouch args...` to completion in the cluster's directory and
// returns its stdout.
func (lo *loopbackCluster) run(env []string, args ...string) string {
	t := lo.c.b.t
	t.Helper()
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = lo.c.b.dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("vouch %s (loopback): %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// freePorts returns k distinct ports from 20000 up, below Linux's
// ephemeral range (so no outgoing connection takes one meanwhile), each
// free on 127.0.0.1 for both TCP and UDP (memberlist uses both) when
// probed, starting at a random offset so concurrent runs rarely probe
// the same ones.
func freePorts(t *testing.T, k int) []int {
	t.Helper()
	var ports []int
	start := 20000 + int(time.Now().UnixNano()%10000)
	for p := start; len(ports) < k && p < 32768; p++ {
		tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		ports = append(ports, p)
	}
	if len(ports) < k {
		t.Fatalf("only %d free ports from %d to 32767, want %d", len(ports), start, k)
	}
	return ports
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rankOf is the nearest-rank percentile p of d, as percentiles prints.
func rankOf(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func stats(d []time.Duration) *seriesStats {
	st := &seriesStats{N: len(d), P50: ms(rankOf(d, 0.50)), P99: ms(rankOf(d, 0.99))}
	for _, x := range d {
		st.Samples = append(st.Samples, ms(x))
	}
	return st
}

// p50Ratio is a's p50 over b's.
func p50Ratio(a, b []time.Duration) float64 {
	r := float64(rankOf(a, 0.50)) / float64(rankOf(b, 0.50))
	return float64(int(r*1000+0.5)) / 1000
}
