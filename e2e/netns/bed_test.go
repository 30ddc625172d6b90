//go:build netns && linux

package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

// nsPrefix starts the name of every namespace a test creates; the pid
// that follows tells a leftover of a dead run from a live one.
const nsPrefix = "vouch-t-"

// Networks of a bed: gossip between nodes, and the runtime's network,
// which a partition of the gossip network leaves intact. Each is a bridge
// in the bed's switch namespace and a /24 of 10.250.0.0/16, inside the
// bed's namespaces only.
const (
	gossipNet  = 0 // 10.250.0.0/24, bridge br0, eth0 in a host
	runtimeNet = 1 // 10.250.1.0/24, bridge br1, eth1 in a host
)

// Fixed ports are fine here: every host is a namespace of its own.
const (
	gossipPort  = 27946
	runtimePort = 27070
	httpPort    = 28080
)

var (
	buildOnce sync.Once
	vouchBin  string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// requireNetns skips the test unless this process may create network
// namespaces, removes leftovers of dead runs, and builds vouch once (or
// takes the binary named by $VOUCH_NETNS_VOUCH).
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns test bed: needs root to create network namespaces (run as root, or skip)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns test bed: the ip command (iproute2) is missing")
	}
	if sysSetns[runtime.GOARCH] == 0 {
		t.Skipf("netns test bed: setns(2)'s number on %s is not known to this test", runtime.GOARCH)
	}
	removeLeftovers(t)
	probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("netns test bed: `ip netns add` fails here: %v: %s", err, bytes.TrimSpace(out))
	}
	exec.Command("ip", "netns", "del", probe).Run()
	buildOnce.Do(func() {
		if v := os.Getenv("VOUCH_NETNS_VOUCH"); v != "" {
			vouchBin, buildErr = filepath.Abs(v) // a prebuilt vouch to test instead
			return
		}
		root, err := testbuild.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, err = os.MkdirTemp("", "vouch-netns-"); err != nil {
			buildErr = err
			return
		}
		vouchBin = filepath.Join(binDir, "vouch")
		build := exec.Command("go", "build", "-o", vouchBin, "./cmd/vouch")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building vouch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// removeLeftovers deletes namespaces named vouch-t-PID-... whose PID is
// not a running process: what a killed test run left behind.
func removeLeftovers(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(f[0], nsPrefix), "-", 2)[0])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // a live run's
		}
		if err := exec.Command("ip", "netns", "del", f[0]).Run(); err == nil {
			t.Logf("removed leftover namespace %s", f[0])
		}
	}
}

// bed is one test's namespaces: a switch namespace with a bridge per
// network, and hosts, each a namespace with a veth into each network it
// is on.
type bed struct {
	t      *testing.T
	id     string // vouch-t-PID-RANDOM
	sw     string // the switch namespace
	dir    string // working directory of every vouch process
	mu     sync.Mutex
	hosts  []*host
	nextIP int
}

// host is a namespace with addresses on some networks.
type host struct {
	b    *bed
	name string
	ns   string
	idx  int
	nets []int
	http *http.Client // dials from inside ns
}

// ip returns the host's address on network n.
func (h *host) ip(n int) string { return fmt.Sprintf("10.250.%d.%d", n, 10+h.idx) }

// swPort is the switch-side name of the host's veth on network n.
func (h *host) swPort(n int) string { return fmt.Sprintf("h%dn%d", h.idx, n) }

func newBed(t *testing.T) *bed {
	t.Helper()
	requireNetns(t)
	var r [3]byte
	rand.Read(r[:])
	b := &bed{t: t, id: fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), hex.EncodeToString(r[:])), dir: t.TempDir()}
	b.sw = b.id + "-sw"
	b.addNS(b.sw)
	for _, n := range []int{gossipNet, runtimeNet} {
		br := fmt.Sprintf("br%d", n)
		b.ip("-n", b.sw, "link", "add", br, "type", "bridge")
		b.ip("-n", b.sw, "link", "set", br, "up")
	}
	return b
}

// ip runs `ip args...` and fails the test on error.
func (b *bed) ip(args ...string) {
	b.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		b.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// addNS creates a namespace and deletes it when the test ends (which
// also deletes the veths in it and their peers).
func (b *bed) addNS(name string) {
	b.t.Helper()
	b.ip("netns", "add", name)
	b.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			b.t.Errorf("removing namespace %s: %v: %s", name, err, out)
		}
	})
	b.ip("-n", name, "link", "set", "lo", "up")
}

