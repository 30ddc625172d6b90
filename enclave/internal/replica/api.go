package replica

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
	"github.com/vouch-dev/vouch/internal/raftstore"
)

// ErrNotLeader is returned by the calls only the leader can serve.
var ErrNotLeader = errors.New("replica: not the leader")

// ErrClosed is returned by calls on a node after Shutdown.
var ErrClosed = errors.New("replica: shut down")

// Config configures Open.
type Config struct {
	// ID is this replica's ID (api.ValidReplicaID) and its raft server ID.
	ID string
	// Dir is the raft directory, created 0700: raft.db and snapshots/.
	Dir string
	// Listener accepts raft traffic (TCP). Open takes it over: it is
	// closed by Shutdown, or by Open when Open fails.
	Listener net.Listener
	// Advertise is the HOST:PORT other replicas dial; default
	// Listener.Addr().
	Advertise string
	// Keys are the service keys: StorageKey seals the raft files,
	// TLSAuthority signs the replicas' TLS certificates.
	Keys *servicekeys.Keys
	// FSM is the replicated state machine, owned by the caller.
	FSM raft.FSM
	// Bootstrap makes a new single-server configuration of this replica
	// when the store holds no state yet; ignored otherwise.
	Bootstrap bool
	// Timing tunes failure detection; zero fields take DefaultTiming's.
	Timing Timing
	// Snapshots tunes when snapshots are taken; zero fields take raft's
	// defaults.
	Snapshots Snapshots
	// Logger receives raft's log (raft Info as Debug); nil discards it.
	Logger *slog.Logger
	// Registerer receives the vouch_replica_* metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Timing holds raft's failure-detection timeouts.
type Timing struct {
	// Heartbeat is how long a follower waits without hearing from the
	// leader before it starts an election (raft.Config.HeartbeatTimeout).
	Heartbeat time.Duration
	// Election is how long a candidate waits for votes before it retries
	// (raft.Config.ElectionTimeout).
	Election time.Duration
	// LeaderLease is how long a leader keeps leading without hearing from
	// a quorum (raft.Config.LeaderLeaseTimeout); at most Heartbeat.
	LeaderLease time.Duration
	// CommitTimeout bounds how long the leader delays an AppendEntries
	// with nothing new to send (raft.Config.CommitTimeout).
	CommitTimeout time.Duration
}

// Snapshots tunes raft's snapshots; zero fields take raft's defaults.
type Snapshots struct {
	// Threshold is how many new log entries trigger a snapshot.
	Threshold uint64
	// Trailing is how many log entries are kept after a snapshot.
	Trailing uint64
	// Interval is how often raft checks whether to snapshot.
	Interval time.Duration
}

// Status is a replica's view of the group (GET /v1/replicas).
type Status struct {
	// State is raft's state of this replica: "Leader", "Follower",
	// "Candidate" or "Shutdown".
	State string
	// LeaderID and LeaderAddr name the known leader, empty if none.
	LeaderID   string
	LeaderAddr string
	// LastIndex is the last log index this replica holds.
	LastIndex uint64
	// CommitIndex is the last index this replica knows committed.
	CommitIndex uint64
	// AppliedIndex is the last index applied to the FSM.
	AppliedIndex uint64
	// Term is the current raft term.
	Term uint64
	// Servers is the latest configuration, in raft's order.
	Servers []Server
}

// Server is one member of the configuration.
type Server struct {
	ID      string
	Address string
	// Suffrage is "Voter", "Nonvoter" or "Staging".
	Suffrage string
}

// DefaultTiming detects a dead leader in about a second on a LAN. A
// follower starts an election after 300-600 ms without contact (raft
// randomises Heartbeat up to twice); the leader sends heartbeats every
// Heartbeat/10 = 30 ms, so a loaded host still has ten chances per
// timeout. LeaderLease 150 ms makes a partitioned leader step down before
// any follower can elect another, so it stops serving first.
// CommitTimeout 20 ms bounds the delay of a commit-index update to
// followers.
var DefaultTiming = Timing{
	Heartbeat:     300 * time.Millisecond,
	Election:      300 * time.Millisecond,
	LeaderLease:   150 * time.Millisecond,
	CommitTimeout: 20 * time.Millisecond,
}

// Node is one running replica: raft over the sealed store and the TLS
// transport. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	raft    *raft.Raft
	store   *raftstore.Store
	trans   *raft.NetworkTransport
	leaderC chan bool
	done    chan struct{} // closed by Shutdown
	fwdDone chan struct{} // closed when the notification forwarder ends

	live      atomic.Pointer[raft.Raft] // raft for tamper, set once started
	tampered  atomic.Pointer[error]
	readyTerm atomic.Uint64 // last term whose barrier completed here
	metrics   *metrics
	raftStop  sync.Once
	raftDone  chan struct{} // closed when raft has shut down
	stopOnce  sync.Once
	stopErr   error
}

