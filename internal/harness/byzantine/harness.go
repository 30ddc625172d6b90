package byzantine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
	"github.com/vouch-dev/vouch/node"
)

// Options configure a run.
type Options struct {
	// Honest and Liars are the numbers of honest and Byzantine members;
	// defaults 5 and 2. Liars must be fewer than half of all members, and
	// the honest members left after the leader is killed must still be
	// more than half.
	Honest, Liars int
	// Policy is the cluster's election policy; default "fair".
	Policy string
	// Duration is the length of the steady, expensive, flood and after
	// phases together (40/20/20/20 %); default 12 s. Setup, failover and
	// convergence come on top.
	Duration time.Duration
	// Seed makes keys, garbage and the liars' choices reproducible.
	Seed uint64
	// Attacks to run; nil means AllAttacks.
	Attacks []Attack
	// RateLimit is the runtime's limit of runs per second per function
	// token; default 20 (honest nodes need about 4 to 10).
	RateLimit float64
	// FailoverBound bounds the time from killing the leader to a new term
	// with a live leader that every survivor holds; ConvergeBound the time
	// from the end of the attacks to agreement. Default 10 s each.
	FailoverBound, ConvergeBound time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
	// NodeLog, if set, receives the honest nodes' logs (debug level).
	NodeLog io.Writer
	// FloodWorkers is how many concurrent submitters each liar floods
	// with; default 2.
	FloodWorkers int
	// SharedToken gives every member the same function token, as a
	// deployment with one token for the whole cluster would: then the
	// runtime's per-token rate limit no longer isolates a flooder. For
	// experiments; the default is one token per member.
	SharedToken bool
}

func (o Options) withDefaults() Options {
	if o.Honest == 0 {
		o.Honest = 5
	}
	if o.Liars == 0 {
		o.Liars = 2
	}
	if o.Policy == "" {
		o.Policy = cluster.PolicyFair
	}
	if o.Duration <= 0 {
		o.Duration = 12 * time.Second
	}
	if o.Attacks == nil {
		o.Attacks = AllAttacks
	}
	if o.RateLimit == 0 {
		o.RateLimit = 20
	}
	if o.FloodWorkers <= 0 {
		o.FloodWorkers = 2
	}
	if o.FailoverBound <= 0 {
		o.FailoverBound = 10 * time.Second
	}
	if o.ConvergeBound <= 0 {
		o.ConvergeBound = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

func (o Options) check() error {
	n := o.Honest + o.Liars
	switch {
	case o.Honest < 2 || o.Liars < 1:
		return fmt.Errorf("byzantine: need at least 2 honest members and 1 liar, have %d and %d", o.Honest, o.Liars)
	case 2*o.Liars >= n:
		return fmt.Errorf("byzantine: %d liars of %d members is not a minority (f < N/2)", o.Liars, n)
	case 2*(o.Honest-1) <= n:
		return fmt.Errorf("byzantine: after the leader is killed, %d honest of %d members are not a majority: nobody could be elected", o.Honest-1, n)
	case o.RateLimit < 0:
		return errors.New("byzantine: the harness needs a rate limit")
	}
	return nil
}

const (
	clusterName = "byz"
	leaseMs     = 1000
	viewTTLMs   = 1000
	// livenessBound is how long the harness waits for a leader at all
	// (at setup, after the kill, after the attacks): generous, so that
	// only a cluster that does not elect fails, not a slow machine.
	livenessBound = 60 * time.Second
)

// harness is one run's state.
type harness struct {
	o      Options
	tb     testing.TB
	rep    *Report
	rng    *rand.Rand
	rngMu  sync.Mutex
	env    *enclavetest.Env
	owner  *client.Client
	ref    client.FunctionRef // the election function, without a token
	other  client.FunctionRef // another function, for genuine receipts that do not fit
	trust  election.Trust
	config *cluster.Signed
	// gossipKey is the cluster's gossip key, which the liars (members)
	// hold too.
	gossipKey []byte
	token     func(client.FunctionRef) (client.FunctionRef, error) // mints a function token
	// maxInput is the election function's input limit (its vouch.json).
	maxInput int

	honest []*honestNode
	liars  []*liar
	byName map[string]*honestNode

	// captured holds genuine certificates the liars obtained, by term.
	capMu    sync.Mutex
	captured map[uint64][]*election.Certificate
	// runtimeTerm is the highest term any answer of the runtime named.
	runtimeTerm   uint64
	runtimeLeader string

	actMu  sync.Mutex
	acting []acting

	// corpseGroup runs the corpse attack from the kill to the end of
	// the attacks; killedTerm is the term of the killed leader.
	corpseGroup *group
	killedTerm  uint64
}

// acting is one stretch of leadership of an honest node, as its
// OnStartedLeading context saw it.
type acting struct {
	node       string
	term       uint64
	start, end time.Time
}

// honestNode is an honest member and what the harness watches of it.
type honestNode struct {
	name   string
	key    ed25519.PrivateKey
	n      *node.Node
	rt     *countingRuntime
	reg    *prometheus.Registry
	events syncBuffer
	dead   bool
}

// syncBuffer is an event log that the harness reads while the node writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// countingRuntime wraps an honest node's runtime client: it counts the
// node's submissions and keeps the last one it sent, which the liars
// replay (as an eavesdropper on the node's connection could).
type countingRuntime struct {
	node.Runtime
	h    *harness
	name string

	mu       sync.Mutex
	stats    SubmitStats
	lastOK   time.Time
	lastBody []byte
}

func (r *countingRuntime) Submit(ctx context.Context, input []byte) (*election.Certificate, error) {
	start := time.Now()
	cert, err := r.Runtime.Submit(ctx, input)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.MaxLatency = max(r.stats.MaxLatency, now.Sub(start))
	var ae *api.Error
	switch {
	case err == nil:
		r.stats.OK++
		if !r.lastOK.IsZero() {
			r.stats.MaxGap = max(r.stats.MaxGap, now.Sub(r.lastOK))
		}
		r.lastOK = now
		r.lastBody = input
		r.h.sawCert(cert, false)
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		r.stats.RateLimited++
	case node.IsLeaseRefusal(err):
		r.stats.LeaseRefused++
		r.lastBody = input
	default:
		r.stats.Failed++
	}
	return cert, err
}

// window returns the stats so far and starts a new window.
func (r *countingRuntime) window() SubmitStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Node = r.name
	r.stats = SubmitStats{}
	r.lastOK = time.Time{}
	return s
}

func (r *countingRuntime) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastBody
}