// host creates a namespace on the given networks: on network n it has
// ethN with address 10.250.n.(10+index).
func (b *bed) host(name string, nets ...int) *host {
	b.t.Helper()
	b.mu.Lock()
	h := &host{b: b, name: name, ns: b.id + "-" + name, idx: len(b.hosts) + 1, nets: nets}
	b.hosts = append(b.hosts, h)
	b.mu.Unlock()
	b.addNS(h.ns)
	for _, n := range nets {
		eth := fmt.Sprintf("eth%d", n)
		b.ip("-n", b.sw, "link", "add", h.swPort(n), "type", "veth", "peer", "name", eth, "netns", h.ns)
		b.ip("-n", b.sw, "link", "set", h.swPort(n), "master", fmt.Sprintf("br%d", n), "up")
		b.ip("-n", h.ns, "addr", "add", h.ip(n)+"/24", "dev", eth)
		b.ip("-n", h.ns, "link", "set", eth, "up")
	}
	// It reads status and /healthz only: nothing secret, so it does not
	// pin the runtime's attested TLS key (the CLI and the nodes do).
	h.http = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dialIn(h.ns), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	b.t.Cleanup(h.http.CloseIdleConnections)
	return h
}

// link sets the switch side of the host's link on network n down (a
// pulled cable: packets are dropped silently) or, with up, back up.
func (h *host) link(n int, up bool) {
	h.b.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	h.b.ip("-n", h.b.sw, "link", "set", h.swPort(n), state)
}

// sysSetns is setns(2)'s number, which package syscall does not export.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "386": 346, "arm": 375, "ppc64le": 350, "s390x": 339}

// dialIn returns a dialer whose sockets live in the named namespace: it
// dials from a goroutine locked to its own OS thread that entered the
// namespace. The goroutine ends without unlocking, so Go retires the
// thread and no other goroutine ever runs in that namespace.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open(filepath.Join("/var/run/netns", ns))
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if _, _, e := syscall.RawSyscall(sysSetns[runtime.GOARCH], f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, e)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// getJSON GETs http://127.0.0.1:httpPort+path inside the host's namespace.
func (h *host) getJSON(path string, v any) (int, error) {
	resp, err := h.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: %w: %s", path, err, body)
	}
	return resp.StatusCode, nil
}

// proc is a vouch process running in a host's namespace.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	waitErr error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `vouch args...` in the host's namespace, in the bed's
// directory. `ip netns exec` execs vouch in place, so the process is
// vouch itself and signals reach it.
func (h *host) start(env []string, args ...string) *proc {
	t := h.b.t
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, vouchBin}, args...)...)
	cmd.Dir = h.b.dir
	cmd.Env = append(os.Environ(), env...)
	// Killed with the test process, even when a timeout panic skips the
	// cleanups (ip execs vouch in place, so the setting reaches vouch).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := spawn(cmd); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: h.name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, out.String())
		}
	})
	return p
}

// spawner is a goroutine locked to its OS thread for the life of the
// test process. Pdeathsig fires when the *thread* that started a child
// exits, and Go retires threads (dialIn's do), so children are started
// only from this one.
var (
	spawnOnce sync.Once
	spawnReq  = make(chan func())
)

// spawn starts cmd from the spawner thread.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked
			for f := range spawnReq {
				f()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReq <- func() { done <- cmd.Start() }
	return <-done
}

// run runs `vouch args...` to completion in the host's namespace and
// returns its stdout.
// simulatedTrust returns the flags with which an owner command trusts the
// SIMULATED runtime whose root is in dir (under the bed's directory): over
// a network, the owner credential goes only to a runtime whose attestation
// verifies and binds the connection's TLS key.
func (b *bed) simulatedTrust(dir string) []string {
	b.t.Helper()
	sim, err := attest.NewSimulated(filepath.Join(b.dir, dir), make([]byte, attest.SimulatedPCRLen))
	if err != nil {
		b.t.Fatal(err)
	}
	fp := sim.RootFingerprint()
	return []string{"--allow-simulated", "--root-fingerprint", hex.EncodeToString(fp[:])}
}

func (h *host) run(env []string, args ...string) string {
	t := h.b.t
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, vouchBin}, args...)...)
	cmd.Dir = h.b.dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vouch %s in %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), h.name, err, stdout.String(), stderr.String())
	}
	return stdout.String()
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

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// eventually polls f every 50 ms until it returns nil, or fails the test
// after within.
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