// Open starts a replica.
func Open(cfg Config) (*Node, error) {
	n, err := open(cfg)
	if err != nil && cfg.Listener != nil {
		cfg.Listener.Close()
	}
	return n, err
}

func open(cfg Config) (*Node, error) {
	switch {
	case !api.ValidReplicaID(cfg.ID):
		return nil, fmt.Errorf("replica: invalid replica ID %q: 1-64 characters of a-z 0-9 . _ -", cfg.ID)
	case cfg.Dir == "":
		return nil, errors.New("replica: no raft directory")
	case cfg.Listener == nil:
		return nil, errors.New("replica: no raft listener")
	case cfg.Keys == nil:
		return nil, errors.New("replica: no service keys")
	case cfg.FSM == nil:
		return nil, errors.New("replica: no FSM")
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listener.Addr().String()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := cfg.Timing
	d := DefaultTiming
	t.Heartbeat = cmp.Or(t.Heartbeat, d.Heartbeat)
	t.Election = cmp.Or(t.Election, d.Election)
	t.LeaderLease = cmp.Or(t.LeaderLease, d.LeaderLease)
	t.CommitTimeout = cmp.Or(t.CommitTimeout, d.CommitTimeout)
	cfg.Timing = t

	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		leaderC:  make(chan bool, 1),
		done:     make(chan struct{}),
		fwdDone:  make(chan struct{}),
		raftDone: make(chan struct{}),
	}
	storeID := cfg.Keys.KeyID() + "/" + cfg.ID
	key := cfg.Keys.StorageKey()
	store, err := raftstore.Open(filepath.Join(cfg.Dir, "raft.db"), key, storeID)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if err := checkLogs(store); err != nil {
		store.Close()
		return nil, fmt.Errorf("replica: %w", err)
	}
	n.store = store
	fail := func(err error) (*Node, error) {
		if n.trans != nil {
			n.trans.Close()
		}
		store.Close()
		if t := n.Tampered(); t != nil && !errors.Is(err, raftstore.ErrTampered) {
			err = fmt.Errorf("%w (%w)", err, t)
		}
		return nil, fmt.Errorf("replica: %w", err)
	}

	hl := hclogFor(cfg.Logger)
	aead, err := snapshotAEAD(key)
	if err != nil {
		return fail(err)
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl) // in Dir/snapshots
	if err != nil {
		return fail(err)
	}
	snaps := &sealedSnapshots{inner: files, aead: aead, storeID: storeID, tamper: n.tamper}

	serverTLS, clientTLS, err := tlsConfigs(cfg.ID, cfg.Keys.TLSAuthority())
	if err != nil {
		return fail(err)
	}
	stream := &tlsStream{
		Listener:  cfg.Listener,
		advertise: advertiseAddr(cfg.Advertise),
		server:    serverTLS,
		client:    clientTLS,
		authority: authorityCert(cfg.Keys.TLSAuthority().Public().(ed25519.PublicKey)),
		idOf:      n.idOf,
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl,
	})

	cache, err := raft.NewLogCache(512, watchedLogs{LogStore: store, tamper: n.tamper})
	if err != nil {
		return fail(err)
	}
	stable := watchedStable{StableStore: store, tamper: n.tamper}

	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = t.Heartbeat
	rc.ElectionTimeout = t.Election
	rc.LeaderLeaseTimeout = t.LeaderLease
	rc.CommitTimeout = t.CommitTimeout
	if s := cfg.Snapshots; s.Threshold > 0 {
		rc.SnapshotThreshold = s.Threshold
	}
	if s := cfg.Snapshots; s.Trailing > 0 {
		rc.TrailingLogs = s.Trailing
	}
	if s := cfg.Snapshots; s.Interval > 0 {
		rc.SnapshotInterval = s.Interval
	}
	rc.NotifyCh = notify
	rc.Logger = hl
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(err)
	}

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(cache, stable, snaps)
		if err != nil {
			return fail(err)
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(cfg.Advertise)}}}
			if err := raft.BootstrapCluster(rc, cache, stable, snaps, n.trans, conf); err != nil {
				return fail(err)
			}
		}
	}

	r, err := newRaft(rc, cfg.FSM, cache, stable, snaps, n.trans)
	if err != nil {
		return fail(err)
	}
	n.raft = r
	n.live.Store(r)
	if err := n.Tampered(); err != nil {
		r.Shutdown().Error()
		return fail(err)
	}

	if cfg.Registerer != nil {
		m, err := newMetrics(n, cfg.Registerer)
		if err != nil {
			r.Shutdown().Error()
			return fail(err)
		}
		n.metrics = m
	}
	go n.forward(notify)
	return n, nil
}

