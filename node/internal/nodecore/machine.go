package nodecore

import (
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
)

// Config configures a Machine. The durations mean what node.Config's
// fields of the same names mean.
type Config struct {
	Self, Cluster        string
	FunctionID, Checksum string
	// ClusterConfig switches to signed views; Identity signs the views.
	ClusterConfig *cluster.Signed
	Identity      ed25519.PrivateKey

	PendingFor, RefreshInterval, CallStagger time.Duration
	// ChangeCoalesce gathers calm membership changes before a call
	// (member list; calls.go); zero calls after every change.
	ChangeCoalesce                                time.Duration
	LeaderPingInterval, LeaderTimeout             time.Duration
	RetryMin, RetryMax, ViewInterval, LeaseMargin time.Duration
	// Tick is how often the periodic checks run; zero means 100 ms.
	Tick time.Duration
	// FloorFile names where the driver keeps the floor, for messages.
	FloorFile string
	// FloorWait is how long a node that starts with no floor (no floor
	// certificate, floor 0) waits for a peer's certificate before it may
	// lead on the runtime's (floor.go); zero means it does not wait.
	FloorWait time.Duration
	// Rand is the only source of randomness (stagger and backoff jitter);
	// nil means a fixed seed.
	Rand *rand.Rand
	// ResignHold is how long a member that resigned stays out of the
	// election view (its own and, once its announcement arrives, its
	// peers'); with signed views the hold ends earlier, as soon as a
	// certificate names another leader (resign.go). Zero means 1 min.
	ResignHold time.Duration
	// Observer makes the machine read-only (observer.go): it attests the
	// runtime and verifies certificates, but never calls, submits,
	// relays or leads.
	Observer bool
}

// Kind is an Input's kind.
type Kind int

const (
	View         Kind = iota // the membership changed; From and How for a departure
	Certificate              // Cert from peer From
	CallResult               // the answer to a Call or Submit: Cert, Key, Err, SentAt
	Goodbye                  // From said goodbye
	SuspectPing              // a Ping effect's outcome for From: Err
	WatchPing                // a leader-watch ping of From sent at SentAt: Err
	Tick                     // the timer fired
	Sync                     // a reader wants a current snapshot
	LeaseEnded               // a Renew found the leadership context ended
	Presented                // the answer to a Present effect: Err, Moved
	StepDown                 // stop acting now and do not lead again until Resign (resign.go)
	Resign                   // the driver saw the leader's work end: leave the election for ResignHold
	PeerResigned             // From announced its resignation
	Attested                 // the answer to an Attest effect (observers): Key, Err
)

// Input is one event for the machine.
type Input struct {
	Kind   Kind
	Now    time.Time
	From   string
	How    string // View: "dead" for a departure
	Known  bool   // View departure: the driver can still ping From
	Cert   *election.Certificate
	Key    ed25519.PublicKey
	Err    error
	SentAt time.Time
	Moved  bool // Presented: the runtime moved past the proof
}

// Effect is one thing the driver must do; Ready lists them in order.
type Effect struct {
	Kind EffectKind
	// Log
	Level slog.Level
	Msg   string
	Attrs []any
	// Count, Gauge
	Metric string
	Label  string
	Value  float64
	// Accepted, Persist, Relay, Present
	Cert    *election.Certificate
	Outcome *election.Outcome     // member list
	TermOut *election.TermOutcome // signed views
	Seq     uint64                // Persist: seq or term; Relay: the term (signed views); Present: the proof's seq or term
	Direct  bool                  // Relay: also send to every member at once
	Source  string
	// Call, Submit
	View   []string
	Body   []byte
	SentAt time.Time
	// StartLeading, Renew
	Token uint64
	Until time.Time
	// Ping, Join, Watch, Unwatch, Forget
	Member string
}

// EffectKind is an Effect's kind.
type EffectKind int

