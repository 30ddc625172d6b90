// Package demo runs vouch end to end in one process: a runtime with
// SIMULATED attestation, the built-in leader function, and a cluster of
// nodes gossiping over real loopback UDP and TCP sockets. It shows the
// cluster agreeing on a verified leader, kills the leader, and times the
// failover. With Options.Replicas the runtime is a replicated one: that
// many replicas in this process, on real loopback HTTP and raft sockets;
// the demo also kills the leader replica and shows the elections going on.
// `vouch demo` is a thin wrapper around Run.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/node"
)

// Options configure a demo run.
type Options struct {
	// Nodes is the cluster size; at least 2. Zero means 5.
	Nodes int
	// Watch keeps the cluster running after the failover until ctx ends.
	Watch bool
	// ConvergeWithin bounds each wait for agreement; zero means 8 s.
	ConvergeWithin time.Duration
	// Out receives the narrative; nil means os.Stdout.
	Out io.Writer
	// Logger receives the runtime's and the nodes' logs; nil discards them.
	Logger *slog.Logger
	// Views runs the signed-views scheme (the stateful election function,
	// terms and leases) instead of the original member-list scheme.
	Views bool
	// Policy is the signed-views election policy; empty means highest.
	Policy string
	// Replicas is the number of runtime replicas: 0 or 1 is a single
	// runtime, else an odd number up to MaxReplicas.
	Replicas int
	// RaftTimeout is the replicas' raft heartbeat and election timeout
	// (their leader lease is half of it); zero means RaftTimeout.
	RaftTimeout time.Duration
}

// Result is what a run measured.
type Result struct {
	Leader     string
	Seq        uint64
	NewLeader  string
	NewSeq     uint64
	Agreement  time.Duration // start of the nodes to agreement
	Failover   time.Duration // leader killed to every survivor holding the new certificate
	RuntimeURL string
	// DashboardURL is the dashboard (and GET /cluster) of a node that
	// outlives the failover: the lowest-named survivor.
	DashboardURL string
	FunctionID   string
	Checksum     string
	NodeNames    []string
	Simulated    bool
	RejectCount  uint64
	// RefFile is the function reference written for more nodes (Watch,
	// member-list scheme only); it is removed when Run returns.
	RefFile string

	// With Replicas > 1:
	ReplicaURLs []string
	// ReplicaLeader is the raft leader replica killed, NewReplicaLeader
	// the one elected in its place, ReplicaFailover the time from the
	// kill to a surviving replica leading raft.
	ReplicaLeader, NewReplicaLeader string
	ReplicaFailover                 time.Duration
	// Recertified is the time from the replica kill until every node
	// holds a certificate (member list) or lease (signed views) issued
	// since, through the new leader replica; RecertLeader and RecertSeq
	// are that certificate's leader and seq (or term).
	Recertified  time.Duration
	RecertLeader string
	RecertSeq    uint64
}

// ErrNotConverged is returned when the cluster does not agree in time.
var ErrNotConverged = errors.New("the cluster did not converge in time")

