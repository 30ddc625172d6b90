package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
)

// Runtime is what a node needs from the trusted runtime.
type Runtime interface {
	// Elect runs the election function over the members of a cluster and
	// returns the resulting certificate.
	Elect(ctx context.Context, cluster string, members []string) (*election.Certificate, error)
	// Key returns the runtime's attested receipt key, attesting if needed.
	Key(ctx context.Context) (ed25519.PublicKey, error)
	// Submit sends a signed view to the stateful election function and
	// returns the cluster's current certificate.
	Submit(ctx context.Context, input []byte) (*election.Certificate, error)
	// Describe names the runtime for logs and status, saying SIMULATED
	// when its attestation is simulated.
	Describe() RuntimeInfo
}

// RuntimeInfo describes a runtime for status pages.
type RuntimeInfo struct {
	// URL is the replica in use; Replicas lists every replica known, for
	// a replicated runtime.
	URL        string   `json:"url"`
	Replicas   []string `json:"replicas,omitempty"`
	ReplicaID  string   `json:"replica_id,omitempty"`
	Platform   string   `json:"platform,omitempty"`
	Simulated  bool     `json:"simulated"`
	KeyID      string   `json:"key_id,omitempty"`
	FunctionID string   `json:"function_id"`
	Checksum   string   `json:"function_checksum"`
}

