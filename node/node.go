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
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"vouch/api"
	"vouch/election"
	"vouch/election/members"
)

// ErrStopped is returned by methods of a node that has shut down.
var ErrStopped = errors.New("node stopped")

// ErrLeaveTimeout is wrapped by the error Shutdown returns when memberlist
// could not confirm that its leave message went out in time, as happens
// when the peers stop at the same moment. The node has stopped all the
// same; peers that missed the leave see a failure instead.
var ErrLeaveTimeout = errors.New("leave not confirmed")

// Node is a running cluster member. Its methods are safe for concurrent
// use. One goroutine owns the election core; everything else talks to it
// through channels.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	metrics *metrics
	events  *eventLog

	inbox   chan input
	stop    chan struct{}
	done    chan struct{}
	leaveCh chan struct{} // closed when a graceful leave starts
	started atomic.Bool
	closing sync.Once
	leaving atomic.Bool

	// Owned by the loop goroutine.
	core        *election.Core
	term        *election.TermCore // signed-views mode only
	viewDirty   bool
	nextView    time.Time
	viewSeq     uint64
	leaseUntil  time.Time
	leading     bool
	configAck   string // config digest the runtime last reported
	trustKey    ed25519.PublicKey
	floor       uint64 // the seq (term) persisted before a restart
	calling     bool
	nextCall    time.Time
	attempt     int
	lastRefresh time.Time
	lead        *leaseCtx // the current leadership's context; nil when not leading
	token       uint64    // the fencing token of the current leadership
	rt          runtimeTrack
	rng         *rand.Rand
	departures  map[string]departure
	suspects    map[string]*suspect
	goodbyes    map[string]time.Time
	ignored     map[string]bool // invalid member IDs already logged
	certFrom    string          // where the held certificate came from
	certAt      time.Time
	watch       map[string]*watched // the leader watch (watch.go)
	callPlanned bool                // a staggered call waits for its turn
	watchLost   bool                // the view changes because the watch lost the leader

	status  atomic.Pointer[Status]
	leadPub atomic.Pointer[leaseCtx] // the latest leadership's context, for readers outside the loop
	members memberSet
	// The snapshot's key and age (publishDue), and the counters the key
	// holds: changes of the election view, leader-watch verdicts.
	pubKey                publishKey
	pubAt                 time.Time
	viewChanges, verdicts uint64
	notifyDue             bool // the leadership changed: deliver to subscribers

	// The leader watch's pingers, stopped before memberlist shuts down.
	pingMu     sync.Mutex
	pingClosed bool
	pingQuit   chan struct{}
	pingers    sync.WaitGroup

	subMu sync.Mutex
	subs  map[chan Leadership]struct{}
}

// departure is how and when a member left this node's view.
type departure struct {
	how string // "left", "dead" or "unreachable"
	at  time.Time
}

// runtimeTrack is what the node knows of the runtime, for /status.
type runtimeTrack struct {
	lastOK   time.Time // last call whose answer was accepted (or attestation)
	lastFail time.Time // last call that failed or whose answer was refused
	err      error     // why lastFail
	refused  bool      // lastFail was an answer this node refused
}

// input is one event for the loop.
type input struct {
	kind     inputKind
	cert     *election.Certificate
	err      error
	from     string
	key      ed25519.PublicKey
	reply    chan struct{}
	departed string    // for a member that left the view: "left" or "dead"
	sentAt   time.Time // when a view submission was sent
}

type inputKind int

const (
	inView inputKind = iota
	inCert
	inElected
	inSync
	inGoodbye
	inPing
	inWake       // nothing to do but run the loop's checks
	inWatch      // a leader-watch ping's outcome
	inWatchCheck // a leader-watch deadline
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
	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.Name),
		inbox:    make(chan input, 1024),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		subs:     map[chan Leadership]struct{}{},
		rng:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(cfg.BindPort))),
		goodbyes: map[string]time.Time{},
	}
	n.leaveCh, n.pingQuit = make(chan struct{}), make(chan struct{})
	if n.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	n.events = &eventLog{w: cfg.EventLog, node: cfg.Name}
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
		n.rt.lastFail, n.rt.err = time.Now(), err
	} else {
		n.rt.lastOK = time.Now()
	}
	n.trustKey = key
	floor, err := n.loadSeq()
	if err != nil {
		return err
	}
	n.floor = floor
	n.core = election.New(election.Config{Self: n.cfg.Name, Trust: n.trust(), PendingFor: n.cfg.PendingFor, MinSeq: floor})
	if n.views() {
		// Signed views: the core above only tracks the membership view;
		// certificates go to the term core.
		n.term = election.NewTermCore(n.cfg.Name, n.trust(), floor)
	}

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
	go n.loop()
	go n.joinLoop()
	n.post(input{kind: inView})
	n.log.Info("node started", "cluster", n.cfg.Cluster, "addr", net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(int(ml.LocalNode().Port))),
		"profile", n.cfg.Profile, "peers", n.cfg.Peers, "runtime", n.cfg.Runtime.Describe().URL, "simulated_attestation", n.cfg.Runtime.Describe().Simulated)
	return nil
}