// Run runs the demo.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 5
	}
	if opts.Nodes < 2 {
		return nil, fmt.Errorf("the demo needs at least 2 nodes, got %d", opts.Nodes)
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if err := checkReplicas(opts.Replicas); err != nil {
		return nil, err
	}
	if opts.RaftTimeout == 0 {
		opts.RaftTimeout = RaftTimeout
	}
	if opts.RaftTimeout < 10*time.Millisecond {
		return nil, fmt.Errorf("raft timeout %s: want at least 10ms", opts.RaftTimeout)
	}
	if opts.ConvergeWithin == 0 {
		opts.ConvergeWithin = 8 * time.Second
	}
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// 1. The runtime, in this process.
	dir, err := os.MkdirTemp("", "vouch-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &Result{Simulated: true}
	var urls []string
	var owner string
	var trust api.Trust
	var reps []*replicaProc
	if opts.Replicas == 1 {
		pcr0, err := attest.ExecutableDigest()
		if err != nil {
			return nil, err
		}
		sim, err := attest.NewSimulated(dir, pcr0)
		if err != nil {
			return nil, err
		}
		cert, err := enclave.GenerateTLSCertificate()
		if err != nil {
			return nil, err
		}
		srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: logger.With("component", "enclave"), TLSCertificate: cert})
		if err != nil {
			return nil, err
		}
		defer srv.Close(context.Background())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		sctx, stopServer := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { srv.Serve(sctx, ln); close(served) }()
		defer func() { stopServer(); <-served }()
		res.RuntimeURL = "https://" + ln.Addr().String()
		urls = []string{res.RuntimeURL}
		say("vouch demo: runtime listening on %s", res.RuntimeURL)
		say("  TLS key sha256 %x: made inside the runtime and bound in its attestation; clients pin it, no CA needed", srv.TLSKeySHA256())
		say("  attestation: SIMULATED (development only; a real deployment runs the runtime in an AWS Nitro Enclave)")
		owner, _ = srv.OwnerToken()
		fp := sim.RootFingerprint()
		trust = api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: fmt.Sprintf("%x", fp[:])}
	} else {
		timing := replicaTiming(opts.RaftTimeout)
		say("vouch demo: starting %d runtime replicas (raft heartbeat and election timeouts %s, leader lease %s)",
			opts.Replicas, timing.Heartbeat, timing.LeaderLease)
		say("  attestation: SIMULATED (development only; a real deployment runs each replica in an AWS Nitro Enclave)")
		var sim *attest.Simulated
		if reps, sim, err = startReplicas(ctx, dir, opts.Replicas, timing, logger); err != nil {
			return nil, err
		}
		defer func() {
			for _, r := range reps {
				r.kill()
			}
		}()
		for _, r := range reps {
			urls = append(urls, r.url)
		}
		res.RuntimeURL, res.ReplicaURLs = urls[0], urls
		owner, _ = reps[0].srv.OwnerToken()
		fp := sim.RootFingerprint()
		// One service identity whichever replica answers: the shared
		// root and the service's receipt key.
		trust = api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: fmt.Sprintf("%x", fp[:]), KeyID: reps[0].srv.KeyID()}
		say("  %s bootstrapped the service; the others joined through its join endpoint (attested, service keys sealed to them)", reps[0].id)
		printReplicas(say, reps)
	}

	// 2. The election function, deployed and checked like any other.
	admin, err := client.NewReplicas(urls, client.Options{OwnerToken: owner, Trust: trust, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	fn := "leader"
	if opts.Views {
		fn = "election"
	}
	b, err := functions.Builtin(fn)
	if err != nil {
		return nil, err
	}
	var d *api.Deployed
	if err := retryReplicas(ctx, len(reps) > 0, opts.ConvergeWithin, func() (err error) { d, err = admin.Deploy(ctx, b, ""); return err }); err != nil {
		return nil, err
	}
	var tok *api.TokenResponse
	if err := retryReplicas(ctx, len(reps) > 0, opts.ConvergeWithin, func() (err error) {
		tok, err = admin.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
		return err
	}); err != nil {
		return nil, err
	}
	res.FunctionID, res.Checksum = d.FunctionID, d.FunctionChecksum
	say("  deployed the built-in %s function: ID %s, checksum %s", fn, d.FunctionID, d.FunctionChecksum)
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}

	// 3. The nodes, each on its own loopback port, named by port as in the
	// original demo, so the highest port leads. They share a fresh gossip
	// key: a packet from outside the cluster can evict no one.
	gossipKey, err := api.GenerateGossipKey()
	if err != nil {
		return nil, err
	}
	gk, err := api.ParseGossipKey(gossipKey)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(opts.Nodes)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*node.Node{}
	var names []string
	var sc *cluster.Signed
	keys := map[int]ed25519.PrivateKey{}
	if opts.Views {
		policy := opts.Policy
		if policy == "" {
			policy = cluster.PolicyHighest
		}
		_, owner, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		c := cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: policy,
			LeaseMillis: cluster.DefaultLease.Milliseconds(), ViewTTLMillis: cluster.DefaultViewTTL.Milliseconds()}
		for _, p := range ports {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			keys[p] = k
			c.Members = append(c.Members, cluster.Member{ID: strconv.Itoa(p), Key: k.Public().(ed25519.PublicKey)})
		}
		if sc, err = cluster.Sign(c, owner); err != nil {
			return nil, err
		}
		say("  signed a closed cluster configuration: %d members, policy %s, lease %s (digest %.16s…)", len(ports), policy, cluster.DefaultLease, sc.Config.Digest())
	}
	defer func() {
		for _, n := range nodes {
			n.Kill()
		}
	}()
	// Each node serves its HTTP endpoints (GET /status, /cluster and the
	// dashboard at /) on a loopback port of its own, as vouch node --http.
	https := map[string]*http.Server{}
	httpURLs := map[string]string{}
	defer func() {
		for _, hs := range https {
			hs.Close()
		}
	}()
	start := time.Now()
	for i, p := range ports {
		cfg := node.DefaultLocalConfig()
		cfg.Name = strconv.Itoa(p)
		cfg.Cluster = "demo"
		cfg.BindPort = p
		cfg.GossipKey = gk
		if i > 0 {
			cfg.Peers = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
		}
		c, err := client.NewReplicas(urls, client.Options{Trust: trust, Logger: logger})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		cfg.Runtime = node.NewClientRuntime(c, ref)
		cfg.FunctionID, cfg.Checksum = ref.ID, ref.Checksum
		cfg.Logger = logger
		if len(reps) > 0 && !opts.Views {
			// The member-list leader re-certifies itself this often, so
			// that the replica failover shows in the certificates.
			cfg.RefreshInterval = recertifyEvery
		}
		if opts.Views {
			cfg.ClusterConfig, cfg.Identity = sc, keys[p]
		}
		n, err := node.New(*cfg)
		if err != nil {
			return nil, err
		}
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
		nodes[cfg.Name] = n
		names = append(names, cfg.Name)
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hs := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(hl)
		https[cfg.Name], httpURLs[cfg.Name] = hs, "http://"+hl.Addr().String()
	}
	res.NodeNames = names
	say("  started %d nodes gossiping on 127.0.0.1 ports %s", len(names), strings.Join(names, " "))

	want := ""
	if !opts.Views {
		want = highest(names)
	}
	want, agreed, err := waitAgree(ctx, nodes, names, want, 0, opts.ConvergeWithin)
	if err != nil {
		return res, err
	}
	res.Agreement = time.Since(start)
	res.Leader, res.Seq = want, agreed
	unit := "seq"
	if opts.Views {
		unit = "term"
	}
	say("")
	say("all %d nodes verified one certificate: leader is %s (%s %d), after %s", len(names), want, unit, agreed, res.Agreement.Round(time.Millisecond))
	if opts.Views {
		say("  the runtime counted a majority of signed views; it issues exactly one certificate per term")
	} else {
		say("  each checked the runtime's signature, the function checksum and the member list before accepting it")
	}

	// The dashboard of a node that survives the kill below.
	for _, name := range names {
		if name != want {
			res.DashboardURL = httpURLs[name] + "/"
			say("  dashboard (node %s, verifies the certificate in your browser): %s", name, res.DashboardURL)
			say("  or in a terminal: vouch status --node %s", httpURLs[name])
			break
		}
	}

	// 4. With replicas: kill the raft leader replica; the elections go on
	// through the new one.
	if len(reps) > 0 {
		if err := killReplica(ctx, say, opts, reps, nodes, names, res); err != nil {
			return res, err
		}
		// The leader node killed below is the one the nodes hold now.
		want, agreed = res.RecertLeader, res.RecertSeq
		res.Leader, res.Seq = want, agreed
	}

	// 5. Kill the leader without a goodbye, and time the failover.
	say("")
	what := "the leader"
	if len(reps) > 0 {
		what = "the leader node"
	}
	say("killing %s %s (no leave message: the others must detect the failure)", what, want)
	killed := time.Now()
	nodes[want].Kill()
	https[want].Close()
	delete(nodes, want)
	survivors := without(names, want)
	next := ""
	if !opts.Views {
		next = highest(survivors)
	}
	next, newSeq, err := waitAgree(ctx, nodes, survivors, next, agreed+1, opts.ConvergeWithin)
	if err != nil {
		return res, err
	}
	res.Failover = time.Since(killed)
	res.NewLeader, res.NewSeq = next, newSeq
	for _, n := range nodes {
		for _, c := range n.CurrentStatus(ctx).Rejections {
			res.RejectCount += c
		}
	}
	say("failover: all %d survivors verified a new certificate: leader is %s (%s %d), %s after the kill",
		len(survivors), next, unit, newSeq, res.Failover.Round(time.Millisecond))
	if len(reps) > 0 {
		say("  certified by the surviving replicas (raft leader %s)", orNone(leaderID(reps)))
	}

	if opts.Watch {
		say("")
		say("dashboard: %s", res.DashboardURL)
		if opts.Views {
			say("watching (Ctrl-C to stop); the signed configuration names exactly these %d nodes, so no other node can join (without signed views, the demo shows how to add nodes)", len(names))
		} else {
			// A reference file a `vouch node` process can use as is: the
			// runtime's URL, the function, its token, the trust policy
			// (SIMULATED allowed, pinned to this runtime's root) and the
			// cluster's gossip key.
			// With replicas: every one, the live ones first.
			refPath := filepath.Join(dir, "leader_election.json")
			enclaveURL, enclaveURLs := res.RuntimeURL, liveFirst(reps)
			if len(enclaveURLs) > 0 {
				enclaveURL = enclaveURLs[0]
			}
			rb, err := json.MarshalIndent(api.Ref{FunctionID: d.FunctionID, FunctionChecksum: d.FunctionChecksum, FunctionToken: tok.FunctionToken,
				EnclaveURL: enclaveURL, EnclaveURLs: enclaveURLs, Trust: trust, GossipKey: gossipKey}, "", "  ")
			if err == nil {
				err = os.WriteFile(refPath, append(rb, '\n'), 0o600)
			}
			if err != nil {
				return res, err
			}
			res.RefFile = refPath
			say("watching (Ctrl-C to stop); start more nodes with:")
			// Join through a survivor: the first port was the leader, killed.
			say("  vouch node -p PORT -n %s --ref %s --cluster demo", strings.Join(survivors, ","), refPath)
			say("  (PORT above %s takes over: the highest port leads)", highest(survivors))
		}
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return res, nil
			case <-t.C:
				for _, name := range survivors {
					l := nodes[name].Leader()
					say("  %s: leader %s (seq %d)", name, l.Leader, l.Seq)
				}
			}
		}
	}
	return res, nil
}