// Config configures a Node. Build one with DefaultLocalConfig,
// DefaultLANConfig or DefaultWANConfig and fill in Name, Runtime and the
// election function; the timing comes from the profile.
type Config struct {
	// Name is this node's member ID; it must be unique in the cluster.
	// Under the original policy the highest ID leads.
	Name string
	// Cluster names the cluster. Nodes of another cluster are ignored
	// (memberlist labels every packet with it).
	Cluster string
	// Meta is this node's metadata, gossiped to every member (memberlist
	// node meta) and shown in their /status and /cluster: a leader can
	// publish its service address. At most MaxMetaSize (512) bytes as
	// JSON; it is set at start and not changed while the node runs.
	Meta map[string]string
	// BindAddr and BindPort are where the node listens, UDP and TCP.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers use to reach the node
	// when it sits behind NAT; empty means the bind address.
	AdvertiseAddr string
	AdvertisePort int
	// Peers are host:port addresses to join through. The node keeps trying
	// until one answers, so peers may start in any order.
	Peers []string
	// GossipKey (16, 24 or 32 bytes) encrypts and authenticates gossip
	// with AES-GCM: packets and streams not sealed with it are dropped, so
	// that nobody outside the cluster can declare a member dead or join.
	// New refuses a config without one unless InsecureGossip is set.
	GossipKey []byte
	// GossipExtraKeys are accepted from peers beside GossipKey but never
	// used to send: they let a cluster rotate its key without a partition
	// (docs/ELECTION.md, "Authenticated gossip").
	GossipExtraKeys [][]byte
	// InsecureGossip runs without a GossipKey, on purpose: anyone who can
	// send a UDP packet to the gossip port can then declare a member dead,
	// and two nodes may act as leader. The node logs a warning.
	InsecureGossip bool
	// DataDir, if set, keeps the node's state across restarts: the seq of
	// the last certificate it accepted, so that older ones cannot be
	// replayed to it after a restart.
	DataDir string
	// FloorWait is how long a node that starts with no floor (no
	// DATA/last_seq: a first start, or lost files) waits for its peers'
	// certificates before it leads on the runtime's: a runtime whose state
	// was rolled back could otherwise make it act on a term or seq its
	// peers already moved past. It waits less when a peer's certificate
	// arrives (memberlist's push/pull on join carries them), and longer
	// while a peer's verified certificate is above the one it holds.
	// Zero means no wait; the profiles set DefaultFloorWait.
	FloorWait time.Duration

	// Observer makes the node a read-only member, for `vouch status`
	// without an HTTP endpoint: it joins the gossip (with GossipKey, like
	// any member), advertises itself as an observer (ObserverMetaKey in
	// its meta), and receives and verifies certificates exactly as a
	// node does, against the runtime it attests. It never calls the
	// election function, never signs or submits a view (Identity is not
	// needed), never relays a certificate and never leads. Every node
	// leaves observers out of its membership before its election logic
	// sees it: an observer that joins or leaves changes no view, causes
	// no runtime call and counts in no quorum (docs/ELECTION.md,
	// "Observers"). The leader watch is off, and DataDir is not written.
	Observer bool

	// Runtime certifies elections; FunctionID and Checksum name the
	// election function the node trusts.
	Runtime    Runtime
	FunctionID string
	Checksum   string

	// ClusterConfig, when set, switches the node to signed views: it
	// submits a view signed with Identity every ViewInterval and on every
	// membership change to the stateful election function (built-in
	// "election"), which keeps terms inside the runtime. Without it the
	// node runs the original scheme: it sends its member list to the
	// leader function and orders certificates by receipt seq.
	ClusterConfig *cluster.Signed
	// Identity is this node's Ed25519 key (see LoadIdentity).
	Identity ed25519.PrivateKey
	// ViewInterval is how often a node submits its view. The leader
	// submits every min(ViewInterval, lease/4), so that its lease is
	// renewed well before it runs out and a successor need not wait long
	// for it after the leader dies; a node whose leader the leader watch
	// found unreachable submits every min(ViewInterval, lease/8) for up to
	// two leases, so that the new term starts soon after the old lease
	// has run out. A node other than the leader counts it from the
	// answer to its last view, and waits at least as long as that answer
	// took, so that a saturated runtime does not queue every member's
	// view ahead of the leader's renewal (docs/ELECTION.md, "Pacing").
	ViewInterval time.Duration

	// Profile is "local", "lan" or "wan"; Memberlist holds its timing.
	Profile    string
	Memberlist *memberlist.Config

	// RefreshInterval is how often the leader asks the runtime to certify
	// its leadership again.
	RefreshInterval time.Duration
	// CallStagger spaces the runtime calls of the member-list scheme after
	// a membership change: a node waits rank × CallStagger (rank 0 is the
	// member the policy would name leader of its view, the likely new
	// leader) plus up to CallStagger/2 of jitter, and calls only if by
	// then no certificate it accepted covers its view. One call per
	// change instead of one per node. Zero means no stagger.
	CallStagger time.Duration
	// ChangeCoalesce gathers membership changes that keep the leader
	// (joins, other members' departures) for ChangeCoalesce × max(1,
	// log10 N) from the first of them before the member-list scheme calls
	// the runtime: a forming cluster, or a false death and its
	// refutation, costs one call instead of one per change. The leader's
	// own departure is not delayed. Zero calls after every change.
	ChangeCoalesce time.Duration
	// LeaderPingInterval and LeaderTimeout drive the leader watch: a node
	// that holds a certificate naming another member pings that leader
	// directly every LeaderPingInterval (one ping in flight; memberlist's
	// Ping, whose ack must echo the ping's sequence number). When no ack
	// has arrived for LeaderTimeout and at least two pings in a row
	// failed, the
	// leader is unreachable for this node: it leaves this node's election
	// view at once, without waiting for memberlist's suspicion timeout
	// (which grows with log10 N). It keeps being pinged while memberlist
	// lists it, and its first ack brings it back. Zero disables the watch.
	LeaderPingInterval, LeaderTimeout time.Duration
	// PendingFor is how long a certificate for a view other than the
	// node's may wait for the view to converge.
	PendingFor time.Duration
	// RetryMin and RetryMax bound the exponential backoff (with jitter)
	// between attempts when the runtime is unreachable.
	RetryMin, RetryMax time.Duration
	// CallTimeout bounds one call to the runtime.
	CallTimeout time.Duration
	// ReconnectInterval is how often the node tries to reach configured
	// peers that are not members and members that failed, so that a healed
	// partition merges again; ReconnectFor is how long it keeps trying a
	// failed member.
	ReconnectInterval time.Duration
	ReconnectFor      time.Duration
	// LeaseMargin is how much earlier than the runtime's bound a leader
	// stops acting, to absorb clock drift and scheduling delay.
	LeaseMargin time.Duration

	// OnStartedLeading runs, in its own goroutine, when this node becomes
	// the leader. Resign and Shutdown wait for it to return (at most
	// ResignWait, or their ctx) before they let another node lead, so it
	// should return soon after its ctx ends. Its context ends when leadership is lost or the node
	// shuts down and, with signed views, at the lease end: its Deadline
	// is the current lease end and moves with renewals, and Err is
	// non-nil as soon as the clock passes it (see the package
	// documentation). token is the fencing token to hand to storage: the
	// seq (signed views: the term) of the certificate that made this node
	// leader. It does not change during the leadership (refreshes raise
	// the held certificate's seq, not the token); with signed views a new
	// term that keeps this node as leader ends this leadership and starts
	// another with the new term. Leadership.Token returns the same value.
	OnStartedLeading func(ctx context.Context, token uint64)
	// OnStoppedLeading runs, in its own goroutine, when this node stops
	// being the leader.
	OnStoppedLeading func()
	// OnNewLeader runs when the leader this node knows of changes (to
	// another member or to this one), with the new leader's ID, as
	// client-go's leaderelection calls it. Calls come one at a time, in
	// order, from one goroutine; a slow callback misses intermediate
	// leaders, never the latest.
	OnNewLeader func(id string)
	// ReleaseOnCancel makes Run resign a leadership when its ctx ends,
	// before it leaves: the successor is certified while this node still
	// answers, instead of after its departure is noticed (docs/ELECTION.md,
	// "Resigning"). Run waits at most ResignWait for that.
	ReleaseOnCancel bool
	// ResignHold is how long a member that resigned stays out of the
	// election (Node.Resign; with signed views the hold ends once a
	// certificate names another leader). Zero means 1 minute.
	ResignHold time.Duration
	// ResignWait bounds how long Resign waits for the leader's work to
	// end (OnStartedLeading to return) and Run for a successor's
	// certificate; zero means 15 s.
	ResignWait time.Duration

	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// EventLog, if set, receives one JSON object per line for every
	// certificate accepted and every time this node acts as leader, for
	// offline checking (see package chaos).
	EventLog io.Writer
	// Registerer receives Prometheus metrics; nil means a private registry.
	Registerer prometheus.Registerer
}