// newRaft is raft.NewRaft, turning its panics (for example on a
// configuration entry that does not decode) into an error.
func newRaft(rc *raft.Config, fsm raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start raft: %v", p)
		}
	}()
	return raft.NewRaft(rc, fsm, logs, stable, snaps, trans)
}

// forward passes raft's leadership notifications to leaderC, keeping
// only the latest when nobody reads, so that raft never waits.
func (n *Node) forward(notify <-chan bool) {
	defer close(n.fwdDone)
	for {
		select {
		case v := <-notify:
			if v {
				n.readyTerm.Store(0)
			}
			select {
			case n.leaderC <- v:
			default:
				select {
				case <-n.leaderC:
				default:
				}
				select {
				case n.leaderC <- v:
				default:
				}
			}
		case <-n.done:
			return
		}
	}
}

// tamper records the first tampering error, counts each, and stops raft:
// a replica whose store lies must neither lead nor vote.
func (n *Node) tamper(err error) {
	if n.tampered.CompareAndSwap(nil, &err) {
		n.cfg.Logger.Error("replica: raft store tampered with; this replica stops and must be re-synced (wipe its raft directory and join again)", "error", err)
		n.stopRaft()
	}
	if n.metrics != nil {
		n.metrics.tampered.Inc()
	}
}

// idOf returns the ID of the server at addr in the latest configuration.
func (n *Node) idOf(addr string) string {
	r := n.live.Load()
	if r == nil {
		return ""
	}
	f := r.GetConfiguration() // answers at once from raft's copy
	if f.Error() != nil {
		return ""
	}
	for _, s := range f.Configuration().Servers {
		if string(s.Address) == addr {
			return string(s.ID)
		}
	}
	return ""
}

// stopRaft starts raft's shutdown once; raftDone closes when it is done.
func (n *Node) stopRaft() {
	r := n.live.Load()
	if r == nil {
		return
	}
	n.raftStop.Do(func() {
		go func() {
			r.Shutdown().Error()
			close(n.raftDone)
		}()
	})
}

// Addr is the advertised raft address.
func (n *Node) Addr() string { return n.cfg.Advertise }

// ID is this replica's ID.
func (n *Node) ID() string { return n.cfg.ID }

// wait waits for f within ctx and maps raft's errors.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrClosed
	}
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("replica: %w", err)
}

// timeout is raft's enqueue timeout for ctx: its deadline, or none.
func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

func (n *Node) closed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Apply appends cmd to the log and returns the FSM's response once it is
// applied here. ErrNotLeader if this replica does not lead (or lost the
// lead before cmd committed: it may still commit under the next leader).
// When ctx ends first, cmd may still be applied later.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	if n.closed() {
		return nil, ErrClosed
	}
	start := time.Now()
	f := n.raft.Apply(cmd, timeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return nil, err
	}
	if n.metrics != nil {
		n.metrics.apply.Observe(time.Since(start).Seconds())
	}
	return f.Response(), nil
}

