package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/api"
)

// The replicated runtime of the chaos harness: three `vouch enclave`
// replicas (real processes, SIMULATED attestation under one shared root),
// each with its raft traffic routed through a TCP proxy in this process so
// that a replica can be cut off from the others. A replica listens for
// raft on its own port and advertises its proxy's address
// (--raft-advertise), so every raft connection to it crosses the proxy.
// The proxy tells which replica dialled by the process that owns the
// connecting socket (its inode from sock_diag or /proc/net/tcp, then
// /proc/PID/fd): a partition of
// replica i then refuses and cuts every connection to i and from i, in
// both directions, while the other replicas go on talking. Only raft is
// cut: every replica's HTTP API stays reachable by clients and nodes (a
// cut-off replica then answers them as a replica without a leader does).

// replicaTimeout is the replicas' raft heartbeat and election timeout
// (--raft-timeout; the leader lease is half of it). The default, 300 ms,
// is too tight for three replicas and ten nodes on a loaded 2-core host.
const replicaTimeout = time.Second

type replica struct {
	idx      int
	id       string
	apiPort  int
	raftPort int          // where the replica listens for raft
	proxy    net.Listener // where the others dial it
	dataDir  string
	old      string // an older copy of dataDir, taken at the start
	args     []string
	proc     *proc
	pid      atomic.Int64 // the running process's, 0 when down: read by the proxies
	up       bool
}

func (r *replica) url() string { return "http://127.0.0.1:" + strconv.Itoa(r.apiPort) }

type replicaSet struct {
	h    *harness
	root string
	reps []*replica

	mu       sync.Mutex
	isolated map[int]bool
	conns    map[*proxied]struct{}
	// unknown counts proxied connections whose dialler was not found
	// among the replicas' processes.
	unknown atomic.Int64
	// refused counts connections a partition refused or cut.
	refused atomic.Int64
}

// proxied is one raft connection through a proxy, from replica src (-1
// when unknown) to replica dst.
type proxied struct {
	src, dst int
	a, b     net.Conn
}

func (rs *replicaSet) urls() []string {
	var u []string
	for _, r := range rs.reps {
		u = append(u, r.url())
	}
	return u
}

// startReplicas starts a service of len(ports)/2 replicas: the first
// bootstraps it in DIR/vouch-data (so that `vouch` in DIR finds the owner
// credential), the others join through it. Then each replica in turn is
// stopped, its data directory copied (the older copy that a rollback
// restores later) and started again.
func (h *harness) startReplicas(ports []int) error {
	n := len(ports) / 2
	rs := &replicaSet{h: h, root: filepath.Join(h.dir, "simulated-root"), isolated: map[int]bool{}, conns: map[*proxied]struct{}{}}
	h.rs = rs
	if err := os.MkdirAll(rs.root, 0o700); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		r := &replica{idx: i, id: "r" + strconv.Itoa(i+1), apiPort: ports[i], raftPort: ports[n+i]}
		r.dataDir = filepath.Join(h.dir, "replica-"+r.id)
		if i == 0 {
			r.dataDir = filepath.Join(h.dir, "vouch-data")
		}
		r.old = r.dataDir + ".old"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		r.proxy = ln
		r.args = []string{"enclave", "--listen", "127.0.0.1:" + strconv.Itoa(r.apiPort), "--data", r.dataDir,
			"--replica-id", r.id, "--raft-listen", "127.0.0.1:" + strconv.Itoa(r.raftPort), "--raft-advertise", ln.Addr().String(),
			"--raft-timeout", replicaTimeout.String(), "--simulated-root", rs.root, "--log-format", "json",
			"--insecure-http"} // loopback; the harness reads the replicas directly
		rs.reps = append(rs.reps, r)
	}
	for _, r := range rs.reps { // the list is complete: the proxies read it
		go rs.serveProxy(r)
	}
	for i, r := range rs.reps {
		extra := []string{"--bootstrap"}
		if i > 0 {
			extra = []string{"--join", rs.reps[0].url()}
		}
		if err := rs.start(r, extra...); err != nil {
			return err
		}
		if err := poll(h.ctx, 60*time.Second, func() error { return rs.agreed(0, i+1) }); err != nil {
			return fmt.Errorf("forming the replica set: %w", err)
		}
	}
	for _, r := range rs.reps {
		rs.kill(r)
		if out, err := exec.Command("cp", "-a", r.dataDir, r.old).CombinedOutput(); err != nil {
			return fmt.Errorf("copying %s: %v: %s", r.dataDir, err, out)
		}
		if err := rs.start(r); err != nil {
			return err
		}
		if err := rs.converge(time.Now(), 60*time.Second); err != nil {
			return fmt.Errorf("after copying %s: %w", r.id, err)
		}
	}
	h.rtUp = true
	return nil
}