const (
	Log          EffectKind = iota // log Msg at Level with Attrs
	Count                          // add 1 to counter Metric (with Label)
	Gauge                          // set gauge Metric to Value
	Accepted                       // Cert was accepted from Source (event log, status)
	Persist                        // write Seq and Cert (the floor certificate) to stable storage before going on
	Relay                          // spread Cert
	Call                           // ask the runtime to certify View (member list)
	Submit                         // send Body, the signed view, to the runtime
	StartLeading                   // start leading with fencing Token, lease end Until (zero: none)
	StopLeading                    // end the current leadership
	Renew                          // move the leadership's lease end to Until
	Ping                           // ping Member once (a suspect): answer with SuspectPing
	Join                           // join Member's address again
	Watch                          // start pinging Member (the leader watch): answer with WatchPing
	Unwatch                        // stop pinging Member
	Notify                         // the leadership changed: tell subscribers
	Forget                         // Member left gracefully: stop reconnecting to it
	Present                        // present Cert to the runtime as proof of rollback: answer with Presented
	Announce                       // tell every member that this node resigned
	Attest                         // attest the runtime (observers): answer with Attested
)

// Ready is what the driver must do after a Step.
type Ready struct {
	Effects []Effect
	// Wake is when the driver must Step a Tick at the latest.
	Wake time.Time
}

// Metric names used by Count and Gauge effects.
const (
	MetricRejected       = "rejected"       // label: reason
	MetricDropped        = "dropped"        // label: reason (counter only)
	MetricDrop           = "drop"           // label: reason (counter and /status)
	MetricSeq            = "seq"            // gauge
	MetricMembers        = "members"        // gauge
	MetricLeaderChanges  = "leader_changes" // counter
	MetricFailovers      = "failovers"      // label: cause
	MetricCalmSkipped    = "calm_skipped"
	MetricErrors         = "election_errors"
	MetricElections      = "elections"
	MetricRefused        = "refused_answers"
	MetricRuntimeOK      = "runtime_ok"   // gauge: unix seconds
	MetricRuntimeFail    = "runtime_fail" // gauge: unix seconds
	MetricViews          = "views"
	MetricLeaderLost     = "leader_lost"
	MetricFloorPresented = "floor_presented" // counter: proofs of rollback the runtime answered
)

// Failover causes, the label of MetricFailovers.
const (
	CauseFailed    = "failed"    // the previous leader failed (dead or unreachable)
	CauseLeft      = "left"      // the previous leader left gracefully
	CauseOutranked = "outranked" // a member the policy prefers joined
	CauseResigned  = "resigned"  // the previous leader resigned (a graceful handover)
)

// Departure is how and when a member left this node's view.
type Departure struct {
	How string // "left", "dead" or "unreachable"
	At  time.Time
}

// RuntimeTrack is what the machine knows of the runtime, for status.
type RuntimeTrack struct {
	LastOK   time.Time // last call whose answer was accepted (or attestation)
	LastFail time.Time // last call that failed or whose answer was refused
	Err      error     // why LastFail
	Refused  bool      // LastFail was an answer this node refused
}