// ReadIndex is a linearizable read barrier for the leader: when it returns
// nil, every write committed before the call is applied to the FSM here
// and this replica was still the leader after the call began. It takes the
// commit index, confirms leadership with a quorum (VerifyLeader) and waits
// until the applied index reaches it; in a new term it first commits a
// barrier so that the commit index is current. ErrNotLeader if this
// replica does not lead.
func (n *Node) ReadIndex(ctx context.Context) error {
	if n.closed() {
		return ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if term := n.raft.CurrentTerm(); n.readyTerm.Load() != term {
		if err := n.wait(ctx, n.raft.Barrier(timeout(ctx))); err != nil {
			return err
		}
		n.readyTerm.Store(term)
	}
	idx := n.raft.CommitIndex()
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return err
	}
	delay := 100 * time.Microsecond
	for n.raft.AppliedIndex() < idx {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrClosed
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
	return nil
}

// Barrier waits until every entry committed before it is applied here
// (leader only). A new leader runs it before it serves.
func (n *Node) Barrier(ctx context.Context) error {
	if n.closed() {
		return ErrClosed
	}
	term := n.raft.CurrentTerm()
	if err := n.wait(ctx, n.raft.Barrier(timeout(ctx))); err != nil {
		return err
	}
	n.readyTerm.Store(term)
	return nil
}

// IsLeader reports whether this replica is the leader.
func (n *Node) IsLeader() bool { return !n.closed() && n.raft.State() == raft.Leader }

// Term returns the current raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// Leader returns the known leader's ID and raft address, empty if none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// LeadershipChanges reports this replica gaining (true) or losing (false)
// leadership. It holds only the latest change when nobody reads, so a
// reader should act on the current IsLeader rather than count values.
// Shutdown does not close it.
func (n *Node) LeadershipChanges() <-chan bool { return n.leaderC }

// AddVoter adds a voting member, or updates its address (leader only).
// raft's own catch-up brings it up to date.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if !api.ValidReplicaID(id) {
		return fmt.Errorf("replica: invalid replica ID %q", id)
	}
	if addr == "" {
		return errors.New("replica: no raft address")
	}
	if n.closed() {
		return ErrClosed
	}
	return n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout(ctx)))
}

// Remove removes a member (leader only). Removing the leader itself makes
// it step down once the change commits.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.closed() {
		return ErrClosed
	}
	return n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeout(ctx)))
}

// Status returns this replica's view of the group.
func (n *Node) Status() Status {
	lid, laddr := n.Leader()
	s := Status{
		State:        n.raft.State().String(),
		LeaderID:     lid,
		LeaderAddr:   laddr,
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		Term:         n.raft.CurrentTerm(),
	}
	if n.closed() {
		return s
	}
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			s.Servers = append(s.Servers, Server{ID: string(sv.ID), Address: string(sv.Address), Suffrage: sv.Suffrage.String()})
		}
	}
	return s
}

// Tampered returns a non-nil error, wrapping raftstore.ErrTampered, once
// the raft store or a snapshot failed authentication. raft is then
// stopped (the state is "Shutdown"); the replica must stop serving and be
// re-synced.
func (n *Node) Tampered() error {
	if p := n.tampered.Load(); p != nil {
		return *p
	}
	return nil
}

// shutdownWait bounds Shutdown when raft is stuck on a tampered entry.
const shutdownWait = 10 * time.Second

// Shutdown stops raft, closes the transport (and the listener) and the
// store; calling it again does nothing and returns the same error.
func (n *Node) Shutdown() error {
	n.stopOnce.Do(func() {
		close(n.done)
		<-n.fwdDone
		n.stopRaft()
		select {
		case <-n.raftDone:
		case <-time.After(shutdownWait):
			// raft is stuck in a tampered GetLog (watchedLogs): leave it.
			n.stopErr = fmt.Errorf("replica: raft did not stop: %v", n.Tampered())
		}
		if err := n.trans.Close(); err != nil && n.stopErr == nil {
			n.stopErr = err
		}
		if n.metrics != nil {
			n.metrics.unregister()
		}
		if n.stopErr == nil {
			n.stopErr = n.store.Close()
		}
	})
	return n.stopErr
}
