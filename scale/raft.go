package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// RaftTiming is the baseline's timing. DefaultRaftTiming matches vouch's
// local profile (see docs/BENCHMARKS.md, "Failover vs N").
type RaftTiming struct {
	HeartbeatTimeout   time.Duration `json:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `json:"election_timeout"`
	LeaderLeaseTimeout time.Duration `json:"leader_lease_timeout"`
	CommitTimeout      time.Duration `json:"commit_timeout"`
	PreVote            bool          `json:"pre_vote"`
}

// DefaultRaftTiming: a follower that hears nothing for 500 ms to 1 s
// (HeartbeatTimeout, randomised up to twice) starts an election, about
// the silence after which vouch's local profile declares a member dead
// (a failed probe round of 200 ms plus 600 ms of suspicion); the leader
// steps down after 250 ms without a quorum; CommitTimeout is raft's
// default of 50 ms, the same as the local profile's GossipInterval.
func DefaultRaftTiming() RaftTiming {
	return RaftTiming{HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, CommitTimeout: 50 * time.Millisecond, PreVote: true}
}

// RaftCounts count election RPCs sent by a raft node.
type RaftCounts struct {
	PreVotes, Votes, Appends atomic.Int64
	// Terms records the distinct candidate terms seen in vote requests.
	mu    sync.Mutex
	terms map[uint64]bool
}

func (c *RaftCounts) term(t uint64) {
	c.mu.Lock()
	if c.terms == nil {
		c.terms = map[uint64]bool{}
	}
	c.terms[t] = true
	c.mu.Unlock()
}

// TermsAbove returns how many distinct candidate terms above t were seen.
func (c *RaftCounts) TermsAbove(t uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for x := range c.terms {
		if x > t {
			k++
		}
	}
	return k
}

// countingRaftTransport counts the RPCs a raft node sends. It keeps the
// pre-vote capability of the NetworkTransport it wraps.
type countingRaftTransport struct {
	*raft.NetworkTransport
	c *RaftCounts
}

func (t *countingRaftTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	t.c.Votes.Add(1)
	t.c.term(args.Term)
	return t.NetworkTransport.RequestVote(id, target, args, resp)
}

func (t *countingRaftTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	t.c.PreVotes.Add(1)
	return t.NetworkTransport.RequestPreVote(id, target, args, resp)
}

func (t *countingRaftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.c.Appends.Add(1)
	return t.NetworkTransport.AppendEntries(id, target, args, resp)
}

// crashableStream is raft's TCP stream layer (what raft.NewTCPTransport
// builds: a TCP listener, and net.DialTimeout to peers) that remembers
// every connection, so that Kill can close them all as a crashed process's
// kernel would. raft's NetworkTransport.Close closes only the listener:
// pooled and accepted connections stay open, peers keep writing into them,
// and every killed server leaks descriptors.
type crashableStream struct {
	ln    *net.TCPListener
	mu    sync.Mutex
	conns map[net.Conn]bool
	dead  bool
}

func newCrashableStream() (*crashableStream, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &crashableStream{ln: ln, conns: map[net.Conn]bool{}}, nil
}

func (s *crashableStream) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		c.Close()
		return nil, net.ErrClosed
	}
	s.conns[c] = true
	return c, nil
}

func (s *crashableStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *crashableStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *crashableStream) Close() error   { return s.ln.Close() }
func (s *crashableStream) Addr() net.Addr { return s.ln.Addr() }

// crash closes the listener and every connection.
func (s *crashableStream) crash() {
	s.mu.Lock()
	s.dead = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	s.ln.Close()
	for c := range conns {
		c.Close()
	}
}

// RaftCluster is N raft servers on loopback TCP with in-memory stores.
type RaftCluster struct {
	Rafts  []*raft.Raft
	Trans  []*raft.NetworkTransport
	IDs    []raft.ServerID
	stream []*crashableStream
	Counts *RaftCounts
	killSet
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopFSM) Restore(r io.ReadCloser) error       { return r.Close() }
func (nopSnap) Persist(s raft.SnapshotSink) error  { return s.Close() }
func (nopSnap) Release()                           {}

type nopSnap struct{}

// StartRaft starts n raft servers, bootstrapped with all of them as voters.
func StartRaft(n int, t RaftTiming) (_ *RaftCluster, err error) {
	c := &RaftCluster{Counts: &RaftCounts{}, killSet: newKillSet(n)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var servers []raft.Server
	for i := range n {
		st, err := newCrashableStream()
		if err != nil {
			return nil, err
		}
		tr := raft.NewNetworkTransport(st, 3, 2*time.Second, io.Discard)
		c.stream = append(c.stream, st)
		c.Trans = append(c.Trans, tr)
		id := raft.ServerID(fmt.Sprintf("r%03d", i))
		c.IDs = append(c.IDs, id)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: tr.LocalAddr()})
	}
	for i := range n {
		conf := raft.DefaultConfig()
		conf.LocalID = c.IDs[i]
		conf.HeartbeatTimeout = t.HeartbeatTimeout
		conf.ElectionTimeout = t.ElectionTimeout
		conf.LeaderLeaseTimeout = t.LeaderLeaseTimeout
		conf.CommitTimeout = t.CommitTimeout
		conf.PreVoteDisabled = !t.PreVote
		conf.Logger = hclog.NewNullLogger()
		logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, c.Trans[i], raft.Configuration{Servers: servers}); err != nil {
			return nil, err
		}
		r, err := raft.NewRaft(conf, nopFSM{}, logs, logs, snaps, &countingRaftTransport{NetworkTransport: c.Trans[i], c: c.Counts})
		if err != nil {
			return nil, err
		}
		c.Rafts = append(c.Rafts, r)
	}
	return c, nil
}

// Agreement reports whether every server in idx names one leader other
// than exclude, and that leader is in state Leader.
func (c *RaftCluster) Agreement(idx []int, exclude raft.ServerID) (raft.ServerID, bool) {
	var leader raft.ServerID
	for k, i := range idx {
		_, id := c.Rafts[i].LeaderWithID()
		if id == "" || id == exclude || (k > 0 && id != leader) {
			return "", false
		}
		leader = id
	}
	for _, i := range idx {
		if c.IDs[i] == leader {
			return leader, c.Rafts[i].State() == raft.Leader
		}
	}
	return "", false
}

// Holders counts the servers in idx that name a leader other than exclude.
func (c *RaftCluster) Holders(idx []int, exclude raft.ServerID) int {
	k := 0
	for _, i := range idx {
		if _, id := c.Rafts[i].LeaderWithID(); id != "" && id != exclude {
			k++
		}
	}
	return k
}

// WaitStable waits until every live server names one leader.
func (c *RaftCluster) WaitStable(ctx context.Context, within time.Duration) (raft.ServerID, error) {
	deadline := time.Now().Add(within)
	for {
		if l, ok := c.Agreement(c.Alive(), ""); ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("scale: raft did not elect a leader within %s", within)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Index returns the index of server id, or -1.
func (c *RaftCluster) Index(id raft.ServerID) int { return slices.Index(c.IDs, id) }

// Kill crashes server i: every socket it has closes at once (as the
// kernel does for a crashed process), then raft stops, without any
// leadership transfer.
func (c *RaftCluster) Kill(i int) {
	if !c.markKilled(i) {
		return
	}
	c.stream[i].crash()
	f := c.Rafts[i].Shutdown()
	c.Trans[i].Close()
	f.Error()
}

// Close shuts every server down, in parallel.
func (c *RaftCluster) Close() {
	var wg sync.WaitGroup
	for i := range c.Trans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < len(c.Rafts) {
				c.Kill(i)
			} else {
				c.stream[i].crash()
				c.Trans[i].Close()
			}
		}()
	}
	wg.Wait()
}
