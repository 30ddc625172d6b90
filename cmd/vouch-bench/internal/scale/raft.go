package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// RaftTiming is the baseline's timing.
type RaftTiming struct {
	HeartbeatTimeout   time.Duration `json:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `json:"election_timeout"`
	LeaderLeaseTimeout time.Duration `json:"leader_lease_timeout"`
	CommitTimeout      time.Duration `json:"commit_timeout"`
	PreVote            bool          `json:"pre_vote"`
}

// DefaultRaftTiming is `vouch-bench failover`'s default, kept so that its
// earlier runs can be repeated: HeartbeatTimeout 500 ms, so a follower
// that hears nothing starts an election after a random 500 ms to 1 s.
// That matches vouch's local profile (the leader watch's fixed 500 ms) on
// the minimum silence, not the maximum: vouch gives up sooner. For
// settings equal on the maximum silence use Silence.RaftTiming
// (`vouch-bench tradeoff`, docs/BENCHMARKS.md). The leader steps down
// after 250 ms without a quorum; CommitTimeout is raft's default 50 ms.
func DefaultRaftTiming() RaftTiming {
	return RaftTiming{HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, CommitTimeout: 50 * time.Millisecond, PreVote: true}
}

// RaftCounts count the election RPCs raft nodes send, and the responses
// they get back: a request and its response are two messages, as two
// gossip packets are.
type RaftCounts struct {
	PreVotes, Votes, Appends atomic.Int64
	// PreVoteResps and VoteResps count the requests that were answered
	// (the RPC returned a response, granted or not).
	PreVoteResps, VoteResps atomic.Int64
	// Announces counts, for terms above AnnounceFloor, the first
	// AppendEntries a leader of that term sent to each peer: how a new
	// leader makes itself known, the counterpart of spreading vouch's
	// certificate. AnnounceResps counts those that were answered.
	Announces, AnnounceResps atomic.Int64
	AnnounceFloor            atomic.Uint64

	mu sync.Mutex
	// terms records the distinct candidate terms seen in vote requests;
	// announced the (term, peer) pairs already counted in Announces.
	terms     map[uint64]bool
	announced map[raftAnnounce]bool
}

type raftAnnounce struct {
	term   uint64
	target raft.ServerAddress
}

func (c *RaftCounts) term(t uint64) {
	c.mu.Lock()
	if c.terms == nil {
		c.terms = map[uint64]bool{}
	}
	c.terms[t] = true
	c.mu.Unlock()
}

// announce reports whether an AppendEntries of term to target is the
// first of a term above the floor, and records it.
func (c *RaftCounts) announce(term uint64, target raft.ServerAddress) bool {
	if term <= c.AnnounceFloor.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.announced == nil {
		c.announced = map[raftAnnounce]bool{}
	}
	k := raftAnnounce{term, target}
	if c.announced[k] {
		return false
	}
	c.announced[k] = true
	return true
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

// countingRaftTransport counts the RPCs a raft node sends and the
// responses it gets. It keeps the pre-vote capability of the
// NetworkTransport it wraps.
type countingRaftTransport struct {
	*raft.NetworkTransport
	c *RaftCounts
}

func (t *countingRaftTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	t.c.Votes.Add(1)
	t.c.term(args.Term)
	err := t.NetworkTransport.RequestVote(id, target, args, resp)
	if err == nil {
		t.c.VoteResps.Add(1)
	}
	return err
}

func (t *countingRaftTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	t.c.PreVotes.Add(1)
	err := t.NetworkTransport.RequestPreVote(id, target, args, resp)
	if err == nil {
		t.c.PreVoteResps.Add(1)
	}
	return err
}

func (t *countingRaftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.c.Appends.Add(1)
	first := t.c.announce(args.Term, target)
	if first {
		t.c.Announces.Add(1)
	}
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if first && err == nil {
		t.c.AnnounceResps.Add(1)
	}
	return err
}

// crashableStream is a raft.StreamLayer doing what raft.TCPStreamLayer
// (the layer raft.NewTCPTransport builds) does, a TCP listener on
// 127.0.0.1 and net.DialTimeout to peers, and it also remembers every
// connection, so that Kill can close them all at once, as a crashed
// process's kernel would. raft's NetworkTransport.Close closes only the
// listener: pooled and accepted connections stay open, peers keep writing
// into them and see no failure, and every killed server leaks descriptors.
// The baseline is therefore raft.NewNetworkTransport over this layer: the
// same NetworkTransport type, wire format and connection pool that
// raft.NewTCPTransport returns, over real loopback TCP.
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
		tr, err := c.listen()
		if err != nil {
			return nil, err
		}
		c.IDs = append(c.IDs, raftID(i))
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(i), Address: tr.LocalAddr()})
	}
	for i := range n {
		if err := c.start(i, i, t, servers); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// listen opens the next server's listener and transport.
func (c *RaftCluster) listen() (*raft.NetworkTransport, error) {
	st, err := newCrashableStream()
	if err != nil {
		return nil, err
	}
	tr := raft.NewNetworkTransport(st, 3, 2*time.Second, io.Discard)
	c.stream = append(c.stream, st)
	c.Trans = append(c.Trans, tr)
	return tr, nil
}

// start bootstraps and starts server id of the cluster on transport k.
func (c *RaftCluster) start(id, k int, t RaftTiming, servers []raft.Server) error {
	conf := raft.DefaultConfig()
	conf.LocalID = raftID(id)
	conf.HeartbeatTimeout = t.HeartbeatTimeout
	conf.ElectionTimeout = t.ElectionTimeout
	conf.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	conf.CommitTimeout = t.CommitTimeout
	conf.PreVoteDisabled = !t.PreVote
	conf.Logger = hclog.NewNullLogger()
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	if err := raft.BootstrapCluster(conf, logs, logs, snaps, c.Trans[k], raft.Configuration{Servers: servers}); err != nil {
		return err
	}
	r, err := raft.NewRaft(conf, nopFSM{}, logs, logs, snaps, &countingRaftTransport{NetworkTransport: c.Trans[k], c: c.Counts})
	if err != nil {
		return err
	}
	c.Rafts = append(c.Rafts, r)
	return nil
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
	return waitRaftStable(ctx, c, within)
}

// Index returns the index of server id, or -1.
func (c *RaftCluster) Index(id raft.ServerID) int { return slices.Index(c.IDs, id) }

// describe summarises the servers' raft states for an error message, so
// that a cluster that did not elect can be diagnosed: how many are in
// which state (Follower, Candidate, Leader), which leader they name, at
// which term (the most common five combinations), and the spread of their
// last contact with a leader.
func (c *RaftCluster) describe(idx []int) string {
	counts := map[string]int{}
	var contact []time.Duration
	never := 0
	var maxTerm uint64
	for _, i := range idx {
		r := c.Rafts[i]
		_, leader := r.LeaderWithID()
		st := r.Stats()
		term, _ := strconv.ParseUint(st["term"], 10, 64)
		maxTerm = max(maxTerm, term)
		counts[fmt.Sprintf("%s, leader %q, term %d", r.State(), leader, term)]++
		switch lc := st["last_contact"]; lc {
		case "never":
			never++
		case "0": // a leader's own
		default:
			if d, err := time.ParseDuration(lc); err == nil {
				contact = append(contact, d)
			}
		}
	}
	var b strings.Builder
	writeStates(&b, counts)
	fmt.Fprintf(&b, "highest term %d; ", maxTerm)
	if len(contact) > 0 {
		slices.Sort(contact)
		fmt.Fprintf(&b, "last contact with a leader: min %s, median %s, max %s", contact[0].Round(time.Millisecond),
			contact[len(contact)/2].Round(time.Millisecond), contact[len(contact)-1].Round(time.Millisecond))
	} else {
		b.WriteString("no last contact recorded")
	}
	if never > 0 {
		fmt.Fprintf(&b, ", never for %d", never)
	}
	// Every server of this cluster keeps TCP connections to the peers it
	// talked to, both ends in this process: at N = 100 that can reach the
	// descriptor limit, and then dials fail and servers go unheard.
	if open, limit := Descriptors(); open > 0 {
		fmt.Fprintf(&b, "; this process has %d descriptors open (limit %d)", open, limit)
	}
	return b.String()
}

// Descriptors returns how many file descriptors this process has open
// (from /proc/self/fd; 0 where that is not available) and its limit
// (RLIMIT_NOFILE, which Go raises to the hard limit at start).
func Descriptors() (open, limit int) {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		open = len(ents)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		limit = int(min(rl.Cur, 1<<31-1))
	}
	return open, limit
}

// RaftDescriptors estimates the descriptors an n-server raft cluster can
// need in one process: when most followers time out together, each dials
// every peer for its (pre-)vote and raft's NetworkTransport keeps those
// connections pooled, n(n−1) connections with both ends here, plus a
// listener each. Measured: 20,000 (this machine's limit) reached while
// 100 servers formed.
func RaftDescriptors(n int) int { return 2*n*(n-1) + n }

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
