package chaos

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
	"github.com/vouch-dev/vouch/node"
)

// The harness: a runtime (`vouch enclave`, a real process), some nodes as
// real `vouch node` processes (SIGKILLed and restarted), the others in this
// process on chaos Transports (packet faults and partitions; killed with
// Node.Kill, which drops everything without a goodbye, as a crash would).
// Every node writes its event log to DIR/NAME.events.

var vouchBin string

func TestMain(m *testing.M) {
	code := func() int {
		root, err := testbuild.ModuleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		dir, err := os.MkdirTemp("", "vouch-chaos-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		vouchBin = filepath.Join(dir, "vouch")
		build := exec.Command("go", "build", "-o", vouchBin, "./cmd/vouch")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building vouch: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// proc is a running vouch process whose output goes to a file.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out      *os.File
	done     chan struct{}
	mu       sync.Mutex
	expected bool // killed on purpose
}

func (h *harness) startProc(name string, args ...string) (*proc, error) {
	out, err := os.OpenFile(filepath.Join(h.dir, name+".out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "=== %s start: vouch %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = h.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		expected := p.expected
		p.mu.Unlock()
		if !expected {
			h.died(fmt.Sprintf("%s (pid %d) exited on its own: %v", name, cmd.Process.Pid, err))
		}
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// kill SIGKILLs the process and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// member is one node of the cluster.
type member struct {
	name    string
	port    int
	real    bool // a `vouch node` process, else in this process
	dataDir string
	events  string // event log path
	peers   []string

	// real
	proc     *proc
	httpPort int

	// in-process
	node      *node.Node
	transport *Transport
	client    *client.Client
	files     []*os.File
	seed      uint64
	starts    int
	watch     *deathWatch // this start's

	up bool
}

type harness struct {
	t      testing.TB
	dir    string
	mode   string // "views" or "seq"
	ctx    context.Context
	net    *Network
	rtPort int
	rt     *proc
	rtUp   bool
	ref    *api.Ref
	keys   []ed25519.PublicKey
	rs     *replicaSet // the replicated runtime, when there is one (then rt is unused)
	// probeLog receives the SDK's notes from TestChaosReplicas' probes.
	probeLog *slog.Logger
	signed   *cluster.Signed

	members []*member

	mu     sync.Mutex
	deaths []string
}

const clusterName = "chaos"

func (h *harness) died(what string) {
	h.mu.Lock()
	h.deaths = append(h.deaths, what)
	h.mu.Unlock()
	h.t.Logf("UNEXPECTED DEATH: %s", what)
}

// deathWatch watches one start of an in-process node: if the node stops
// and the harness did not kill it, that is an unexpected death, whenever
// it happens (a node that dies on its own and is then "killed" by the
// schedule is still caught).
type deathWatch struct {
	expected atomic.Bool
	once     sync.Once
}

// watchInProcess records the death of n unless w.expected is set first.
func (h *harness) watchInProcess(name string, n *node.Node, w *deathWatch) {
	go func() {
		<-n.Done()
		if !w.expected.Load() {
			w.once.Do(func() { h.died(fmt.Sprintf("in-process node %s stopped on its own", name)) })
		}
	}()
}

func (h *harness) unexpectedDeaths() []string {
	// A node that stopped just now may not have been reported by its
	// watcher yet.
	for _, m := range h.members {
		if m.up && !m.real && m.node != nil && !m.watch.expected.Load() {
			select {
			case <-m.node.Done():
				m.watch.once.Do(func() { h.died(fmt.Sprintf("in-process node %s stopped on its own", m.name)) })
			default:
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.deaths)
}

// newHarness starts the runtime, deploys the election function for mode,
// and prepares (but does not start) n nodes, the first real of them as
// processes. seed picks which nodes are processes and seeds the
// transports.
func newHarness(t testing.TB, dir, mode string, n, real int, seed uint64) *harness {
	return newHarnessReplicas(t, dir, mode, n, real, 0, seed)
}

// newHarnessReplicas is newHarness with a replicated runtime of replicas
// `vouch enclave` processes (see replicas_test.go); 0 runs one runtime.
func newHarnessReplicas(t testing.TB, dir, mode string, n, real, replicas int, seed uint64) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, mode: mode, ctx: context.Background(), net: NewNetwork()}
	ports := freePorts(t, n+real+1+2*replicas, seed)
	h.rtPort = ports[0]
	if replicas > 0 {
		if err := h.startReplicas(ports[n+real+1:]); err != nil {
			t.Fatal(err)
		}
	} else if err := h.startRuntime(); err != nil {
		t.Fatal(err)
	}
	ports = ports[:n+real+1]
	fn := "leader"
	if mode == "views" {
		fn = "election"
	}
	var d struct {
		ID       string `json:"function_id"`
		Checksum string `json:"function_checksum"`
	}
	out, err := h.cli("deploy", "--builtin", fn, "-o", "json", "--allow-simulated")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("deploy output %q: %v", out, err)
	}
	out, err = h.cli("token", d.ID, "--function-checksum", d.Checksum, "-o", "json", "--allow-simulated", "--expiry", "24h")
	if err != nil {
		t.Fatal(err)
	}
	refPath := filepath.Join(dir, "ref.json")
	if err := os.WriteFile(refPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if h.ref, err = api.LoadRef(refPath); err != nil {
		t.Fatal(err)
	}
	if err := h.recordKey(); err != nil {
		t.Fatal(err)
	}

	gossip := ports[1 : n+1]
	httpPorts := ports[n+1:]
	order := permutation(seed, n)
	for i, p := range gossip {
		m := &member{name: strconv.Itoa(p), port: p, dataDir: filepath.Join(dir, "node-"+strconv.Itoa(p)), seed: seed*1000 + uint64(i)}
		m.events = filepath.Join(dir, m.name+".events")
		if order[i] < real {
			m.real = true
			m.httpPort = httpPorts[order[i]]
		}
		for _, q := range gossip {
			if q != p {
				m.peers = append(m.peers, "127.0.0.1:"+strconv.Itoa(q))
			}
		}
		if err := os.MkdirAll(m.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		h.members = append(h.members, m)
	}
	if mode == "views" {
		_, owner, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := cluster.Config{Cluster: clusterName, Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
			LeaseMillis: cluster.DefaultLease.Milliseconds(), ViewTTLMillis: cluster.DefaultViewTTL.Milliseconds()}
		for _, m := range h.members {
			key, _, err := node.LoadIdentity(m.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			c.Members = append(c.Members, cluster.Member{ID: m.name, Key: key.Public().(ed25519.PublicKey)})
		}
		if h.signed, err = cluster.Sign(c, owner); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(h.signed)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cluster.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// cli runs a vouch command against the runtime and returns its stdout.
func (h *harness) cli(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(h.ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vouchBin, args...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "VOUCH_ENCLAVE="+strings.Join(h.rtURLs(), ","))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vouch %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func (h *harness) rtURL() string { return "http://127.0.0.1:" + strconv.Itoa(h.rtPort) }

// rtURLs lists the runtime's URLs: every replica's, or the one runtime's.
func (h *harness) rtURLs() []string {
	if h.rs != nil {
		return h.rs.urls()
	}
	return []string{h.rtURL()}
}

// startRuntime starts `vouch enclave` on the harness's port and data
// directory and waits until it answers, then records its receipt key.
func (h *harness) startRuntime() error {
	// Plain HTTP on loopback: the harness reads the runtime directly, and
	// the transport is not what it tests (TLS: client and cmd/vouch tests).
	p, err := h.startProc("runtime", "enclave", "--listen", "127.0.0.1:"+strconv.Itoa(h.rtPort), "--data", filepath.Join(h.dir, "vouch-data"), "--insecure-http")
	if err != nil {
		return err
	}
	h.rt = p
	err = poll(h.ctx, 30*time.Second, func() error {
		if !p.alive() {
			return errStop{errors.New("the runtime exited at start")}
		}
		resp, err := httpc.Get(h.rtURL() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("runtime did not come up: %w", err)
	}
	h.rtUp = true
	if h.ref != nil {
		return h.recordKey()
	}
	return nil
}

// recordKey attests the runtime and remembers its receipt key for the
// checker.
func (h *harness) recordKey() error {
	c, err := client.NewReplicas(h.rtURLs(), client.Options{Trust: h.ref.Trust})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	id, err := c.Identity(ctx)
	if err != nil {
		return fmt.Errorf("attesting the runtime: %w", err)
	}
	for _, k := range h.keys {
		if k.Equal(id.ReceiptKey) {
			return nil
		}
	}
	if len(h.keys) > 0 {
		h.t.Logf("the runtime's receipt key changed across a restart")
	}
	h.keys = append(h.keys, id.ReceiptKey)
	return nil
}

func (h *harness) killRuntime() {
	h.rt.kill()
	h.rtUp = false
}

// start starts a node that is down.
func (h *harness) start(m *member) error {
	if m.up {
		return nil
	}
	var err error
	if m.real {
		err = h.startReal(m)
	} else {
		err = h.startInProcess(m)
	}
	if err == nil {
		m.up = true
		m.starts++
	}
	return err
}

func (h *harness) startReal(m *member) error {
	args := []string{"node", "-p", strconv.Itoa(m.port), "--ref", filepath.Join(h.dir, "ref.json"),
		"--cluster", clusterName, "--data", m.dataDir, "--event-log", m.events,
		"--http", "127.0.0.1:" + strconv.Itoa(m.httpPort), "--log-level", "info", "--log-format", "json"}
	for _, p := range m.peers {
		args = append(args, "-n", p)
	}
	if h.mode == "views" {
		args = append(args, "--cluster-config", filepath.Join(h.dir, "cluster.json"))
	}
	p, err := h.startProc("node-"+m.name, args...)
	if err != nil {
		return err
	}
	m.proc = p
	return nil
}

func (h *harness) startInProcess(m *member) error {
	tr, err := NewTransport(h.net, "127.0.0.1", m.port, m.seed+uint64(m.starts)<<32)
	if err != nil {
		return fmt.Errorf("node %s: %w", m.name, err)
	}
	out, err := os.OpenFile(filepath.Join(h.dir, "node-"+m.name+".out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tr.Shutdown()
		return err
	}
	events, err := os.OpenFile(m.events, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tr.Shutdown()
		out.Close()
		return err
	}
	fmt.Fprintf(out, "=== %s start in process\n", time.Now().UTC().Format(time.RFC3339Nano))
	// The SDK's notes (failover between replicas) go to the node's log.
	c, err := client.NewReplicas(h.rtURLs(), client.Options{Trust: h.ref.Trust, Logger: slog.New(slog.NewJSONHandler(out, nil))})
	if err != nil {
		tr.Shutdown()
		out.Close()
		events.Close()
		return err
	}
	cfg := node.DefaultLocalConfig()
	cfg.Name, cfg.Cluster, cfg.BindAddr, cfg.BindPort = m.name, clusterName, "127.0.0.1", m.port
	cfg.Peers, cfg.DataDir = m.peers, m.dataDir
	cfg.Runtime = node.NewClientRuntime(c, client.FunctionRef{ID: h.ref.FunctionID, Checksum: h.ref.FunctionChecksum, Token: h.ref.FunctionToken})
	cfg.FunctionID, cfg.Checksum = h.ref.FunctionID, h.ref.FunctionChecksum
	cfg.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.EventLog = events
	cfg.Memberlist.Transport = tr
	if cfg.GossipKey, cfg.GossipExtraKeys, err = h.ref.GossipKeys(); err != nil {
		tr.Shutdown()
		c.Close()
		out.Close()
		events.Close()
		return err
	}
	if h.mode == "views" {
		key, _, err := node.LoadIdentity(m.dataDir)
		if err != nil {
			return err
		}
		cfg.ClusterConfig, cfg.Identity = h.signed, key
	}
	n, err := node.New(*cfg)
	if err == nil {
		err = n.Start(h.ctx)
	}
	if err != nil {
		tr.Shutdown()
		c.Close()
		out.Close()
		events.Close()
		return fmt.Errorf("node %s: %w", m.name, err)
	}
	m.node, m.transport, m.client, m.files = n, tr, c, []*os.File{out, events}
	m.watch = &deathWatch{}
	h.watchInProcess(m.name, n, m.watch)
	return nil
}

// kill stops a node abruptly: SIGKILL for a process, Node.Kill (no leave
// message, sockets closed) in process. It marks the kill in the node's log
// (KilledMsg), which ends a leadership interval the node could not end
// itself.
func (h *harness) kill(m *member) {
	if !m.up {
		return
	}
	m.up = false
	at := time.Now()
	if m.real {
		m.proc.kill()
	} else {
		m.watch.expected.Store(true)
		m.node.Kill()
		m.client.Close()
		for _, f := range m.files {
			f.Close()
		}
		m.node, m.transport, m.client, m.files = nil, nil, nil, nil
	}
	if f, err := os.OpenFile(filepath.Join(h.dir, "node-"+m.name+".out"), os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		b, _ := json.Marshal(map[string]any{"time": at, "level": "INFO", "msg": KilledMsg, "node": m.name})
		f.Write(append(b, '\n'))
		f.Close()
	}
}

// leaderships returns every node's leadership intervals, from the logs.
func (h *harness) leaderships(end time.Time) ([]Interval, error) {
	var all []Interval
	for _, m := range h.members {
		f, err := os.Open(filepath.Join(h.dir, "node-"+m.name+".out"))
		if err != nil {
			return nil, err
		}
		iv, err := Leaderships(m.name, f, end)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, iv...)
	}
	return all, nil
}

// currentLeader returns the leader most live nodes name, if it is up.
func (h *harness) currentLeader() *member {
	votes := map[string]int{}
	best := ""
	for _, m := range h.members {
		if st, err := h.status(m); err == nil && st.Leader != "" {
			votes[st.Leader]++
			if votes[st.Leader] > votes[best] {
				best = st.Leader
			}
		}
	}
	if lm := h.member(best); lm != nil && lm.up {
		return lm
	}
	return nil
}

// stopAll kills every node and the runtime.
func (h *harness) stopAll() {
	for _, m := range h.members {
		h.kill(m)
	}
	if h.rt != nil {
		h.killRuntime()
	}
	if h.rs != nil {
		h.rs.stopAll()
	}
}

// nodeStatus is what the harness reads from a node.
type nodeStatus struct {
	Name     string   `json:"name"`
	Leader   string   `json:"leader"`
	Seq      uint64   `json:"seq"`
	IsLeader bool     `json:"is_leader"`
	View     []string `json:"view"`
	Runtime  struct {
		State string `json:"state"`
	} `json:"runtime"`
}

var httpc = &http.Client{Timeout: 2 * time.Second}

func (h *harness) status(m *member) (*nodeStatus, error) {
	if !m.up {
		return nil, fmt.Errorf("%s is down", m.name)
	}
	if !m.real {
		st := m.node.Status()
		return &nodeStatus{Name: st.Name, Leader: st.Leader, Seq: st.Seq, IsLeader: st.IsLeader, View: st.View}, nil
	}
	var st nodeStatus
	if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/status", m.httpPort), &st); err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	return &st, nil
}

func getJSON(url string, v any) error {
	resp, err := httpc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.200s", resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// agreed checks that every live node holds one leader with one seq or
// term, that the leader is live and knows it leads, and (member-list
// scheme) that it is the highest live node.
func (h *harness) agreed() error {
	var leader string
	var seq uint64
	var live []string
	for _, m := range h.members {
		if !m.up {
			continue
		}
		live = append(live, m.name)
		st, err := h.status(m)
		if err != nil {
			return err
		}
		if st.Leader == "" {
			return fmt.Errorf("%s has no leader (runtime %s)", m.name, st.Runtime.State)
		}
		if leader == "" {
			leader, seq = st.Leader, st.Seq
		} else if st.Leader != leader || st.Seq != seq {
			return fmt.Errorf("%s says leader %s at %d, others %s at %d", m.name, st.Leader, st.Seq, leader, seq)
		}
	}
	if len(live) == 0 {
		return errors.New("no live node")
	}
	lm := h.member(leader)
	if lm == nil || !lm.up {
		return fmt.Errorf("leader %s is not live", leader)
	}
	st, err := h.status(lm)
	if err != nil {
		return err
	}
	if !st.IsLeader {
		return fmt.Errorf("leader %s does not act as leader", leader)
	}
	if h.mode == "seq" {
		if want := highest(live); leader != want {
			return fmt.Errorf("leader %s, but the highest live node is %s", leader, want)
		}
	}
	return nil
}

func (h *harness) member(name string) *member {
	for _, m := range h.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// converge polls until agreed holds for stable in a row, within bound of
// from, and returns how long after from it first held for good. It logs
// why agreement did not hold, whenever the reason changes, when that took
// longer than 2 s.
func (h *harness) converge(from time.Time, bound, stable time.Duration) (time.Duration, error) {
	start := from
	var since time.Time
	var last error
	var trail []string
	for {
		err := h.agreed()
		now := time.Now()
		switch {
		case err != nil:
			if last == nil || err.Error() != last.Error() {
				if len(trail) < 40 {
					trail = append(trail, fmt.Sprintf("%6.2fs %v", now.Sub(start).Seconds(), err))
				}
			}
			since, last = time.Time{}, err
		case since.IsZero():
			since = now
		case now.Sub(since) >= stable:
			if d := since.Sub(start); d > 2*time.Second {
				h.t.Logf("converged after %v; until then:\n%s", d.Round(time.Millisecond), strings.Join(trail, "\n"))
			}
			return since.Sub(start), nil
		}
		if now.Sub(start) > bound+stable {
			if last == nil {
				last = errors.New("agreement did not hold steadily")
			}
			h.t.Logf("no convergence; the reasons over time:\n%s", strings.Join(trail, "\n"))
			return 0, fmt.Errorf("no stable agreement within %v: %w", bound, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *harness) eventFiles() map[string]string {
	files := map[string]string{}
	for _, m := range h.members {
		if _, err := os.Stat(m.events); err == nil {
			files[m.name] = m.events
		}
	}
	return files
}

func (h *harness) trust() Trust {
	return Trust{Keys: h.keys, FunctionID: h.ref.FunctionID, Checksum: h.ref.FunctionChecksum, Cluster: clusterName, Terms: h.mode == "views"}
}

// tail returns the last n lines of a file, for failure reports.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// errStop ends a poll early.
type errStop struct{ error }

// poll calls f until it returns nil, an errStop, or within passes.
func poll(ctx context.Context, within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.error
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct ports free for TCP and UDP on 127.0.0.1,
// below the kernel's ephemeral range (32768 and up on Linux), so that no
// outgoing connection takes the port of a node while it is down. The
// candidates come from seed, so a replay gets the same ports, and so the
// same node names, unless one of them is taken meanwhile (then the next
// candidate, and the names differ: the run's log lists them).
func freePorts(t testing.TB, n int, seed uint64) []int {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(seed, 0x706f727473))
	var ports []int
	for tries := 0; len(ports) < n && tries < 200*n; tries++ {
		p := 20000 + rng.IntN(12000)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("found only %d free ports", len(ports))
	}
	return ports
}

func highest(names []string) string {
	best, bestN := "", -1
	for _, s := range names {
		if n, err := strconv.Atoi(s); err == nil && n > bestN {
			best, bestN = s, n
		}
	}
	return best
}