// Machine is a node's decision state. It is not safe for concurrent use.
type Machine struct {
	cfg  Config
	core *election.Core
	term *election.TermCore // signed views only

	trustKey ed25519.PublicKey
	floor    uint64
	members  map[string]bool // memberlist's current members
	order    []string        // the same, sorted
	leaving  bool

	// Resignation (resign.go): stepped down and not leading; out of its
	// own election view until resignUntil; peers held out of the view.
	stepped     bool
	resignUntil time.Time
	holds       map[string]time.Time

	calling     bool
	nextCall    time.Time
	attempt     int
	lastRefresh time.Time
	callPlanned bool // a staggered call waits for its turn
	calmPlan    bool // the planned call gathers calm changes (coalesceCall)
	viewDirty   bool
	sentAlive   []string // signed views: the alive list of the last view sent
	nextView    time.Time
	viewSeq     uint64
	configAck   string // config digest the runtime last reported

	leaseUntil time.Time
	leading    bool      // signed views: holds a renewed lease
	led        bool      // a leadership is on (StartLeading without StopLeading)
	ledUntil   time.Time // its lease end as last given to the driver
	token      uint64

	departures map[string]Departure
	suspects   map[string]*suspect
	goodbyes   map[string]time.Time
	ignored    map[string]bool
	watch      map[string]*watched
	watchLost  bool // the view changes because the watch lost the leader

	// The floor (floor.go): the persisted floor certificate, a verified
	// peer certificate above the held one, the proof in flight, and the
	// wait of a node that started without a floor.
	floorCert, peerProof  *election.Certificate
	presenting, recall    bool
	presentedSig          []byte
	presentedAt           time.Time
	unanchored, heardPeer bool
	reattest              bool // observers: a certificate failed to verify, the runtime's key may have changed
	anchorBy              time.Time

	rt                    RuntimeTrack
	certFrom              string
	certAt                time.Time
	viewChanges, verdicts uint64
	nextTick              time.Time

	out []Effect
}

// New returns a machine; Start gives it the attested key and the floor.
func New(cfg Config) *Machine {
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	return &Machine{cfg: cfg, goodbyes: map[string]time.Time{}}
}

// Start creates the election cores. key is the attested receipt key (nil
// when attestation failed with attestErr); floor is the seq (term)
// persisted before a restart.
func (m *Machine) Start(key ed25519.PublicKey, attestErr error, floor uint64, now time.Time) {
	if attestErr != nil {
		m.rt.LastFail, m.rt.Err = now, attestErr
	} else {
		m.rt.LastOK = now
	}
	floor = max(floor, m.value(m.floorCert))
	m.trustKey, m.floor = key, floor
	if floor == 0 && m.cfg.FloorWait > 0 {
		m.unanchored, m.anchorBy = true, now.Add(m.cfg.FloorWait)
		m.logf(slog.LevelInfo, "no floor (first start or lost state): this node leads only once it holds its peers' certificates, or after the floor wait", "wait", m.cfg.FloorWait)
	}
	var minSig []byte
	if fc := m.floorCert; fc != nil && !m.views() && fc.Seq() == floor {
		minSig = fc.Receipt.Signature
	}
	m.core = election.New(election.Config{Self: m.cfg.Self, Trust: m.trust(), PendingFor: m.cfg.PendingFor, MinSeq: floor, MinSeqSig: minSig})
	if m.views() {
		// Signed views: the core above only tracks the membership view;
		// certificates go to the term core.
		m.term = election.NewTermCore(m.cfg.Self, m.trust(), floor)
		if fc := m.floorCert; fc != nil && m.value(fc) == floor {
			m.term.SetMinOutput(fc.Output)
		}
	}
	m.nextTick = now.Add(m.cfg.Tick)
}

func (m *Machine) views() bool { return m.cfg.ClusterConfig != nil }

func (m *Machine) trust() election.Trust {
	t := election.Trust{Key: m.trustKey, FunctionID: m.cfg.FunctionID, Checksum: m.cfg.Checksum, Cluster: m.cfg.Cluster}
	if m.cfg.ClusterConfig != nil {
		t.ConfigDigest = m.cfg.ClusterConfig.Config.Digest()
	}
	return t
}

// SetMembers records memberlist's current members (this node included).
// It decides nothing: the next View or Tick reads them.
func (m *Machine) SetMembers(names []string) {
	m.members = make(map[string]bool, len(names))
	for _, n := range names {
		m.members[n] = true
	}
	if slices.IsSorted(names) { // the driver's usual list: no sort
		m.order = slices.Compact(slices.Clone(names))
		return
	}
	m.order = slices.Sorted(func(yield func(string) bool) {
		for n := range m.members {
			if !yield(n) {
				return
			}
		}
	})
}

// Leave stops all further runtime calls and ends a leadership at once:
// the node is leaving. The StopLeading effect comes with the next Ready,
// before the driver says goodbye.
func (m *Machine) Leave() {
	if m.leaving {
		return
	}
	m.leaving = true
	m.stepDown("the node is leaving")
}