func (n *Node) trust() election.Trust {
	t := election.Trust{Key: n.trustKey, FunctionID: n.cfg.FunctionID, Checksum: n.cfg.Checksum, Cluster: n.cfg.Cluster}
	if n.cfg.ClusterConfig != nil {
		t.ConfigDigest = n.cfg.ClusterConfig.Config.Digest()
	}
	return t
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

// joinLoop joins the configured peers, retrying until one answers (a node
// that starts before its peers runs alone meanwhile), then keeps
// reconnecting: memberlist never contacts a member it declared dead again,
// so without this the two halves of a healed partition would stay apart
// forever. Every ReconnectInterval it tries the configured peers that are
// not members and the members that failed in the last ReconnectFor. It
// stops when the node starts leaving.
func (n *Node) joinLoop() {
	delay := 200 * time.Millisecond
	joined := len(n.cfg.Peers) == 0
	for {
		if n.leaving.Load() {
			return
		}
		if !joined {
			if _, err := n.ml.Join(n.cfg.Peers); err == nil || n.ml.NumMembers() > 1 {
				joined, delay = true, n.cfg.ReconnectInterval
			} else {
				n.log.Debug("cannot join peers yet; retrying", "peers", n.cfg.Peers, "err", err)
				delay = min(2*delay, 5*time.Second)
			}
		} else if targets := n.reconnectTargets(time.Now()); len(targets) > 0 {
			before := n.ml.NumMembers()
			k, err := n.ml.Join(targets)
			if after := n.ml.NumMembers(); after > before {
				n.log.Info("reconnected to members", "contacted", k, "tried", targets, "members", after)
			} else {
				n.log.Debug("reconnect attempt found no new member", "contacted", k, "tried", targets, "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-n.leaveCh:
			return
		case <-time.After(delay):
		}
	}
}

// reconnectTargets lists addresses worth a join attempt: configured peers
// that are not members, and members that failed recently. A peer given by
// host name counts as a member when any address the name resolves to is
// one, so that it is not joined again every interval.
func (n *Node) reconnectTargets(now time.Time) []string {
	have := n.members.addresses()
	var out []string
	for _, a := range n.cfg.Peers {
		if !have[a] && !n.resolvesToMember(a, have) {
			out = append(out, a)
		}
	}
	for _, a := range n.members.failed(now, n.cfg.ReconnectFor) {
		if !have[a] && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// resolvesToMember reports whether peer, a host:port whose host is a
// name, resolves to the address of a current member.
func (n *Node) resolvesToMember(peer string, have map[string]bool) bool {
	host, port, err := net.SplitHostPort(peer)
	if err != nil || net.ParseIP(host) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if have[net.JoinHostPort(ip, port)] {
			return true
		}
	}
	return false
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

const tick = 100 * time.Millisecond

func (n *Node) loop() {
	defer close(n.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	n.refreshView(time.Now())
	for {
		select {
		case <-n.stop:
			n.stopLeading()
			n.publish()
			return
		case in := <-n.inbox:
			now := time.Now()
			switch in.kind {
			case inView:
				if in.departed != "" {
					n.noteDeparture(in.from, in.departed)
				}
				n.refreshView(now)
			case inCert:
				if n.term != nil {
					n.handleTerm(n.term.Receive(in.cert), "peer "+in.from, time.Time{})
				} else {
					n.handle(n.core.Receive(in.cert, now), "peer "+in.from)
				}
			case inElected:
				if n.term != nil {
					n.submitted(in, now)
				} else {
					n.elected(in, now)
				}
			case inSync:
				if n.term != nil {
					n.checkLease(now) // a lease that ran out shows as such
				}
				n.publish() // what the caller reads next is current
				close(in.reply)
			case inGoodbye:
				n.goodbye(in.from, now)
			case inPing:
				if n.pinged(in.from, in.err, now) {
					n.refreshView(now)
				}
			case inWake:
			case inWatch:
				n.watchResult(in.from, in.err, in.sentAt, now)
			case inWatchCheck:
				n.watchChecked(in.from, now)
			}
		case <-t.C:
			now := time.Now()
			// Refresh on the tick too: a membership event dropped while
			// the inbox was full must not leave the view stale.
			n.refreshView(now)
			n.handle(n.core.Tick(now), "")
			if n.term != nil {
				n.checkLease(now)
				n.confirmSuspects()
			}
		}
		now := time.Now()
		if n.term != nil {
			n.maybeSubmit(now)
		} else {
			n.maybeElect(now)
		}
		n.updateWatch(now)
		n.publishDue(now) // the leadership changed with notify is in the key: published now
		n.deliver()
	}
}

func (n *Node) refreshView(now time.Time) {
	var ids []string
	for _, m := range n.members.list() {
		if !n.unreachable(m.name) { // the leader watch: our own pings fail
			ids = append(ids, m.name)
		}
	}
	for name := range n.suspects {
		if !slices.Contains(ids, name) && !n.unreachable(name) {
			ids = append(ids, name) // reported dead, not yet confirmed by us
		}
	}
	before := n.core.View()
	a := n.core.SetView(ids, now)
	n.noteIgnored(a.Ignored)
	n.handle(a, "view")
	if after := n.core.View(); !slices.Equal(before, after) {
		n.viewChanges++
		n.metrics.members.Set(float64(len(after)))
		n.viewDirty = true
		n.log.Debug("membership view changed", "members", after)
		if n.term == nil && n.attempt == 0 {
			n.staggerCall(now, n.watchLost)
		}
	}
}

// staggerCall schedules the runtime call for a new view (member list):
// rank × CallStagger, rank 0 being the member the policy names leader of
// this view, plus up to CallStagger/2 of jitter. By the time a node's turn
// comes, the likely new leader has usually certified the view and its
// certificate has arrived by gossip, so the node does not call at all
// (maybeElect asks the core whether the view is still uncovered). Without
// this, every node called on every membership change: O(N) calls per
// change, O(N²) while a cluster forms. When the change is the leader
// watch losing the leader, every other node waits one LeaderPingInterval
// more: the nodes' last acks from the leader are at most one interval
// apart, so by then the likely new leader has found the leader
// unreachable as well, and called.
func (n *Node) staggerCall(now time.Time, watchLost bool) {
	rank := max(n.core.Rank(n.cfg.Name), 0)
	delay := time.Duration(rank) * n.cfg.CallStagger
	if watchLost && rank > 0 {
		delay += n.cfg.LeaderPingInterval
	}
	if j := n.cfg.CallStagger / 2; j > 0 {
		delay += time.Duration(n.rng.Int64N(int64(j) + 1))
	}
	n.nextCall, n.callPlanned = now.Add(delay), true
	if delay > 0 {
		n.wakeAt(n.nextCall)
	}
}

// noteIgnored logs, once per name, the memberlist members whose names are
// not valid member IDs: they stay out of the election view (anyone who can
// reach the gossip port without a gossip key can join under any name).
func (n *Node) noteIgnored(names []string) {
	for _, name := range names {
		if n.ignored[name] {
			continue
		}
		if n.ignored == nil || len(n.ignored) >= 1024 {
			n.ignored = map[string]bool{}
		}
		n.ignored[name] = true
		n.metrics.drop("invalid_member_id")
		n.log.Warn("ignoring a gossip member whose name is not a valid member ID; it stays out of the election view",
			"member", fmt.Sprintf("%.40q", name), "err", members.ValidID(name))
	}
}

// noteDeparture remembers how a member left: "left" after it said goodbye
// (a graceful leave), "dead" after failure detection.
func (n *Node) noteDeparture(name, how string) {
	if t, ok := n.goodbyes[name]; ok {
		delete(n.goodbyes, name)
		if time.Since(t) < 10*time.Second {
			how = "left"
			n.members.forget(name)
		}
	}
	if len(n.goodbyes) > 1024 {
		n.goodbyes = map[string]time.Time{}
	}
	n.setDeparture(name, how, time.Now())
	n.log.Info("member departed", "member", name, "how", how)
	if how == "dead" {
		n.suspectDeparture(name, time.Now())
	}
}

// setDeparture records how and when name left this node's view, in a map
// kept to about 1024 entries.
func (n *Node) setDeparture(name, how string, at time.Time) {
	if n.departures == nil || len(n.departures) > 1024 {
		n.departures = map[string]departure{}
	}
	n.departures[name] = departure{how: how, at: at}
}

// goodbye records a member's goodbye. memberlist handles its own leave
// message before user messages, so a goodbye can arrive just after the
// departure was reported: then the departure is relabelled a leave.
func (n *Node) goodbye(name string, now time.Time) {
	if d, ok := n.departures[name]; ok && d.how == "dead" && now.Sub(d.at) < 2*time.Second && !n.members.has(name) {
		n.setDeparture(name, "left", d.at)
		n.members.forget(name)
		n.log.Info("member departed", "member", name, "how", "left", "note", "its goodbye arrived after the departure")
		if _, ok := n.suspects[name]; ok {
			delete(n.suspects, name)
			n.refreshView(now)
		}
		return
	}
	n.goodbyes[name] = now
}

// handle carries out the core's actions.
func (n *Node) handle(a election.Actions, source string) {
	if a.Rejected != nil {
		n.metrics.rejected.WithLabelValues(string(a.Rejected.Reason)).Inc()
		if a.Rejected.Reason == election.ReasonStale {
			n.log.Debug("certificate rejected", "reason", a.Rejected.Reason, "from", source, "detail", a.Rejected.Detail)
		} else {
			n.log.Warn("certificate rejected", "reason", a.Rejected.Reason, "from", source, "detail", a.Rejected.Detail)
		}
	}
	for _, r := range a.Expired {
		n.metrics.rejected.WithLabelValues(string(r.Reason)).Inc()
		n.log.Warn("certificate rejected", "reason", r.Reason, "detail", r.Detail)
	}
	if a.Accepted == nil {
		return
	}
	cert := a.Accepted
	_, o := n.core.Held()
	n.metrics.seq.Set(float64(cert.Seq()))
	n.certFrom, n.certAt = source, time.Now()
	n.events.accepted(cert, o)
	n.saveSeq(cert.Seq())
	if a.LeaderChanged == nil {
		n.relay(cert, 0, false)
		n.log.Debug("leader is "+o.Leader+" (seq "+strconv.FormatUint(cert.Seq(), 10)+")", "leader", o.Leader, "seq", cert.Seq(), "from", source)
		return
	}
	lc := a.LeaderChanged
	cause := n.leaderChanged(lc.Previous)
	n.relay(cert, 0, source == "runtime" && cause == causeFailed)
	n.log.Info("leader is "+lc.Leader+" (seq "+strconv.FormatUint(lc.Seq, 10)+")", "leader", lc.Leader, "seq", lc.Seq, "previous", lc.Previous, "cause", cause, "members", o.Members, "from", source)
	if lc.WasSelf && !lc.Self {
		n.stopLeading()
	}
	if lc.Self {
		n.startLeading(lc.Seq)
	}
	n.notify()
}

// leaderChanged counts a change of leader away from prev and returns why
// prev lost office: it failed (this node saw it die or become unreachable,
// or it is no longer in this node's view; with signed views the runtime
// found it not alive by majority), it left gracefully, or it was outranked
// (member list: still a member, but the policy now prefers another).
func (n *Node) leaderChanged(prev string) string {
	if prev == "" {
		return ""
	}
	n.metrics.leaderChanges.Inc()
	cause := causeFailed
	switch d, ok := n.departures[prev]; {
	case ok && d.how == "left":
		cause = causeLeft
	case ok:
		cause = causeFailed
	case n.term == nil && n.core.Rank(prev) >= 0:
		cause = causeOutranked
	}
	n.metrics.failovers.WithLabelValues(cause).Inc()
	return cause
}

// startLeading starts a leadership whose fencing token is token: the seq
// (signed views: the term) of the certificate that started it. A running
// leadership is stopped first, so that each OnStartedLeading has its own
// context and token. With signed views the context's deadline is the
// lease end (leaseCtx); the member-list scheme has no lease.
func (n *Node) startLeading(token uint64) {
	if n.lead != nil {
		n.stopLeading()
	}
	var until time.Time
	if n.term != nil {
		until = n.leaseUntil
	}
	n.log.Info("I AM THE LEADER", "seq", token, "fencing_token", token)
	n.metrics.isLeader.Set(1)
	n.events.acted(token)
	ctx := newLeaseCtx(token, until, time.Now, realAfter)
	n.lead, n.token = ctx, token
	n.leadPub.Store(ctx)
	if f := n.cfg.OnStartedLeading; f != nil {
		go f(ctx, token)
	}
}

func (n *Node) stopLeading() {
	if n.lead == nil {
		return
	}
	n.lead.cancel()
	// A lease that ran out ended the leadership at its deadline, which
	// may be earlier than this line: say when (chaos.Leaderships reads it).
	var attrs []any
	if dl, ok := n.lead.Deadline(); ok && errors.Is(n.lead.Err(), context.DeadlineExceeded) {
		attrs = append(attrs, "lease_end", dl.UTC().Format(time.RFC3339Nano))
	}
	n.lead, n.token = nil, 0 // leadPub keeps it: Leader shows its lease end
	n.metrics.isLeader.Set(0)
	n.log.Info("stopped leading", attrs...)
	if f := n.cfg.OnStoppedLeading; f != nil {
		go f()
	}
}

// maybeElect starts a call to the runtime when the held certificate does
// not cover the view, or when the leader's refresh is due.
func (n *Node) maybeElect(now time.Time) {
	if n.calling || n.leaving.Load() || now.Before(n.nextCall) {
		return
	}
	view := n.core.Wanted()
	if view == nil && n.callPlanned {
		n.metrics.calmSkipped.Inc() // a peer's certificate covered the view first
	}
	n.callPlanned = false
	leader, _ := n.core.Leader()
	if view == nil && leader == n.cfg.Name && now.Sub(n.lastRefresh) >= n.cfg.RefreshInterval {
		view = n.core.View()
	}
	if view == nil && n.trustKey == nil {
		view = n.core.View() // attest, then certify
	}
	if view == nil {
		return
	}
	n.calling = true
	n.lastRefresh = now
	go n.call(view)
}

func (n *Node) call(view []string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	key, err := n.cfg.Runtime.Key(ctx)
	var cert *election.Certificate
	if err == nil {
		cert, err = n.cfg.Runtime.Elect(ctx, n.cfg.Cluster, view)
	}
	n.metrics.callSeconds.Observe(time.Since(start).Seconds())
	select {
	case n.inbox <- input{kind: inElected, cert: cert, err: err, key: key}:
	case <-n.stop:
	}
}

func (n *Node) elected(in input, now time.Time) {
	if !n.callDone(in, now) {
		return
	}
	a := n.core.Receive(in.cert, now)
	n.handle(a, "runtime")
	if why := n.refusal(a.Rejected, in.cert.Seq(), "seq"); why != nil {
		n.refused(now, why)
		return
	}
	n.answered(now)
}

// refusal explains why the runtime's own answer was refused, or returns
// nil when it was not, or when the refusal is routine: a certificate that
// is stale only because a peer's newer one arrived while the call was
// under way says nothing about the runtime. got is the answer's seq (or
// term, named by unit).
func (n *Node) refusal(rej *election.RejectError, got uint64, unit string) error {
	switch {
	case rej == nil || rej.Reason == election.ReasonNoLeader:
		return nil
	case rej.Reason == election.ReasonStale && got < n.floor:
		return fmt.Errorf("the runtime's %s %d is below this node's floor %d (the highest it accepted before it restarted, kept in %s): the runtime's state was reset or replaced, so this node refuses its certificates until they pass %d; if the reset was deliberate, stop this node, delete that file and start it again",
			unit, got, n.floor, n.seqPath(), n.floor)
	case rej.Reason == election.ReasonStale:
		return nil
	}
	return fmt.Errorf("the runtime's answer was refused (%s): %s", rej.Reason, rej.Detail)
}

func (n *Node) seqPath() string {
	if n.cfg.DataDir == "" {
		return seqFile
	}
	return filepath.Join(n.cfg.DataDir, seqFile)
}

// callDone records the outcome of a runtime call: on failure it schedules a
// retry with capped exponential backoff and jitter and keeps the last valid
// leader; on success, if the runtime's attested key changed, it trusts the
// new one. It reports whether the call succeeded. The backoff is reset
// only once the answer was accepted (answered), not here: an answer the
// node refuses counts as a failed attempt (refused).
func (n *Node) callDone(in input, now time.Time) bool {
	n.calling = false
	if in.err != nil {
		n.metrics.electionErrors.Inc()
		msg := "runtime call failed; keeping the last valid leader"
		var wait time.Duration
		var ae *api.Error
		if errors.As(in.err, &ae) && ae.Status == http.StatusTooManyRequests {
			msg = "the runtime is rate-limiting this node's function token (HTTP 429); backing off and keeping the last valid leader"
			wait = ae.RetryAfter
		}
		n.failed(now, in.err, false, wait, msg)
		return false
	}
	n.metrics.elections.Inc()
	if !in.key.Equal(n.trustKey) {
		if n.trustKey != nil {
			n.log.Warn("runtime receipt key changed; trusting the newly attested key")
		}
		n.trustKey = in.key
		n.core.SetTrust(n.trust())
		if n.term != nil {
			n.term.SetTrust(n.trust())
		}
	}
	return true
}

// failed schedules the next attempt after a failed call or a refused
// answer: capped exponential backoff with equal jitter, and at least
// atLeast (capped at RetryMax). Rate-limited calls (HTTP 429) back off the
// same way, or at least for the runtime's Retry-After, or a node would
// retry every RetryMin for as long as its token is over its rate.
func (n *Node) failed(now time.Time, err error, refused bool, atLeast time.Duration, msg string) {
	n.rt.lastFail, n.rt.err, n.rt.refused = now, err, refused
	n.metrics.runtimeFail.Set(float64(now.UnixMilli()) / 1000)
	d := min(n.cfg.RetryMax, n.cfg.RetryMin<<min(n.attempt, 20))
	n.attempt++
	d = d/2 + time.Duration(n.rng.Int64N(int64(d/2)+1))
	d = max(d, min(atLeast, n.cfg.RetryMax)) // a 429's Retry-After
	n.nextCall = now.Add(d)
	n.lastRefresh = time.Time{} // a leader's failed refresh is retried with the backoff too
	n.wakeAt(n.nextCall)
	n.log.Warn(msg, "err", err, "attempt", n.attempt, "retry_in", d.Round(time.Millisecond))
}

// refused handles an answer the node refused: like a failed call, it backs
// off, so a node never spins on a runtime whose answers it cannot accept.
func (n *Node) refused(now time.Time, why error) {
	n.metrics.refusedAnswers.Inc()
	n.failed(now, why, true, 0, "refused the runtime's answer; keeping the last valid leader")
}

// answered records an accepted answer: the runtime works, the backoff is
// reset.
func (n *Node) answered(now time.Time) {
	if n.attempt > 0 {
		n.log.Info("runtime reachable again", "after_attempts", n.attempt)
	}
	n.attempt, n.nextCall = 0, time.Time{}
	n.rt.lastOK = now
	n.metrics.runtimeOK.Set(float64(now.UnixMilli()) / 1000)
}

// wakeAt makes the loop run at t, for deadlines that must not wait for the
// loop's next tick (up to 100 ms later).
func (n *Node) wakeAt(t time.Time) { n.postAt(t, input{kind: inWake}) }

// postAt posts in to the loop at t.
func (n *Node) postAt(t time.Time, in input) {
	time.AfterFunc(time.Until(t), func() { n.post(in) })
}

// Shutdown leaves the cluster gracefully, so peers see a leave rather than
// a failure, and stops the node. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.started.Load() || n.ml == nil {
		return nil
	}
	var err error
	n.closing.Do(func() {
		n.leaving.Store(true)
		close(n.leaveCh)
		// Say goodbye first, so peers label this a leave, then leave.
		// Over TCP, in parallel, bounded: a peer reads it before
		// memberlist's leave message reaches it.
		timeout := 2 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		start := time.Now()
		bye := append([]byte{msgGoodbye}, n.cfg.Name...)
		var wg sync.WaitGroup
		for _, m := range n.members.list() {
			if m.name != n.cfg.Name {
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
