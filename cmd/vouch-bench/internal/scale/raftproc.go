package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raft servers in child processes. One process holding 100 raft servers
// holds both ends of every connection between them, about 2N² descriptors,
// and the harness hit this machine's hard limit of 20,000 (which a
// container's root cannot raise). StartRaftProcs spreads the servers over
// child processes instead, each a copy of this binary hosting a slice of
// them on the same loopback TCP (raft's NetworkTransport, as StartRaft):
// the parent tells each child every server's address, the children
// report every change of a server's leader, state or term, and the
// parent keeps a mirror that the failover trial polls as it polls
// in-process servers. A child samples its servers every millisecond, so
// the mirror lags them by about a millisecond plus a pipe write.

// RaftChildEnv, set in a process's environment, makes it a raft child:
// the command's main must call RaftChildMain before anything else.
const RaftChildEnv = "VOUCH_BENCH_RAFT_CHILD"

// IsRaftChild reports whether this process was started as a raft child.
func IsRaftChild() bool { return os.Getenv(RaftChildEnv) == "1" }

// raftMsg is one line between parent and child, either way.
type raftMsg struct {
	// parent → child: the setup, then the peers, then kills.
	Lo, Hi, N int         `json:",omitempty"`
	Timing    *RaftTiming `json:",omitempty"`
	Peers     []string    `json:",omitempty"`
	Kill      *int        `json:",omitempty"`
	// child → parent: its servers' addresses, then states.
	Addrs  []string `json:",omitempty"`
	I      *int     `json:",omitempty"`
	Leader string   `json:",omitempty"`
	State  string   `json:",omitempty"`
	Term   uint64   `json:",omitempty"`
	Err    string   `json:",omitempty"`
}

// RaftChildMain runs a raft child on stdin and stdout, and exits when
// stdin closes.
func RaftChildMain() {
	if err := raftChild(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "raft child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func raftChild(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m raftMsg) {
		mu.Lock()
		enc.Encode(m)
		mu.Unlock()
	}
	var setup raftMsg
	if err := dec.Decode(&setup); err != nil {
		return fmt.Errorf("reading the setup: %w", err)
	}
	if setup.Timing == nil || setup.Lo < 0 || setup.Hi > setup.N || setup.Lo >= setup.Hi {
		return fmt.Errorf("bad setup %+v", setup)
	}
	c := &RaftCluster{Counts: &RaftCounts{}, killSet: newKillSet(setup.Hi - setup.Lo)}
	defer c.Close()
	var addrs []string
	for range setup.Hi - setup.Lo {
		tr, err := c.listen()
		if err != nil {
			return err
		}
		addrs = append(addrs, string(tr.LocalAddr()))
		c.IDs = append(c.IDs, raftID(setup.Lo+len(c.IDs)))
	}
	send(raftMsg{Addrs: addrs})
	var peers raftMsg
	if err := dec.Decode(&peers); err != nil {
		return fmt.Errorf("reading the peers: %w", err)
	}
	if len(peers.Peers) != setup.N {
		return fmt.Errorf("got %d peers, want %d", len(peers.Peers), setup.N)
	}
	var servers []raft.Server
	for i, a := range peers.Peers {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(i), Address: raft.ServerAddress(a)})
	}
	for k := range setup.Hi - setup.Lo {
		if err := c.start(setup.Lo+k, k, *setup.Timing, servers); err != nil {
			return err
		}
	}
	// Report every change, sampling each server every millisecond.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		type st struct {
			leader, state string
			term          uint64
		}
		last := make([]st, len(c.Rafts))
		first := true
		for {
			for k, r := range c.Rafts {
				if c.isKilled(k) {
					continue
				}
				_, id := r.LeaderWithID()
				s := st{string(id), r.State().String(), r.CurrentTerm()}
				if first || s != last[k] {
					last[k] = s
					i := setup.Lo + k
					send(raftMsg{I: &i, Leader: s.leader, State: s.state, Term: s.term})
				}
			}
			first = false
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for {
		var m raftMsg
		if err := dec.Decode(&m); err != nil {
			return nil // the parent closed stdin (or died): stop
		}
		if m.Kill != nil {
			k := *m.Kill - setup.Lo
			if k >= 0 && k < len(c.Rafts) {
				c.Kill(k)
			}
		}
	}
}

func raftID(i int) raft.ServerID { return raft.ServerID(fmt.Sprintf("r%03d", i)) }

// isKilled reports whether server i was killed.
func (k *killSet) isKilled(i int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed[i]
}

// raftMirror is what the parent knows of one server.
type raftMirror struct {
	leader, state string
	term          uint64
}

// RaftProcs is N raft servers spread over child processes.
type RaftProcs struct {
	IDs   []raft.ServerID
	procs []*raftProc
	owner []int // server i's process
	mu    sync.Mutex
	st    []raftMirror
	killSet
}

type raftProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	enc    *json.Encoder
	encMu  sync.Mutex
	read   chan struct{} // closed when its output ends
	stderr strings.Builder
}

func (p *raftProc) send(m raftMsg) error {
	p.encMu.Lock()
	defer p.encMu.Unlock()
	return p.enc.Encode(m)
}

