package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/node/internal/nodecore"
)

// ErrStopped is returned by methods of a node that has shut down.
var ErrStopped = errors.New("node stopped")

// ErrLeaveTimeout is wrapped by the error Shutdown returns when memberlist
// could not confirm that its leave message went out in time, as happens
// when the peers stop at the same moment. The node has stopped all the
// same; peers that missed the leave see a failure instead.
var ErrLeaveTimeout = errors.New("leave not confirmed")

// Node is a running cluster member. Its methods are safe for concurrent
// use. One goroutine, the loop, owns the decision machine (package
// nodecore) and carries out what it decides; everything else talks to it
// through channels.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	metrics *metrics
	events  *eventLog

	meta    []byte // Config.Meta encoded, for memberlist's NodeMeta
	inbox   chan input
	stop    chan struct{}
	done    chan struct{}
	leaveCh chan struct{} // closed when a graceful leave starts
	started atomic.Bool
	closing sync.Once
	leaving atomic.Bool

	// Owned by the loop goroutine.
	sm         *nodecore.Machine
	core       *election.Core           // the machine's, read for status
	term       *election.TermCore       // the machine's (signed views only), read for status
	rng        *rand.Rand               // seeded once; the machine's jitter and the relay's shuffle
	wake       time.Time                // when the machine wants its next Tick
	memberVer  uint64                   // the membership version the machine has
	lead       *leaseCtx                // the current leadership's context; nil when not leading
	token      uint64                   // the fencing token of the current leadership
	watchStop  map[string]chan struct{} // the leader watch's pingers, by member
	batch      []input                  // the inputs drain took, reused
	viewInputs []nodecore.Input         // a run of membership changes for Steps, reused

	status  atomic.Pointer[Status]
	leadPub atomic.Pointer[leaseCtx] // the latest leadership's context, for readers outside the loop
	members memberSet
	// The snapshot's key and age (publishDue), and what the key holds,
	// copied from the machine after every step: whether it leads (signed
	// views), changes of the election view, leader-watch verdicts.
	pubKey                publishKey
	pubAt                 time.Time
	memStat               []MemberStatus // the snapshot's member list, rebuilt as memberStatusEvery says
	memStatKey            memberStatusKey
	memStatAt             time.Time
	leading               bool
	viewChanges, verdicts uint64
	notifyDue             bool // the leadership changed: deliver to subscribers

	// The leader watch's pingers, stopped before memberlist shuts down.
	pingMu     sync.Mutex
	pingClosed bool
	pingQuit   chan struct{}
	pingers    sync.WaitGroup

	subMu sync.Mutex
	subs  map[chan Leadership]struct{}

	// actDone is closed when the latest OnStartedLeading callback has
	// returned: a resignation or a leave waits for it before it lets
	// others lead.
	actMu   sync.Mutex
	actDone chan struct{}
}

// input is one event for the loop.
type input struct {
	kind     inputKind
	cert     *election.Certificate
	err      error
	from     string
	key      ed25519.PublicKey
	reply    chan struct{}
	errc     chan error // inStepDown, inResign: the loop's answer, once handled
	departed string     // for a member that left the view: "dead"
	sentAt   time.Time  // when a view submission or a watch ping was sent
	moved    bool       // inPresented: the runtime moved past the proof
}

type inputKind int

const (
	inView inputKind = iota
	inCert
	inElected
	inSync
	inGoodbye
	inPing      // a suspect's ping outcome
	inWatch     // a leader-watch ping's outcome
	inPresented // the runtime's answer to a proof of rollback
	inResigned  // a peer announced its resignation
	inStepDown  // Resign, step 1: stop leading now
	inResign    // Resign, step 2: leave the election for the hold
	inAttested  // an observer's attestation: key, err
)

// ErrNoGossipKey is returned by New for a config with neither a GossipKey
// nor InsecureGossip.
var ErrNoGossipKey = errors.New("node: no gossip key: set Config.GossipKey (the cluster's), or Config.InsecureGossip to let anyone who can reach the gossip port declare members dead")