// Step handles one input and returns what the driver must do.
func (m *Machine) Step(in Input) Ready {
	now := in.Now
	switch in.Kind {
	case View:
		if in.How != "" {
			m.noteDeparture(in.From, in.How, in.Known, now)
		}
		m.refreshView(now)
	case Certificate:
		if m.term != nil {
			m.handleTerm(m.term.Receive(in.Cert), "peer "+in.From, now)
		} else {
			m.handle(m.core.Receive(in.Cert, now), "peer "+in.From, now)
		}
		m.notePeerCert(in.Cert, now)
	case CallResult:
		if m.term != nil {
			m.submitted(in, now)
		} else {
			m.elected(in, now)
		}
		if in.Err == nil {
			m.checkAnswer(in.Cert, now)
		}
	case Presented:
		m.presented(in, now)
	case Sync:
		if m.term != nil {
			m.checkLease(now) // a lease that ran out shows as such
		}
	case Goodbye:
		m.goodbye(in.From, now)
	case SuspectPing:
		if m.pinged(in.From, in.Err, now) {
			m.refreshView(now)
		}
	case WatchPing:
		m.watchResult(in.From, in.Err, in.SentAt, now)
	case StepDown:
		m.stepDown("resigning")
	case Resign:
		m.resign(now)
	case PeerResigned:
		m.peerResigned(in.From, now)
	case Attested:
		m.attested(in, now)
	case LeaseEnded:
		if m.leading {
			_, term := m.term.Leader()
			m.logf(slog.LevelWarn, "lease ran out before its renewal was handled; starting a new leadership", "term", term)
			m.leading = false
			m.stopLeading()
			m.checkLease(now)
		}
	case Tick:
		m.maybeAnchor(now)
		m.expireHolds(now)
		m.watchDeadlines(now)
		if !now.Before(m.nextTick) {
			// Refresh on the tick too: a membership event dropped while
			// the driver's inbox was full must not leave the view stale.
			m.refreshView(now)
			m.handle(m.core.Tick(now), "", now)
			if m.term != nil {
				m.checkLease(now)
				m.confirmSuspects()
			}
			m.nextTick = now.Add(m.cfg.Tick)
		}
	}
	switch {
	case m.cfg.Observer:
		m.maybeAttest(now)
	case m.term != nil:
		m.maybeSubmit(now)
	default:
		m.maybeElect(now)
	}
	m.updateWatch(now)
	rd := Ready{Effects: m.out, Wake: m.wake(now)}
	m.out = nil
	return rd
}

// wake is the earliest deadline after now: the next tick, a planned call
// or retry, the next view, the lease end, a watch deadline.
func (m *Machine) wake(now time.Time) time.Time {
	w := m.nextTick
	if w.Before(now) {
		w = now // the tick is due
	}
	consider := func(t time.Time) {
		if t.After(now) && t.Before(w) {
			w = t
		}
	}
	consider(m.nextCall)
	if m.unanchored {
		consider(m.anchorBy)
	}
	if m.term != nil {
		consider(m.nextView)
		consider(m.leaseUntil)
	}
	for _, x := range m.watch {
		if x.armed {
			consider(x.lastAck.Add(m.cfg.LeaderTimeout))
		}
	}
	return w
}

func (m *Machine) emit(e Effect) { m.out = append(m.out, e) }

func (m *Machine) logf(level slog.Level, msg string, attrs ...any) {
	m.emit(Effect{Kind: Log, Level: level, Msg: msg, Attrs: attrs})
}

func (m *Machine) count(metric, label string) {
	m.emit(Effect{Kind: Count, Metric: metric, Label: label})
}

func (m *Machine) gauge(metric string, v float64) {
	m.emit(Effect{Kind: Gauge, Metric: metric, Value: v})
}

func (m *Machine) notify() { m.emit(Effect{Kind: Notify}) }