// Profiles are the timing presets.
var Profiles = []string{"local", "lan", "wan"}

// DefaultLocalConfig is tuned for nodes on one host or a fast, quiet
// network: a leader's failure is detected in about half a second by the
// leader watch (ping every 100 ms, unreachable after 500 ms without an
// ack, as raft's 500 ms heartbeat timeout), other members' in about 2
// to 3 s by memberlist.
//
// The memberlist timing, and why (docs/ELECTION.md, "Failure detection"):
// ProbeInterval 500ms, ProbeTimeout 200ms, IndirectChecks 3,
// SuspicionMult 3, SuspicionMaxTimeoutMult 3, GossipInterval 50ms,
// GossipNodes 3, RetransmitMult 3, PushPullInterval 5s, TCPTimeout 1s,
// HandoffQueueDepth 8192. A dead node is suspected after one failed
// direct and indirect probe (~0.5 s) and declared dead SuspicionMult ×
// max(1, log10 N) × ProbeInterval = 1.5 s later once a second node
// confirms (4.5 s at most without confirmation); Lifeguard's awareness
// stretches the timeouts of a node that is itself slow. The leader's
// failure does not wait for this: the leader watch finds it in about
// 0.5 s. ProbeTimeout is also the leader watch's ping timeout
// (memberlist's Ping), so it stays at most LeaderTimeout/2: two pings in
// a row can fail within the 500 ms. A 100 ms timeout and a 200 ms
// interval (before) declared healthy members dead by the thousand when
// 100 nodes shared a busy process (docs/BENCHMARKS.md, "Formation at
// scale").
func DefaultLocalConfig() *Config {
	ml := memberlist.DefaultLocalConfig()
	ml.ProbeInterval = 500 * time.Millisecond
	ml.ProbeTimeout = 200 * time.Millisecond
	ml.IndirectChecks = 3
	ml.SuspicionMult = 3
	ml.SuspicionMaxTimeoutMult = 3
	ml.GossipInterval = 50 * time.Millisecond
	ml.GossipNodes = 3
	ml.RetransmitMult = 3
	ml.PushPullInterval = 5 * time.Second
	ml.TCPTimeout = time.Second
	ml.GossipToTheDeadTime = 5 * time.Second
	// Gossip packets of up to 8 KiB (below) carry many messages each; a
	// forming cluster of a few hundred overflows memberlist's default
	// queue of 1024, and the alive messages it drops are refutations:
	// healthy members then die.
	ml.HandoffQueueDepth = 8192
	ml.UDPBufferSize = 8192 // loopback and jumbo frames: a 100-member certificate fits one packet
	// No LZW on a fast link: it saves bytes nobody pays for, and each
	// compressed packet allocates a fresh dictionary (a third of the CPU
	// of a 100-node cluster in one process). Receivers still read
	// compressed packets from peers with other profiles.
	ml.EnableCompression = false
	c := defaults("local", ml, 30*time.Second)
	c.ViewInterval = 250 * time.Millisecond
	c.ReconnectInterval = time.Second
	c.CallStagger = 20 * time.Millisecond
	c.ChangeCoalesce = 500 * time.Millisecond
	c.LeaderPingInterval, c.LeaderTimeout = 100*time.Millisecond, 500*time.Millisecond
	return c
}