// checkGossipKeys requires a valid gossip key, or InsecureGossip and no key.
// Errors never show a key.
func checkGossipKeys(cfg *Config) error {
	if cfg.InsecureGossip {
		if len(cfg.GossipKey) > 0 || len(cfg.GossipExtraKeys) > 0 {
			return errors.New("node: InsecureGossip is set together with a gossip key; set one or the other")
		}
		return nil
	}
	if len(cfg.GossipKey) == 0 {
		return ErrNoGossipKey
	}
	if err := memberlist.ValidateKey(cfg.GossipKey); err != nil {
		return fmt.Errorf("gossip key (%d bytes): %w", len(cfg.GossipKey), err)
	}
	for i, k := range cfg.GossipExtraKeys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("extra gossip key %d (%d bytes): %w", i+1, len(k), err)
		}
	}
	return nil
}

// ErrNoRuntime is returned by New for a config without a Runtime.
var ErrNoRuntime = errors.New("node: no runtime: set Config.Runtime (NewClientRuntime reaches a vouch runtime)")

// ErrNoFunction is returned by New for a config that does not name the
// election function: Config.FunctionID or Config.Checksum is empty.
var ErrNoFunction = errors.New("node: no election function: set Config.FunctionID and Config.Checksum")

// New validates cfg and creates a node. Start joins the cluster.
func New(cfg Config) (*Node, error) {
	if cfg.Memberlist == nil {
		def, err := ConfigFor(cfg.Profile)
		if err != nil {
			return nil, err
		}
		cfg.Memberlist = def.Memberlist
	}
	if err := members.ValidID(cfg.Name); err != nil {
		return nil, fmt.Errorf("node name: %w", err)
	}
	if err := members.ValidCluster(cfg.Cluster); err != nil {
		return nil, err
	}
	if err := checkGossipKeys(&cfg); err != nil {
		return nil, err
	}
	if _, ok := cfg.Meta[ObserverMetaKey]; ok {
		return nil, fmt.Errorf("node metadata key %q is reserved: set Config.Observer instead", ObserverMetaKey)
	}
	if cfg.Observer {
		cfg.Meta = observerMeta(cfg.Meta)
		cfg.LeaderPingInterval, cfg.LeaderTimeout = 0, 0 // no pings at the leader
		cfg.FloorWait, cfg.DataDir = 0, ""               // it never leads, and keeps nothing
	}
	meta, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	if cfg.Runtime == nil {
		return nil, ErrNoRuntime
	}
	if cfg.FunctionID == "" || cfg.Checksum == "" {
		return nil, ErrNoFunction
	}
	sum, err := api.NormalizeChecksum(cfg.Checksum)
	if err != nil {
		return nil, fmt.Errorf("node: Config.Checksum: %w", err)
	}
	cfg.Checksum = sum
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 30 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = 2 * time.Second
	}
	if cfg.ReconnectFor <= 0 {
		cfg.ReconnectFor = 24 * time.Hour
	}
	if cfg.ResignWait <= 0 {
		cfg.ResignWait = 15 * time.Second
	}
	n := &Node{
		cfg:   cfg,
		log:   cfg.Logger.With("node", cfg.Name),
		inbox: make(chan input, 1024),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		subs:  map[chan Leadership]struct{}{},
		rng:   rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(cfg.BindPort))),
		meta:  meta,
	}
	n.leaveCh, n.pingQuit = make(chan struct{}), make(chan struct{})
	if n.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	n.events = &eventLog{w: cfg.EventLog, node: cfg.Name}
	n.sm = nodecore.New(nodecore.Config{Self: cfg.Name, Cluster: cfg.Cluster, FunctionID: cfg.FunctionID, Checksum: cfg.Checksum,
		ClusterConfig: cfg.ClusterConfig, Identity: cfg.Identity, PendingFor: cfg.PendingFor, RefreshInterval: cfg.RefreshInterval,
		CallStagger: cfg.CallStagger, ChangeCoalesce: cfg.ChangeCoalesce, LeaderPingInterval: cfg.LeaderPingInterval, LeaderTimeout: cfg.LeaderTimeout,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, ViewInterval: cfg.ViewInterval, LeaseMargin: cfg.LeaseMargin,
		Tick: tick, FloorFile: n.seqPath(), FloorWait: cfg.FloorWait, Rand: n.rng, ResignHold: cfg.ResignHold, Observer: cfg.Observer})
	n.status.Store(&Status{Name: cfg.Name, Cluster: cfg.Cluster, State: "starting"})
	return n, nil
}