// start starts a replica with its flags and extra, and waits until it
// answers GET /v1/replicas (with any status: a replica that refuses to
// serve still answers).
func (rs *replicaSet) start(r *replica, extra ...string) error {
	p, err := rs.h.startProc("replica-"+r.id, append(append([]string{}, r.args...), extra...)...)
	if err != nil {
		return err
	}
	r.proc, r.up = p, true
	r.pid.Store(int64(p.cmd.Process.Pid))
	return poll(rs.h.ctx, 30*time.Second, func() error {
		if !p.alive() {
			return errStop{fmt.Errorf("replica %s exited at start:\n%s", r.id, tail(filepath.Join(rs.h.dir, "replica-"+r.id+".out"), 20))}
		}
		resp, err := httpc.Get(r.url() + "/v1/replicas")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// kill SIGKILLs a replica and cuts its proxied connections (the kernel
// would reset them; the proxy's other half would linger).
func (rs *replicaSet) kill(r *replica) {
	if !r.up {
		return
	}
	r.proc.kill()
	r.pid.Store(0)
	r.up = false
	rs.cut(r.idx)
}

func (rs *replicaSet) stopAll() {
	for _, r := range rs.reps {
		rs.kill(r)
		r.proxy.Close()
	}
}

// partition cuts replica i off from the others, heal reconnects it.
func (rs *replicaSet) partition(i int) {
	rs.mu.Lock()
	rs.isolated[i] = true
	rs.mu.Unlock()
	rs.cut(i)
}

func (rs *replicaSet) heal() {
	rs.mu.Lock()
	clear(rs.isolated)
	rs.mu.Unlock()
}

func (rs *replicaSet) partitioned() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.isolated) > 0
}

// cut closes every proxied connection from or to replica i.
func (rs *replicaSet) cut(i int) {
	rs.mu.Lock()
	var gone []*proxied
	for c := range rs.conns {
		if c.src == i || c.dst == i {
			gone = append(gone, c)
			delete(rs.conns, c)
		}
	}
	rs.mu.Unlock()
	for _, c := range gone {
		c.a.Close()
		c.b.Close()
	}
}

func (rs *replicaSet) serveProxy(r *replica) {
	for {
		a, err := r.proxy.Accept()
		if err != nil {
			return
		}
		go rs.forward(r, a)
	}
}

func (rs *replicaSet) forward(r *replica, a net.Conn) {
	src := rs.source(a)
	if src < 0 {
		rs.unknown.Add(1)
	}
	rs.mu.Lock()
	blocked := rs.isolated[r.idx] || (src >= 0 && rs.isolated[src])
	rs.mu.Unlock()
	if blocked {
		rs.refused.Add(1)
		a.Close()
		return
	}
	b, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.raftPort), 2*time.Second)
	if err != nil {
		a.Close()
		return
	}
	c := &proxied{src: src, dst: r.idx, a: a, b: b}
	rs.mu.Lock()
	// A partition may have begun since the check above.
	if rs.isolated[r.idx] || (src >= 0 && rs.isolated[src]) {
		rs.mu.Unlock()
		rs.refused.Add(1)
		a.Close()
		b.Close()
		return
	}
	rs.conns[c] = struct{}{}
	rs.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(a, b)
	go pipe(b, a)
	<-done
	<-done
	rs.mu.Lock()
	delete(rs.conns, c)
	rs.mu.Unlock()
}

// source returns the index of the replica whose process dialled conn
// (the owner of the socket at its remote address), or -1.
func (rs *replicaSet) source(conn net.Conn) int {
	ra, ok := conn.RemoteAddr().(*net.TCPAddr)
	la, ok2 := conn.LocalAddr().(*net.TCPAddr)
	if !ok || !ok2 {
		return -1
	}
	inode := socketInode(ra.Port, la.Port)
	if inode == "" {
		return -1
	}
	want := "socket:[" + inode + "]"
	for _, r := range rs.reps {
		pid := r.pid.Load()
		if pid == 0 {
			continue
		}
		fdDir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && l == want {
				return r.idx
			}
		}
	}
	return -1
}