// Run runs the honest nodes and the liars and checks the properties. It
// returns an error only when the harness itself cannot run; broken
// properties are in the report (Report.OK). tb provides temporary
// directories and cleanup for the runtime.
func Run(ctx context.Context, tb testing.TB, o Options) (*Report, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	began := time.Now()
	h := newHarness(tb, o)
	defer h.close()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	h.logf("setup took %v", time.Since(began).Round(time.Millisecond))
	steps := []struct {
		name string
		f    func(context.Context) error
	}{{"steady", h.steady}, {"expensive", h.expensive}, {"flood", h.flood}, {"corpse", h.corpse}, {"after", h.after}, {"converge", h.converge}}
	for _, step := range steps {
		t0 := time.Now()
		if err := step.f(ctx); err != nil {
			return h.rep, err
		}
		h.logf("%s phase took %v", step.name, time.Since(t0).Round(time.Millisecond))
	}
	h.finish()
	h.rep.Wall = time.Since(began)
	return h.rep, nil
}

func newHarness(tb testing.TB, o Options) *harness {
	h := &harness{o: o, tb: tb, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		byName: map[string]*honestNode{}, captured: map[uint64][]*election.Certificate{}, gossipKey: make([]byte, 32)}
	if _, err := crand.Read(h.gossipKey); err != nil {
		tb.Fatal(err)
	}
	h.rep = &Report{Options: o, Majority: (o.Honest+o.Liars)/2 + 1}
	for _, a := range o.Attacks {
		if h.rep.Attack(a) == nil {
			h.rep.Attacks = append(h.rep.Attacks, &AttackReport{Attack: a, RuntimeRejected: map[string]uint64{}, NodeRejected: map[string]uint64{}})
		}
	}
	return h
}

func (h *harness) enabled(a Attack) bool { return slices.Contains(h.o.Attacks, a) }

func (h *harness) logf(format string, args ...any) { h.o.Logf(format, args...) }

// random returns n pseudo-random bytes from the seeded generator.
func (h *harness) random(n int) []byte {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], h.rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func (h *harness) intN(n int) int {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.IntN(n)
}

func (h *harness) newKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(h.random(ed25519.SeedSize))
}