// Start attests the runtime, starts gossiping and keeps joining the peers
// in the background. It returns once the node listens. ctx bounds only the
// first attestation (at most CallTimeout); the node then runs until
// Shutdown or Kill. It fails when DATA/last_seq exists but is unreadable
// (ErrStateFile).
func (n *Node) Start(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("node: already started")
	}
	cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	key, err := n.cfg.Runtime.Key(cctx)
	cancel()
	if err != nil {
		// The node can run without the runtime: it will keep retrying,
		// and accepts no certificate until it has attested it.
		n.log.Warn("runtime not attested yet; will retry", "err", err)
	}
	floor, ferr := n.loadSeq()
	if ferr != nil {
		return ferr
	}
	fc, ferr := n.loadFloorCert()
	if ferr != nil {
		return ferr
	}
	n.sm.SetFloorCert(fc)
	n.sm.Start(key, err, floor, time.Now())
	n.core, n.term = n.sm.Cores()

	mc := *n.cfg.Memberlist
	mc.Name = n.cfg.Name
	mc.BindAddr = n.cfg.BindAddr
	mc.BindPort = n.cfg.BindPort
	mc.AdvertiseAddr = n.cfg.AdvertiseAddr
	mc.AdvertisePort = n.cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = n.cfg.BindPort
	}
	mc.Label = "vouch/" + n.cfg.Cluster
	mc.Delegate = &delegate{n: n}
	mc.Events = &events{n: n}
	mc.Logger = log.New(&memberlistLog{n: n}, "", 0)
	mc.LogOutput = nil
	if n.cfg.InsecureGossip {
		mc.Keyring = nil
		n.log.Warn("gossip is NOT authenticated (insecure gossip): anyone who can send a packet to the gossip port can declare members dead or join, and two nodes may then act as leader")
	} else {
		kr, err := memberlist.NewKeyring(n.cfg.GossipExtraKeys, n.cfg.GossipKey)
		if err != nil {
			return fmt.Errorf("gossip key: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	n.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(&mc)
	if err != nil {
		return fmt.Errorf("starting gossip on %s:%d: %w", n.cfg.BindAddr, n.cfg.BindPort, err)
	}
	n.ml = ml
	n.queue.NumNodes = ml.NumMembers
	if f := n.cfg.OnNewLeader; f != nil {
		ch, cancel := n.Subscribe() // before the loop runs: no change is missed
		go n.newLeaders(f, ch, cancel)
	}
	go n.loop()
	go n.joinLoop()
	n.post(input{kind: inView})
	n.log.Info("node started", "cluster", n.cfg.Cluster, "addr", net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(int(ml.LocalNode().Port))),
		"profile", n.cfg.Profile, "peers", n.cfg.Peers, "runtime", n.cfg.Runtime.Describe().URL, "simulated_attestation", n.cfg.Runtime.Describe().Simulated)
	return nil
}

// Port returns the port the node listens on (useful with BindPort 0).
func (n *Node) Port() int {
	if n.ml == nil {
		return n.cfg.BindPort
	}
	return int(n.ml.LocalNode().Port)
}

// Addr returns the node's gossip address, host:port.
func (n *Node) Addr() string {
	return net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.Port()))
}