// waitAgree polls until every named node holds one certificate, with a
// seq (or term) of at least min, for want (any leader among them when want
// is empty), and the leader itself knows it leads. It returns the leader and
// the seq.
func waitAgree(ctx context.Context, nodes map[string]*node.Node, names []string, want string, minSeq uint64, within time.Duration) (string, uint64, error) {
	deadline := time.Now().Add(within)
	for {
		var seq uint64
		leader := want
		ok := true
		for i, name := range names {
			l := nodes[name].Leader()
			if leader == "" {
				leader = l.Leader
			}
			if l.Leader == "" || l.Leader != leader || l.Seq < minSeq || (i > 0 && l.Seq != seq) {
				ok = false
				break
			}
			seq = l.Seq
		}
		if ok && nodes[leader] != nil && nodes[leader].Leader().Self {
			return leader, seq, nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, name := range names {
				st := nodes[name].Status()
				fmt.Fprintf(&b, "\n  %s: leader %q seq %d view %v runtime %s %s", name, st.Leader, st.Seq, st.View, st.Runtime.State, st.Runtime.LastError)
			}
			what := "one leader"
			if want != "" {
				what = "leader " + want
			}
			return "", 0, fmt.Errorf("%w: waited %s for every node to accept %s:%s", ErrNotConverged, within, what, b.String())
		}
		select {
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func highest(names []string) string {
	s := append([]string(nil), names...)
	sort.Slice(s, func(i, j int) bool {
		a, _ := strconv.Atoi(s[i])
		b, _ := strconv.Atoi(s[j])
		return a < b
	})
	return s[len(s)-1]
}

func without(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

// freePorts finds n ports free for both UDP and TCP on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n && tries < 100*n; tries++ {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d free ports", len(ports))
	}
	return ports, nil
}
