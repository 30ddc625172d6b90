package replica

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
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
	// Listener accepts raft traffic (TCP). The node owns it from Open on
	// and closes it on Shutdown.
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

// Node is one running replica: raft over the sealed store and the TLS
// transport. Its methods are safe for concurrent use.
type Node struct {
	cfg Config
}

// Open starts a replica.
func Open(cfg Config) (*Node, error) { return nil, errors.New("not yet") }

// Addr is the advertised raft address.
func (n *Node) Addr() string { return "" }

// Apply appends cmd to the log and returns the FSM's response once it is
// applied here. ErrNotLeader if this replica does not lead.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) { return nil, errors.New("not yet") }

// ReadIndex is a linearizable read barrier.
func (n *Node) ReadIndex(ctx context.Context) error { return errors.New("not yet") }

// Barrier waits until every entry of earlier terms is applied (leader only).
func (n *Node) Barrier(ctx context.Context) error { return errors.New("not yet") }

// IsLeader reports whether this replica is the leader.
func (n *Node) IsLeader() bool { return false }

// Leader returns the known leader's ID and raft address, empty if none.
func (n *Node) Leader() (id, addr string) { return "", "" }

// LeadershipChanges reports this replica gaining (true) or losing (false)
// leadership.
func (n *Node) LeadershipChanges() <-chan bool { return nil }

// AddVoter adds (or updates) a voting member (leader only).
func (n *Node) AddVoter(ctx context.Context, id, addr string) error { return errors.New("not yet") }

// Remove removes a member (leader only).
func (n *Node) Remove(ctx context.Context, id string) error { return errors.New("not yet") }

// Status returns this replica's view of the group.
func (n *Node) Status() Status { return Status{} }

// Tampered returns a non-nil error once the store reported tampering.
func (n *Node) Tampered() error { return nil }

// Shutdown stops the replica; calling it again does nothing.
func (n *Node) Shutdown() error { return nil }