// Join asks the node to join the cluster through more peers.
func (n *Node) Join(peers ...string) (int, error) {
	if n.ml == nil {
		return 0, ErrStopped
	}
	return n.ml.Join(peers)
}

// post hands an input to the loop without blocking; when the loop is
// saturated the input is dropped and counted.
func (n *Node) post(in input) {
	select {
	case n.inbox <- in:
	default:
		n.metrics.drop("queue_full")
	}
}

// Shutdown leaves the cluster gracefully, so peers see a leave rather than
// a failure, and stops the node. A leader stops acting first: its
// leadership context ends and Shutdown waits for OnStartedLeading to
// return (at most ResignWait, within ctx) before it says goodbye. It is
// idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.started.Load() || n.ml == nil {
		return nil
	}
	var err error
	n.closing.Do(func() {
		n.leaving.Store(true)
		close(n.leaveCh)
		timeout := 2 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		start := time.Now()
		// Stop acting before anyone may learn that this node leaves: the
		// loop's next step ends the leadership (the machine's Leave),
		// and the leader's callback gets the time left to return, less a
		// second (a third, when less than 3 s is left) kept for the leave.
		n.sync(ctx)
		n.waitActing(ctx, min(n.cfg.ResignWait, max(timeout-time.Second, timeout*2/3)))
		timeout = max(timeout-time.Since(start), 100*time.Millisecond)
		start = time.Now()
		// Say goodbye first, so peers label this a leave, then leave.
		// Over TCP, in parallel, bounded: a peer reads it before
		// memberlist's leave message reaches it. An observer is no
		// member of their election: memberlist's leave alone tells.
		bye := append([]byte{msgGoodbye}, n.cfg.Name...)
		var wg sync.WaitGroup
		for _, m := range n.members.list() {
			if m.name != n.cfg.Name && !n.cfg.Observer {
				wg.Add(1)
				go func(to *memberlist.Node) {
					defer wg.Done()
					if n.ml.SendReliable(to, bye) != nil {
						n.ml.SendBestEffort(to, bye)
					}
				}(m.node())
			}
		}
		sent := make(chan struct{})
		go func() { wg.Wait(); close(sent) }()
		select {
		case <-sent:
		case <-time.After(min(time.Second, timeout/3)):
		}
		// memberlist waits forever for a timeout ≤ 0.
		timeout = max(timeout-time.Since(start), 100*time.Millisecond)
		lerr := n.ml.Leave(timeout)
		select { // goodbyes still under way end within TCPTimeout
		case <-sent:
		case <-time.After(n.cfg.Memberlist.TCPTimeout):
		}
		if lerr != nil {
			err = fmt.Errorf("%w within %v: %v (peers that missed it will detect the departure as a failure)", ErrLeaveTimeout, timeout.Round(time.Millisecond), lerr)
		}
		n.shutdown()
	})
	return err
}

// Kill stops the node abruptly, as a crash would: no leave message. Peers
// must detect the failure. For tests and benchmarks.
func (n *Node) Kill() {
	if !n.started.Load() || n.ml == nil {
		return
	}
	n.closing.Do(n.shutdown)
}

func (n *Node) shutdown() {
	n.pingMu.Lock()
	n.pingClosed = true
	close(n.pingQuit)
	n.pingMu.Unlock()
	n.pingers.Wait() // each stops within a ping's timeout
	n.ml.Shutdown()
	close(n.stop)
	<-n.done
	n.subMu.Lock()
	for ch := range n.subs {
		close(ch)
	}
	n.subs = nil
	n.subMu.Unlock()
	n.log.Info("node stopped")
}

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// sync waits until the loop has handled everything posted before it.
func (n *Node) sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case n.inbox <- input{kind: inSync, reply: reply}:
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) seqPath() string {
	if n.cfg.DataDir == "" {
		return seqFile
	}
	return filepath.Join(n.cfg.DataDir, seqFile)
}