func (h *harness) setup(ctx context.Context) error {
	if err := h.prepare(ctx); err != nil {
		return err
	}
	if err := h.startHonest(ctx); err != nil {
		return err
	}
	leader, term, took, err := h.waitAgree(ctx, 0, livenessBound)
	if err != nil {
		return fmt.Errorf("no initial leader: %w", err)
	}
	h.rep.InitialLeader, h.rep.InitialTerm = leader, term
	h.logf("initial leader %s, term %d, after %v", leader, term, took.Round(time.Millisecond))
	return nil
}

// prepare starts the runtime, deploys the functions, makes the keys, the
// configuration and the liars.
func (h *harness) prepare(ctx context.Context) error {
	h.env = enclavetest.Start(h.tb, enclavetest.WithRateLimit(h.o.RateLimit))
	// Deploying compiles the 4 MB election module: 2 s normally, 20 to
	// 50 s under the race detector on a loaded machine.
	h.owner = h.env.Client(client.Options{HTTPClient: &http.Client{Timeout: 5 * time.Minute}})
	deploy := func(name string, b *bundle.Bundle) (client.FunctionRef, error) {
		t0 := time.Now()
		d, err := h.owner.Deploy(ctx, b, "")
		if err != nil {
			return client.FunctionRef{}, fmt.Errorf("deploying %s: %w", name, err)
		}
		h.logf("deployed %s in %v", name, time.Since(t0).Round(time.Millisecond))
		return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum}, nil
	}
	t0 := time.Now()
	b, err := functions.Builtin("election")
	if err != nil {
		return err
	}
	h.maxInput = int(b.Manifest.Limits.MaxInputBytes)
	if h.ref, err = deploy("election", b); err != nil {
		return err
	}
	// Another function the liars may run: a tiny module that exits 0, so
	// that its receipts are genuine but for another checksum.
	if b, err = bundle.New(wasmtest.Exit(0), []byte(`{"name":"other","allow_plaintext_input":true}`)); err != nil {
		return err
	}
	if h.other, err = deploy("other", b); err != nil {
		return err
	}
	h.logf("runtime started, functions deployed in %v", time.Since(t0).Round(time.Millisecond))
	id, err := h.owner.Identity(ctx)
	if err != nil {
		return err
	}
	h.trust = election.Trust{Key: id.ReceiptKey, FunctionID: h.ref.ID, Checksum: h.ref.Checksum, Cluster: clusterName}

	ownerKey := h.newKey()
	cfg := cluster.Config{Cluster: clusterName, Version: 1, Owner: ownerKey.Public().(ed25519.PublicKey), Policy: h.o.Policy,
		LeaseMillis: leaseMs, ViewTTLMillis: viewTTLMs}
	for i := range h.o.Honest {
		hn := &honestNode{name: fmt.Sprintf("h%d", i+1), key: h.newKey(), reg: prometheus.NewRegistry()}
		h.honest = append(h.honest, hn)
		h.byName[hn.name] = hn
		h.rep.Honest = append(h.rep.Honest, hn.name)
		cfg.Members = append(cfg.Members, cluster.Member{ID: hn.name, Key: hn.key.Public().(ed25519.PublicKey)})
	}
	for i := range h.o.Liars {
		l := &liar{h: h, name: fmt.Sprintf("x%d", i+1), key: h.newKey()}
		h.liars = append(h.liars, l)
		h.rep.Liars = append(h.rep.Liars, l.name)
		cfg.Members = append(cfg.Members, cluster.Member{ID: l.name, Key: l.key.Public().(ed25519.PublicKey)})
	}
	if h.config, err = cluster.Sign(cfg, ownerKey); err != nil {
		return err
	}
	shared := ""
	token := func(ref client.FunctionRef) (client.FunctionRef, error) {
		if h.o.SharedToken && ref.ID == h.ref.ID && shared != "" {
			ref.Token = shared
			return ref, nil
		}
		tok, err := h.owner.MintToken(ctx, ref.ID, ref.Checksum, time.Hour)
		if err != nil {
			return ref, err
		}
		ref.Token = tok.FunctionToken
		if ref.ID == h.ref.ID {
			shared = tok.FunctionToken
		}
		return ref, nil
	}
	// One token per member: the runtime's rate limit is per token.
	for _, l := range h.liars {
		if l.ref, err = token(h.ref); err != nil {
			return err
		}
		if l.otherRef, err = token(h.other); err != nil {
			return err
		}
		if err := l.start(); err != nil {
			return err
		}
	}
	h.token = token
	return nil
}

