// Package e2e runs real vouch processes: a runtime and gossip nodes on
// loopback, driven through the CLI and their status endpoints.
package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

var vouchBin string

func TestMain(m *testing.M) {
	root, err := testbuild.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "vouch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vouchBin = filepath.Join(dir, "vouch")
	build := exec.Command("go", "build", "-o", vouchBin, "./cmd/vouch")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building vouch: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running vouch process.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	waitErr error // valid once done is closed
}

type lockedBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// start runs `vouch args...` in dir.
func start(t *testing.T, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, out.String())
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// signal sends sig and waits up to within for the process to exit; it
// returns the exit code (-1 if it did not exit).
func (p *proc) signal(sig os.Signal, within time.Duration) int {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(within):
		return -1
	}
	return p.exitCode()
}

// exitCode is the exit code of a process that has exited.
func (p *proc) exitCode() int {
	<-p.done
	if p.waitErr == nil {
		return 0
	}
	if ee, ok := p.waitErr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// run runs `vouch args...` to completion and returns its stdout.
func run(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vouch %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// handedOut holds every port freePort or maxPort has returned in this test
// process. The kernel may hand the same free port to two listen(":0") calls
// in a row, and a test that took both for two nodes (or a node and its
// HTTP endpoint) would see one of them fail to bind.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// claim records p as handed out if it is new and binds for both TCP and
// UDP on 127.0.0.1 at this moment.
func claim(p int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[p] || !portFree(p) {
		return false
	}
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	handedOut.ports[p] = true
	return true
}

// portFree reports whether 127.0.0.1:p binds for both TCP and UDP.
func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 that no other
// call in this process has returned.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claim(p) {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, within, err)
}

// httpc reads the nodes' status and the runtime's /healthz: nothing secret,
// so it does not pin the runtime's attested TLS key (the CLI and the nodes
// do).
var httpc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func getJSON(url string, v any) error {
	resp, err := httpc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// cluster is a runtime and its nodes.
type cluster struct {
	t       *testing.T
	dir     string
	env     []string
	runtime *proc
	rtPort  int
	fid     string
	sum     string
	nodes   map[string]*nodeProc
	// nodeArgs are added to every `vouch node` command line.
	nodeArgs []string
}

type nodeProc struct {
	*proc
	port, httpPort int
}

type status struct {
	Name        string            `json:"name"`
	Leader      string            `json:"leader"`
	Seq         uint64            `json:"seq"`
	IsLeader    bool              `json:"is_leader"`
	View        []string          `json:"view"`
	Rejections  map[string]uint64 `json:"rejections"`
	Dropped     map[string]uint64 `json:"dropped"`
	Certificate *struct {
		Output  json.RawMessage `json:"output"`
		Receipt json.RawMessage `json:"receipt"`
	} `json:"certificate"`
	Runtime struct {
		State       string `json:"state"`
		Detail      string `json:"detail"`
		Attestation string `json:"attestation"`
	} `json:"runtime"`
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, rtPort: freePort(t), nodes: map[string]*nodeProc{}}
	c.env = []string{"VOUCH_ENCLAVE=" + c.rtURL()}
	c.startRuntime()
	var d struct{ FunctionID, FunctionChecksum string }
	out := run(t, dir, c.env, "deploy", "--builtin", "leader", "-o", "json")
	if err := json.Unmarshal([]byte(out), &map[string]any{}); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	json.Unmarshal([]byte(out), &m)
	d.FunctionID, d.FunctionChecksum = m["function_id"], m["function_checksum"]
	c.fid, c.sum = d.FunctionID, d.FunctionChecksum
	ref := run(t, dir, c.env, "token", c.fid, "--function-checksum", c.sum, "-o", "json")
	if err := os.WriteFile(filepath.Join(dir, "leader_election.json"), []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) rtURL() string { return fmt.Sprintf("https://127.0.0.1:%d", c.rtPort) }

func (c *cluster) startRuntime() {
	c.runtime = start(c.t, "runtime", c.dir, nil, "enclave", "--listen", fmt.Sprintf("127.0.0.1:%d", c.rtPort), "--data", filepath.Join(c.dir, "vouch-data"))
	eventually(c.t, 20*time.Second, "runtime up", func() error {
		resp, err := httpc.Get(c.rtURL() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// startNode starts `vouch node -p PORT -n PEER -f ID -fh SUM` as in the
// original demo, with a status endpoint.
func (c *cluster) startNode(port int, peers ...int) *nodeProc {
	c.t.Helper()
	hp := freePort(c.t)
	args := []string{"node", "-p", strconv.Itoa(port), "-f", c.fid, "-fh", c.sum, "--http", fmt.Sprintf("127.0.0.1:%d", hp), "--log-level", "debug"}
	for _, p := range peers {
		args = append(args, "-n", strconv.Itoa(p))
	}
	args = append(args, c.nodeArgs...)
	np := &nodeProc{proc: start(c.t, "node "+strconv.Itoa(port), c.dir, nil, args...), port: port, httpPort: hp}
	c.nodes[strconv.Itoa(port)] = np
	return np
}

func (n *nodeProc) status() (*status, error) {
	var st status
	err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/status", n.httpPort), &st)
	return &st, err
}

// metric returns the value of one sample of the node's /metrics, e.g.
// `vouch_node_messages_dropped_total{reason="malformed"}`; 0 when absent.
func (n *nodeProc) metric(sample string) (float64, error) {
	resp, err := httpc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.httpPort))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}

// waitLeader waits until every named node verified leader want, with one
// seq, and returns the seq.
func (c *cluster) waitLeader(want string, within time.Duration, names ...string) uint64 {
	c.t.Helper()
	var seq uint64
	eventually(c.t, within, "agreement on leader "+want, func() error {
		seq = 0
		for i, name := range names {
			st, err := c.nodes[name].status()
			if err != nil {
				return err
			}
			if st.Leader != want {
				return fmt.Errorf("%s says leader %q (seq %d, view %v)", name, st.Leader, st.Seq, st.View)
			}
			if i > 0 && st.Seq != seq {
				return fmt.Errorf("%s holds seq %d, others %d", name, st.Seq, seq)
			}
			seq = st.Seq
		}
		return nil
	})
	return seq
}