// socketInode returns the inode of the socket bound to 127.0.0.1:local
// and connected to 127.0.0.1:remote: by an exact sock_diag query over
// netlink, else by a scan of /proc/net/tcp (slow on a host with many
// sockets: the kernel writes out every one).
func socketInode(local, remote int) string {
	if ino, err := diagInode(local, remote); err == nil {
		return strconv.FormatUint(uint64(ino), 10)
	}
	return procInode(local, remote)
}

// procInode is socketInode by a scan of /proc/net/tcp.
func procInode(local, remote int) string {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	l := fmt.Sprintf("0100007F:%04X", local)
	rp := fmt.Sprintf(":%04X", remote)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && fs[1] == l && strings.HasSuffix(fs[2], rp) {
			return fs[9]
		}
	}
	return ""
}

// status reads GET /v1/replicas of one replica.
func (rs *replicaSet) status(r *replica) (*api.ReplicaSet, error) {
	var st api.ReplicaSet
	if err := getJSON(r.url()+"/v1/replicas", &st); err != nil {
		return nil, fmt.Errorf("%s: %w", r.id, err)
	}
	return &st, nil
}

// leader returns the replica that the live replicas agree leads, or nil.
func (rs *replicaSet) leader() *replica {
	for _, r := range rs.reps {
		if !r.up {
			continue
		}
		if st, err := rs.status(r); err == nil && st.Leader == st.Self && st.State == "Leader" {
			return r
		}
	}
	return nil
}

// commitIndex is the highest commit index a live replica reports.
func (rs *replicaSet) commitIndex() uint64 {
	var c uint64
	for _, r := range rs.reps {
		if !r.up {
			continue
		}
		if st, err := rs.status(r); err == nil {
			c = max(c, st.CommitIndex)
		}
	}
	return c
}

// agreed checks that every live replica names one leader, which is live
// and leads, that the configuration has voters voters, and that every live
// replica applied the log up to target.
func (rs *replicaSet) agreed(target uint64, voters int) error {
	leader := ""
	for _, r := range rs.reps {
		if !r.up {
			continue
		}
		st, err := rs.status(r)
		if err != nil {
			return err
		}
		if st.Leader == "" {
			return fmt.Errorf("%s knows no leader (state %s)", r.id, st.State)
		}
		if leader == "" {
			leader = st.Leader
		} else if st.Leader != leader {
			return fmt.Errorf("%s says leader %s, another %s", r.id, st.Leader, leader)
		}
		if st.AppliedIndex < target {
			return fmt.Errorf("%s applied %d of %d", r.id, st.AppliedIndex, target)
		}
		n := 0
		for _, m := range st.Replicas {
			if m.Suffrage == "Voter" {
				n++
			}
		}
		if n != voters {
			return fmt.Errorf("%s sees %d voters, want %d", r.id, n, voters)
		}
	}
	if leader == "" {
		return errors.New("no live replica")
	}
	for _, r := range rs.reps {
		if r.id == leader {
			if !r.up {
				return fmt.Errorf("leader %s is down", leader)
			}
			st, err := rs.status(r)
			if err != nil {
				return err
			}
			if st.State != "Leader" {
				return fmt.Errorf("%s is named leader but is %s", leader, st.State)
			}
			// The leader serves: its healthz answers 200.
			resp, err := httpc.Get(r.url() + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("leader %s: healthz %s", leader, resp.Status)
			}
			return nil
		}
	}
	return fmt.Errorf("leader %s is not a replica of the harness", leader)
}

// converge waits until the replicas agree and every live one applied the
// log as far as the highest commit index seen at from's call.
func (rs *replicaSet) converge(from time.Time, bound time.Duration) error {
	target := rs.commitIndex()
	var last error
	err := poll(rs.h.ctx, bound-time.Since(from), func() error {
		last = rs.agreed(target, len(rs.reps))
		return last
	})
	if err != nil {
		return fmt.Errorf("replicas did not converge within %v: %w", bound, err)
	}
	return nil
}

// functionIDs lists GET /v1/functions of one replica, with the owner
// credential (a read: every replica serves it from its own state).
func (rs *replicaSet) functionIDs(r *replica, owner string) ([]string, error) {
	req, err := http.NewRequest(http.MethodGet, r.url()+"/v1/functions", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+owner)
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /v1/functions: %s: %.200s", r.id, resp.Status, body)
	}
	var l api.FunctionList
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range l.Functions {
		ids = append(ids, f.FunctionID)
	}
	return ids, nil
}