// startHonest starts the honest nodes, each with its own token.
func (h *harness) startHonest(ctx context.Context) error {
	var first string
	for _, hn := range h.honest {
		ref, err := h.token(h.ref)
		if err != nil {
			return err
		}
		if err := h.startNode(ctx, hn, ref, first); err != nil {
			return err
		}
		if first == "" {
			first = hn.n.Addr()
		}
	}
	return nil
}

func (h *harness) startNode(ctx context.Context, hn *honestNode, ref client.FunctionRef, peer string) error {
	cfg := node.DefaultLocalConfig()
	cfg.Name, cfg.Cluster, cfg.BindPort = hn.name, clusterName, 0
	cfg.GossipKey = h.gossipKey
	if raceDetector {
		// Under the race detector, give the failure detector the slack
		// of a slow machine: a false suspicion is not what is tested
		// here (and its refutation used to trip a data race between
		// memberlist's in-place node updates and node's status page,
		// hashicorp/memberlist#306).
		cfg.Memberlist.ProbeInterval = 500 * time.Millisecond
		cfg.Memberlist.ProbeTimeout = 400 * time.Millisecond
		cfg.Memberlist.SuspicionMult = 4
	}
	if peer != "" {
		cfg.Peers = []string{peer}
	}
	hn.rt = &countingRuntime{Runtime: node.NewClientRuntime(h.env.Client(client.Options{}), ref), h: h, name: hn.name}
	cfg.Runtime = hn.rt
	cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
	cfg.ClusterConfig, cfg.Identity = h.config, hn.key
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if h.o.NodeLog != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(h.o.NodeLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.EventLog = &hn.events
	cfg.Registerer = hn.reg
	name := hn.name
	cfg.OnStartedLeading = func(ctx context.Context, term uint64) {
		start := time.Now()
		<-ctx.Done()
		end := time.Now()
		// A lease that ran out ended the leadership at its deadline: this
		// goroutine may see it later on a loaded machine, and anything
		// the leader did under ctx after the deadline failed.
		if dl, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) && dl.Before(end) {
			end = dl
		}
		h.actMu.Lock()
		h.acting = append(h.acting, acting{node: name, term: term, start: start, end: end})
		h.actMu.Unlock()
	}
	n, err := node.New(*cfg)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	hn.n = n
	return nil
}

func (h *harness) close() {
	h.corpseGroup.halt()
	for _, hn := range h.honest {
		if hn.n != nil {
			hn.n.Kill()
		}
	}
	for _, l := range h.liars {
		l.stop()
	}
}

func (h *harness) live() []*honestNode {
	var out []*honestNode
	for _, hn := range h.honest {
		if !hn.dead {
			out = append(out, hn)
		}
	}
	return out
}

