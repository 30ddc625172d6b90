package demo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/node"
)

// replicaTiming is the raft timing of the demo's replicas: heartbeat and
// election timeouts of d (RaftTimeout by default: relaxed from the
// library's 300 ms, which is tight for a loaded machine running a whole
// cluster in one process) and a leader lease of half that.
func replicaTiming(d time.Duration) enclave.ReplicaTiming {
	return enclave.ReplicaTiming{Heartbeat: d, Election: d, LeaderLease: d / 2}
}

// MaxReplicas bounds --replicas: raft needs a majority for every write, so
// an odd count from 3 survives the loss of (n-1)/2 replicas, and an even
// count survives no more than the odd count below it.
const MaxReplicas = 7

// checkReplicas says why a replica count is refused, or nil.
func checkReplicas(n int) error {
	if n < 1 || n > MaxReplicas || n%2 == 0 {
		return fmt.Errorf("--replicas %d: want an odd number from 1 to %d (1 is a single runtime; raft needs a majority, so 3 survive the loss of one replica, 5 of two, and an even count survives no more losses than one replica fewer)", n, MaxReplicas)
	}
	return nil
}

// replicaProc is one in-process replica, served on its own loopback API
// and raft ports, with a data directory of its own.
type replicaProc struct {
	id, url, raftAddr string
	srv               *enclave.Server
	ln                *killableListener
	cancel            context.CancelFunc
	served            chan struct{}
	killed            bool
}

// kill stops the replica as a crash would: every API connection is cut,
// and raft stops without handing its leadership over (Close never
// transfers leadership), so the others must detect the silence.
func (r *replicaProc) kill() {
	if r.killed {
		return
	}
	r.killed = true
	r.ln.kill()
	r.srv.Close(context.Background())
	r.cancel()
	<-r.served
}

// startReplicas opens n replicas of one service sharing one simulated
// root under dir: the first bootstraps it, the others join through its
// join endpoint over HTTP. It returns when all are voters.
func startReplicas(ctx context.Context, dir string, n int, timing enclave.ReplicaTiming, logger *slog.Logger) ([]*replicaProc, *attest.Simulated, error) {
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		return nil, nil, err
	}
	root := filepath.Join(dir, "root")
	cache := filepath.Join(dir, "compilation-cache")
	var reps []*replicaProc
	var sim0 *attest.Simulated
	fail := func(err error) ([]*replicaProc, *attest.Simulated, error) {
		for _, r := range reps {
			r.kill()
		}
		return nil, nil, err
	}
	for i := range n {
		id := fmt.Sprintf("r%d", i+1)
		sim, err := attest.NewSimulated(root, pcr0)
		if err != nil {
			return fail(err)
		}
		if sim0 == nil {
			sim0 = sim
		}
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tl.Close()
			return fail(err)
		}
		ln := &killableListener{Listener: tl, conns: map[net.Conn]bool{}}
		url := "https://" + tl.Addr().String()
		cert, err := enclave.GenerateTLSCertificate()
		if err != nil {
			tl.Close()
			rl.Close()
			return fail(err)
		}
		rc := &enclave.ReplicaConfig{ID: id, RaftListener: rl, APIURL: url, Timing: timing}
		if i == 0 {
			rc.Bootstrap = true
		} else {
			rc.Join = reps[0].url
		}
		srv, err := enclave.Open(ctx, enclave.Config{DataDir: filepath.Join(dir, id), CacheDir: cache, Attester: sim,
			Logger: logger.With("component", "enclave", "replica", id), Replica: rc, TLSCertificate: cert})
		if err != nil {
			tl.Close()
			return fail(fmt.Errorf("replica %s: %w", id, err))
		}
		sctx, cancel := context.WithCancel(context.Background())
		r := &replicaProc{id: id, url: url, raftAddr: rl.Addr().String(), srv: srv, ln: ln, cancel: cancel, served: make(chan struct{})}
		go func() { srv.Serve(sctx, ln); close(r.served) }()
		reps = append(reps, r)
		// The next replica joins through the first, which must lead (the
		// first time) and have admitted this one as a voter.
		if err := waitReplicas(ctx, 30*time.Second, func() bool {
			rs, ok := replicaStatus(reps[0].url)
			voters := 0
			for _, m := range rs.Replicas {
				if m.Suffrage == "Voter" {
					voters++
				}
			}
			return ok && rs.Leader != "" && voters == len(reps)
		}); err != nil {
			return fail(fmt.Errorf("replica %s did not become a voter: %w", id, err))
		}
	}
	return reps, sim0, nil
}

// raftLeader returns the live replica that says it leads raft, or nil.
func raftLeader(reps []*replicaProc) *replicaProc {
	for _, r := range reps {
		if r.killed {
			continue
		}
		if rs, ok := replicaStatus(r.url); ok && rs.State == "Leader" && rs.Leader == rs.Self {
			return r
		}
	}
	return nil
}

// statusClient reads the replicas' status for the demo's own display: it
// sends nothing secret and acts on nothing, so it does not pin the
// replicas' attested TLS keys as the nodes' clients do.
var statusClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// replicaStatus reads a replica's GET /v1/replicas.
func replicaStatus(url string) (api.ReplicaSet, bool) {
	var rs api.ReplicaSet
	resp, err := statusClient.Get(url + "/v1/replicas")
	if err != nil {
		return rs, false
	}
	defer resp.Body.Close()
	return rs, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&rs) == nil
}

// waitReplicas polls cond every 10 ms until it holds, for at most within.
func waitReplicas(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: waited %s", ErrNotConverged, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// killableListener remembers the connections it accepted, so that a kill
// can cut them all at once, as a crashed process's would be.
type killableListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	killed bool
}