// DefaultLANConfig uses memberlist's LAN timing (probe every 1 s, suspicion
// 4 × log10(N) × 1 s) and a leader watch of 500 ms pings and a 2.5 s
// timeout: a leader's failure is detected in about 2.5 s at any N, robust
// on busy networks.
func DefaultLANConfig() *Config {
	c := defaults("lan", memberlist.DefaultLANConfig(), time.Minute)
	c.ReconnectInterval = 10 * time.Second
	c.ViewInterval = time.Second
	c.CallStagger = 100 * time.Millisecond
	c.ChangeCoalesce = time.Second
	c.LeaderPingInterval, c.LeaderTimeout = 500*time.Millisecond, 2500*time.Millisecond
	return c
}

// DefaultWANConfig uses memberlist's WAN timing (probe every 5 s) and a
// leader watch of 2 s pings and a 10 s timeout.
func DefaultWANConfig() *Config {
	c := defaults("wan", memberlist.DefaultWANConfig(), 5*time.Minute)
	c.ReconnectInterval = 30 * time.Second
	c.ViewInterval = 5 * time.Second
	c.CallStagger = 500 * time.Millisecond
	c.ChangeCoalesce = 5 * time.Second
	c.LeaderPingInterval, c.LeaderTimeout = 2*time.Second, 10*time.Second
	return c
}

// DefaultFloorWait is the profiles' FloorWait: memberlist's push/pull on
// join brings the peers' certificates within a round trip, so 2 s is
// ample, and it delays only a node's first leadership after a start
// without a floor.
const DefaultFloorWait = 2 * time.Second

// ConfigFor returns the default configuration of a profile.
func ConfigFor(profile string) (*Config, error) {
	switch profile {
	case "local", "":
		return DefaultLocalConfig(), nil
	case "lan":
		return DefaultLANConfig(), nil
	case "wan":
		return DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("unknown profile %q: want local, lan or wan", profile)
}

func defaults(profile string, ml *memberlist.Config, refresh time.Duration) *Config {
	return &Config{
		Cluster:         "default",
		BindAddr:        "127.0.0.1",
		Profile:         profile,
		Memberlist:      ml,
		RefreshInterval: refresh,
		PendingFor:      3 * time.Second,
		RetryMin:        100 * time.Millisecond,
		RetryMax:        5 * time.Second,
		CallTimeout:     5 * time.Second,
		ReconnectFor:    24 * time.Hour,
		LeaseMargin:     50 * time.Millisecond,
		FloorWait:       DefaultFloorWait,
	}
}