// waitAgree waits until every live honest node holds the same term, at
// least minTerm+1, whose leader is a live honest node that acts as
// leader.
func (h *harness) waitAgree(ctx context.Context, minTerm uint64, within time.Duration) (string, uint64, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(within)
	for {
		leader, term, ok := h.agreed()
		if ok && term > minTerm {
			return leader, term, time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return "", 0, time.Since(start), fmt.Errorf("no agreement on a term above %d within %v: %s", minTerm, within, h.describe())
		}
		select {
		case <-ctx.Done():
			return "", 0, time.Since(start), ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (h *harness) agreed() (string, uint64, bool) {
	var leader string
	var term uint64
	for i, hn := range h.live() {
		l := hn.n.Leader()
		if l.Seq == 0 || (i > 0 && (l.Seq != term || l.Leader != leader)) {
			return "", 0, false
		}
		leader, term = l.Leader, l.Seq
	}
	ln := h.byName[leader]
	if ln == nil || ln.dead || !ln.n.Leader().Self {
		return "", 0, false
	}
	return leader, term, true
}

func (h *harness) describe() string {
	var parts []string
	for _, hn := range h.live() {
		st := hn.n.Status()
		parts = append(parts, fmt.Sprintf("%s: leader %q term %d leading %v view %v runtime %s", hn.name, st.Leader, st.Seq, st.IsLeader, st.View, st.Runtime.State))
	}
	h.capMu.Lock()
	parts = append(parts, fmt.Sprintf("runtime: term %d leader %q", h.runtimeTerm, h.runtimeLeader))
	h.capMu.Unlock()
	return strings.Join(parts, "; ")
}

// sawCert records a certificate the runtime issued; liars keep it for
// replays.
func (h *harness) sawCert(cert *election.Certificate, keep bool) *election.TermOutcome {
	if cert == nil {
		return nil
	}
	var o election.TermOutcome
	if json.Unmarshal(cert.Output, &o) != nil || o.Cluster != clusterName {
		return nil
	}
	h.capMu.Lock()
	defer h.capMu.Unlock()
	if o.Term > h.runtimeTerm {
		h.runtimeTerm, h.runtimeLeader = o.Term, o.Leader
	}
	if keep && o.Term > 0 && len(h.captured[o.Term]) < 8 {
		h.captured[o.Term] = append(h.captured[o.Term], cert)
	}
	return &o
}

func (h *harness) runtimeHeld() (uint64, string) {
	h.capMu.Lock()
	defer h.capMu.Unlock()
	return h.runtimeTerm, h.runtimeLeader
}

func (h *harness) capturedCerts(term uint64) []*election.Certificate {
	h.capMu.Lock()
	defer h.capMu.Unlock()
	return slices.Clone(h.captured[term])
}

// nodeCounters sums the honest nodes' rejection and drop counters.
func (h *harness) nodeCounters() map[string]uint64 {
	out := map[string]uint64{}
	for _, hn := range h.honest {
		mfs, err := hn.reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			prefix := ""
			switch mf.GetName() {
			case "vouch_node_certificates_rejected_total":
			case "vouch_node_messages_dropped_total":
				prefix = "dropped:"
			default:
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "reason" {
						out[prefix+lp.GetValue()] += uint64(m.GetCounter().GetValue())
					}
				}
			}
		}
	}
	// A malformed certificate is counted both as dropped and as rejected.
	if v := out["dropped:malformed"]; v > 0 && out["malformed"] >= v {
		out["malformed"] -= v
	}
	return out
}

func total(m map[string]uint64) uint64 {
	var t uint64
	for _, v := range m {
		t += v
	}
	return t
}

// measure runs a burst of messages to the honest nodes and attributes the
// change of their counters to attack a. burst returns how many messages it
// delivered and how many of them the nodes must refuse; measure waits
// until they have, or their counters stop moving.
func (h *harness) measure(ctx context.Context, a Attack, burst func() (sent, want uint64)) {
	before := h.nodeCounters()
	sent, want := burst()
	deadline := time.Now().Add(5 * time.Second)
	var after map[string]uint64
	last, stableSince := uint64(0), time.Now()
	for {
		after = h.nodeCounters()
		got := total(after) - total(before)
		if got != last {
			last, stableSince = got, time.Now()
		}
		if (want > 0 && got >= want) || (want == 0 && time.Since(stableSince) > 300*time.Millisecond) ||
			time.Since(stableSince) > 1500*time.Millisecond || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var refused uint64
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			h.rep.count(a, "node:"+k, d)
			refused += d
		}
	}
	if refused < sent {
		h.rep.count(a, "node:uncounted", sent-refused)
	}
}

// pause waits for d unless the run is cancelled.
func pause(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// group is a set of attack loops that stop together.
type group struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newGroup() *group { return &group{stop: make(chan struct{})} }

// halt stops the group's loops and waits for them. It is idempotent.
func (g *group) halt() {
	if g == nil {
		return
	}
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.wg.Wait()
}

// loop runs f every interval until the group halts.
func (g *group) loop(ctx context.Context, interval time.Duration, f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			f()
			if !pause(ctx, g.stop, interval) {
				return
			}
		}
	}()
}

// overlaps returns the overlapping stretches of leadership of two
// different honest nodes.
func (h *harness) overlaps() ([]string, int) {
	h.actMu.Lock()
	acts := slices.Clone(h.acting)
	h.actMu.Unlock()
	sort.Slice(acts, func(i, j int) bool { return acts[i].start.Before(acts[j].start) })
	var out []string
	for i := range acts {
		for j := i + 1; j < len(acts); j++ {
			a, b := acts[i], acts[j]
			if a.node != b.node && b.start.Before(a.end) {
				out = append(out, fmt.Sprintf("%s (term %d) and %s (term %d) both acted for %v", a.node, a.term, b.node, b.term, a.end.Sub(b.start).Round(time.Millisecond)))
			}
		}
	}
	return out, len(acts)
}