// StartRaftProcs starts n raft servers in child processes of at most
// perProc each, bootstrapped with all of them as voters.
func StartRaftProcs(n, perProc int, t RaftTiming) (_ *RaftProcs, err error) {
	if perProc < 1 {
		return nil, errors.New("scale: raft servers per process must be at least 1")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &RaftProcs{st: make([]raftMirror, n), owner: make([]int, n), killSet: newKillSet(n)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range n {
		c.IDs = append(c.IDs, raftID(i))
	}
	addrs := make([]string, 0, n)
	var decs []*json.Decoder
	for lo := 0; lo < n; lo += perProc {
		hi := min(n, lo+perProc)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), RaftChildEnv+"=1")
		p := &raftProc{cmd: cmd, read: make(chan struct{})}
		cmd.Stderr = &limitedWriter{b: &p.stderr, n: 4096}
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("scale: starting a raft child: %w", err)
		}
		c.procs = append(c.procs, p)
		p.enc = json.NewEncoder(p.stdin)
		tt := t
		if err := p.send(raftMsg{Lo: lo, Hi: hi, N: n, Timing: &tt}); err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bufio.NewReader(stdout))
		var m raftMsg
		if err := dec.Decode(&m); err != nil || len(m.Addrs) != hi-lo {
			return nil, fmt.Errorf("scale: a raft child did not report its addresses (%v): %s", err, p.stderr.String())
		}
		addrs = append(addrs, m.Addrs...)
		decs = append(decs, dec)
		for i := lo; i < hi; i++ {
			c.owner[i] = len(c.procs) - 1
		}
	}
	for k, p := range c.procs {
		if err := p.send(raftMsg{Peers: addrs}); err != nil {
			return nil, err
		}
		go c.follow(p, decs[k])
	}
	return c, nil
}

// follow applies a child's reports to the mirror until its output ends.
func (c *RaftProcs) follow(p *raftProc, dec *json.Decoder) {
	defer close(p.read)
	for {
		var m raftMsg
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.I == nil || *m.I < 0 || *m.I >= len(c.st) {
			continue
		}
		c.mu.Lock()
		c.st[*m.I] = raftMirror{m.Leader, m.State, m.Term}
		c.mu.Unlock()
	}
}

// Agreement reports whether every server in idx names one leader other
// than exclude, and that leader is in state Leader.
func (c *RaftProcs) Agreement(idx []int, exclude raft.ServerID) (raft.ServerID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var leader string
	for k, i := range idx {
		id := c.st[i].leader
		if id == "" || id == string(exclude) || (k > 0 && id != leader) {
			return "", false
		}
		leader = id
	}
	li := slices.Index(c.IDs, raft.ServerID(leader))
	if li < 0 {
		return "", false
	}
	return raft.ServerID(leader), c.st[li].state == raft.Leader.String()
}

// Holders counts the servers in idx that name a leader other than exclude.
func (c *RaftProcs) Holders(idx []int, exclude raft.ServerID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, i := range idx {
		if id := c.st[i].leader; id != "" && id != string(exclude) {
			k++
		}
	}
	return k
}

// Index returns the index of server id, or -1.
func (c *RaftProcs) Index(id raft.ServerID) int { return slices.Index(c.IDs, id) }

// Kill crashes server i in its process (RaftCluster.Kill there).
func (c *RaftProcs) Kill(i int) {
	if !c.markKilled(i) {
		return
	}
	k := i
	c.procs[c.owner[i]].send(raftMsg{Kill: &k})
}

// Close ends every child: stdin closed, then killed if it has not exited
// within 10 s.
func (c *RaftProcs) Close() {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stdin.Close()
			exited := make(chan struct{})
			go func() { p.cmd.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-exited
			}
		}()
	}
	wg.Wait()
}

// describe summarises the servers' states for an error message.
func (c *RaftProcs) describe(idx []int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int{}
	var maxTerm uint64
	for _, i := range idx {
		s := c.st[i]
		maxTerm = max(maxTerm, s.term)
		counts[fmt.Sprintf("%s, leader %q, term %d", s.state, s.leader, s.term)]++
	}
	var b strings.Builder
	writeStates(&b, counts)
	fmt.Fprintf(&b, "highest term %d; %d child processes", maxTerm, len(c.procs))
	// Descriptors each child has open, against the limit it inherited: a
	// child near its limit measures the harness, not raft.
	var fds []string
	for _, p := range c.procs {
		if p.cmd.Process == nil {
			continue
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)); err == nil {
			fds = append(fds, fmt.Sprint(len(ents)))
		}
	}
	if len(fds) > 0 {
		_, limit := Descriptors()
		fmt.Fprintf(&b, " with %s descriptors open (limit %d)", strings.Join(fds, ", "), limit)
	}
	return b.String()
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
	n  int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// raftGroup is what a failover trial needs of raft servers, in this
// process (RaftCluster) or in children (RaftProcs).
type raftGroup interface {
	Agreement(idx []int, exclude raft.ServerID) (raft.ServerID, bool)
	Holders(idx []int, exclude raft.ServerID) int
	Alive() []int
	Index(id raft.ServerID) int
	Kill(i int)
	Close()
	describe(idx []int) string
}

// waitRaftStable waits until every live server names one leader, which
// is in state Leader.
func waitRaftStable(ctx context.Context, c raftGroup, within time.Duration) (raft.ServerID, error) {
	deadline := time.Now().Add(within)
	for {
		if l, ok := c.Agreement(c.Alive(), ""); ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			alive := c.Alive()
			return "", fmt.Errorf("scale: %d raft servers did not agree on a leader within %s: %s", len(alive), within, c.describe(alive))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