func (l *killableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = true
	return tc, nil
}

func (l *killableListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.killed = true
	l.Listener.Close()
	for c := range l.conns {
		c.(*trackedConn).Conn.Close()
	}
	clear(l.conns)
}

type trackedConn struct {
	net.Conn
	l    *killableListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// recertifyEvery is how often a member-list leader re-certifies itself
// when the runtime is replicated (the node default is 30 s), so that the
// certificates show the replica failover.
const recertifyEvery = time.Second

// printReplicas prints the replica set as the first replica sees it.
func printReplicas(say func(string, ...any), reps []*replicaProc) {
	lead := leaderID(reps)
	say("  replicas (raft leader %s):", orNone(lead))
	for _, r := range reps {
		mark := ""
		switch {
		case r.killed:
			mark = "  (killed)"
		case r.id == lead:
			mark = "  <- raft leader"
		}
		say("    %-4s API %s  raft %s%s", r.id, r.url, r.raftAddr, mark)
	}
}

// leaderID is the raft leader among the live replicas, or "".
func leaderID(reps []*replicaProc) string {
	if l := raftLeader(reps); l != nil {
		return l.id
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// killReplica kills the raft leader replica, times raft's failover to a
// surviving replica, and waits until every node holds a certificate (or,
// with signed views, the leader a lease) issued since the kill, which only
// the new leader replica can have issued.
func killReplica(ctx context.Context, say func(string, ...any), opts Options, reps []*replicaProc, nodes map[string]*node.Node, names []string, res *Result) error {
	var old *replicaProc
	if err := waitReplicas(ctx, opts.ConvergeWithin, func() bool { old = raftLeader(reps); return old != nil }); err != nil {
		return fmt.Errorf("no raft leader among the replicas: %w", err)
	}
	res.ReplicaLeader = old.id
	// What the nodes hold at the kill: anything newer was issued later.
	var seq uint64
	var leaseAt time.Time
	for _, name := range names {
		l := nodes[name].Leader()
		if l.LeaseUntil.After(leaseAt) {
			leaseAt = l.LeaseUntil
		}
		seq = max(seq, l.Seq)
	}
	say("")
	say("killing the raft leader replica %s (no leadership transfer: its connections are cut and raft stops, as in a crash)", old.id)
	killed := time.Now()
	old.kill()
	var next *replicaProc
	if err := waitReplicas(ctx, opts.ConvergeWithin, func() bool { next = raftLeader(reps); return next != nil }); err != nil {
		return fmt.Errorf("no replica took over raft leadership: %w", err)
	}
	res.ReplicaFailover = time.Since(killed)
	res.NewReplicaLeader = next.id
	say("raft failover: replica %s leads, %s after the kill (heartbeat and election timeouts %s)",
		next.id, res.ReplicaFailover.Round(time.Millisecond), opts.RaftTimeout)
	printReplicas(say, reps)

	// The elections go on: every node accepts a certificate issued after
	// the kill.
	fresh := func(leader string, s uint64) bool {
		if s > seq {
			return true // a later seq or term
		}
		l := nodes[leader].Leader()
		return opts.Views && l.LeaseUntil.After(leaseAt) // a lease renewed since
	}
	deadline := time.Now().Add(opts.ConvergeWithin)
	for {
		leader, s, err := waitAgree(ctx, nodes, names, "", 0, time.Until(deadline))
		if err != nil {
			return err
		}
		if fresh(leader, s) {
			res.Recertified = time.Since(killed)
			res.RecertLeader, res.RecertSeq = leader, s
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	switch {
	case opts.Views && res.RecertSeq > seq:
		say("elections go on: all %d nodes hold leader %s, term %d certified through replica %s, %s after the replica kill",
			len(names), res.RecertLeader, res.RecertSeq, next.id, res.Recertified.Round(time.Millisecond))
		say("  (views submitted before the replica failover are refused; leases count from it)")
	case opts.Views:
		l := nodes[res.RecertLeader].Leader()
		say("elections go on: all %d nodes hold leader %s (term %d), its lease renewed through replica %s until %s, %s after the replica kill",
			len(names), res.RecertLeader, res.RecertSeq, next.id, l.LeaseUntil.Format("15:04:05.000"), res.Recertified.Round(time.Millisecond))
		say("  (views submitted before the replica failover are refused; leases count from it)")
	default:
		say("elections go on: all %d nodes verified a certificate issued through replica %s: leader %s (seq %d), %s after the replica kill",
			len(names), next.id, res.RecertLeader, res.RecertSeq, res.Recertified.Round(time.Millisecond))
		say("  (with replicas, the demo's leader re-certifies itself every %s)", recertifyEvery)
	}
	return nil
}

// RaftTimeout is the replicas' default raft heartbeat and election
// timeout.
const RaftTimeout = 500 * time.Millisecond

// liveFirst lists the replicas' URLs, the live ones first; nil for none.
func liveFirst(reps []*replicaProc) []string {
	var live, dead []string
	for _, r := range reps {
		if r.killed {
			dead = append(dead, r.url)
		} else {
			live = append(live, r.url)
		}
	}
	return append(live, dead...)
}

// retryReplicas runs an owner call, again while no replica could serve it
// (the replicas hold an election: raft may re-elect on a loaded machine),
// for at most within. A single runtime (replicated false) runs it once.
func retryReplicas(ctx context.Context, replicated bool, within time.Duration, call func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := call()
		var re *client.ReplicasError
		var ae *api.Error
		noLeader := errors.As(err, &re) || errors.As(err, &ae) && (ae.Code == api.CodeNoLeader || ae.Code == api.CodeNotLeader)
		if err == nil || !replicated || !noLeader || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
