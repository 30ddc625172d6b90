//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run `vouch node --exec -- CMD` (and `vouch lock`) as real
// processes. The command is a shell script that records, in a file named
// after its node, when it started (with its environment) and when it got
// SIGTERM: the records show who acted when, on one clock.

// execScript writes the leader command into dir and returns the
// arguments that end a node's command line.
func execScript(t *testing.T, dir string, extra ...string) (string, []string) {
	t.Helper()
	rec := filepath.Join(dir, "records")
	if err := os.MkdirAll(rec, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "lead.sh")
	body := `#!/bin/sh
f="` + rec + `/$VOUCH_NODE"
echo "start $(date +%s%N) $$ leader=$VOUCH_LEADER token=$VOUCH_FENCING_TOKEN seq=$VOUCH_SEQ term=$VOUCH_TERM" >> "$f"
trap 'echo "term $(date +%s%N) $$" >> "$f"; exit 0' TERM
while :; do sleep 0.05 & wait $!; done
`
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--exec", "--exec-grace", "5s"}, extra...)
	return rec, append(args, "--", "/bin/sh", script)
}

// record is one line of a node's record file.
type record struct {
	kind string // "start" or "term"
	at   time.Time
	pid  int
	env  map[string]string
}

func readRecords(t *testing.T, rec, name string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rec, name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue // a line being written
		}
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		pid, _ := strconv.Atoi(f[2])
		r := record{kind: f[0], at: time.Unix(0, ns), pid: pid, env: map[string]string{}}
		for _, kv := range f[3:] {
			k, v, _ := strings.Cut(kv, "=")
			r.env[k] = v
		}
		out = append(out, r)
	}
	return out
}

// running returns the nodes whose command runs now (a start without a
// term after it, and the process alive).
func running(t *testing.T, rec string, names []string) map[string]record {
	out := map[string]record{}
	for _, n := range names {
		rs := readRecords(t, rec, n)
		if len(rs) > 0 && rs[len(rs)-1].kind == "start" && processAlive(rs[len(rs)-1].pid) {
			out[n] = rs[len(rs)-1]
		}
	}
	return out
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// waitRunning waits until exactly want's command runs, started after
// after, and returns its start record.
func waitRunning(t *testing.T, rec string, names []string, want string, after time.Time) record {
	t.Helper()
	var r record
	eventually(t, 45*time.Second, want+"'s command alone runs", func() error {
		run := running(t, rec, names)
		got, ok := run[want]
		if !ok || len(run) != 1 || !got.at.After(after) {
			return fmt.Errorf("running: %v", keys(run))
		}
		r = got
		return nil
	})
	return r
}

func keys(m map[string]record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// lastOf returns name's last record of kind.
func lastOf(t *testing.T, rec, name, kind string) (record, bool) {
	rs := readRecords(t, rec, name)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].kind == kind {
			return rs[i], true
		}
	}
	return record{}, false
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func memberListExec(t *testing.T, n int, extra ...string) (*cluster, string, []string, []int) {
	c := newCluster(t)
	rec, args := execScript(t, c.dir, extra...)
	c.nodeArgs = args
	ports := make([]int, n)
	var names []string
	for i := range ports {
		ports[i] = freePort(t)
	}
	slices.Sort(ports)
	for i, p := range ports {
		var peers []int
		if i > 0 {
			peers = []int{ports[0]}
		}
		c.startNode(p, peers...)
		names = append(names, strconv.Itoa(p))
	}
	return c, rec, names, ports
}

// The command runs on the leader only, with the leadership in its
// environment; when the leader is killed (SIGKILL), the kernel kills its
// command and the next leader's starts. Timings over 5 rounds are logged
// (docs/BENCHMARKS.md, "Leader commands"), not asserted.
func TestExecFollowsTheLeader(t *testing.T) {
	c, rec, names, ports := memberListExec(t, 3)
	top := names[2]
	c.waitLeader(top, 45*time.Second, names...)
	r := waitRunning(t, rec, names, top, time.Time{})
	if r.env["leader"] != top || r.env["token"] == "" || r.env["token"] == "0" || r.env["seq"] != r.env["token"] || r.env["term"] != "" {
		t.Fatalf("the command's environment: %v", r.env)
	}
	const rounds = 5
	var toStart, toGone, toSignal, overlap []time.Duration
	for round := 0; round < rounds; round++ {
		old := waitRunning(t, rec, names, top, time.Time{})
		killed := time.Now()
		c.nodes[top].kill()
		for processAlive(old.pid) { // polled every 2 ms
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("round %d: the killed leader's command (pid %d) survives it", round, old.pid)
			}
			time.Sleep(2 * time.Millisecond)
		}
		toGone = append(toGone, time.Since(killed))
		next := waitRunning(t, rec, names[:2], names[1], killed)
		toStart = append(toStart, next.at.Sub(killed))
		// The old leader comes back and, as the highest ID, takes over:
		// the demoted node's command is signalled when its leadership
		// ends. The member list has no lease, so the demoted node learns
		// of it after the new leader: their commands may overlap for a
		// moment (docs/ELECTION.md, "Acting on leadership from outside
		// Go"); logged, not asserted.
		c.startNode(ports[2], ports[0])
		back := waitRunning(t, rec, names, top, killed)
		var term record
		eventually(t, 30*time.Second, "the demoted node's command ends", func() error {
			var ok bool
			if term, ok = lastOf(t, rec, names[1], "term"); !ok || term.pid != next.pid {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		overlap = append(overlap, term.at.Sub(back.at))
		var lost, signalled time.Time
		eventually(t, 30*time.Second, "the demoted node's log", func() error {
			lost, signalled = logTime(c.nodes[names[1]].out.String(), `msg="stopped leading"`), logTime(c.nodes[names[1]].out.String(), "leader command signalled")
			if lost.IsZero() || signalled.IsZero() {
				return fmt.Errorf("no log line yet")
			}
			return nil
		})
		toSignal = append(toSignal, signalled.Sub(lost))
	}
	t.Logf("leader SIGKILL -> next leader's command starts: p50 %v p99 %v (%v)", percentile(toStart, .5), percentile(toStart, .99), toStart)
	t.Logf("leader SIGKILL -> its command gone (kernel's parent-death signal; polled every 2 ms): p50 %v p99 %v", percentile(toGone, .5), percentile(toGone, .99))
	t.Logf("leadership lost -> command signalled (node log, ms resolution): p50 %v p99 %v", percentile(toSignal, .5), percentile(toSignal, .99))
	t.Logf("preemption: new leader's command started -> old one's ended: p50 %v p99 %v (%v)", percentile(overlap, .5), percentile(overlap, .99), overlap)
}

// Resigning through `vouch node resign` and through SIGUSR1: the leader's
// command ends before the next leader's starts.
func TestExecResign(t *testing.T) {
	hooks := t.TempDir()
	c, rec, names, _ := memberListExec(t, 3, "--on-leader-change", `cat > `+hooks+`/"$VOUCH_NODE-$VOUCH_LEADER-$VOUCH_SELF"`)
	c.waitLeader(names[2], 45*time.Second, names...)
	waitRunning(t, rec, names, names[2], time.Time{})

	out := run(t, c.dir, nil, "node", "resign", "--http", fmt.Sprintf("127.0.0.1:%d", c.nodes[names[2]].httpPort))
	if !strings.Contains(out, "resigned") {
		t.Fatalf("vouch node resign: %q", out)
	}
	next := waitRunning(t, rec, names, names[1], time.Time{})
	term, ok := lastOf(t, rec, names[2], "term")
	if !ok || !term.at.Before(next.at) {
		t.Fatalf("%s's command ended %v, %s's started %v", names[2], term.at, names[1], next.at)
	}
	t.Logf("resign: %s's command ended %v before %s's started", names[2], next.at.Sub(term.at), names[1])

	// The leader-change hook ran on every node with the certificate on
	// stdin.
	for _, n := range names {
		self := strconv.FormatBool(n == names[1])
		eventually(t, 30*time.Second, n+"'s hook", func() error {
			b, err := os.ReadFile(filepath.Join(hooks, n+"-"+names[1]+"-"+self))
			if err != nil {
				return err
			}
			var cert struct{ Leader string }
			if err := json.Unmarshal(b, &cert); err != nil || cert.Leader != names[1] {
				return fmt.Errorf("hook stdin %q: %v", b, err)
			}
			return nil
		})
	}

	// A follower refuses.
	cmd := run2(c.dir, "node", "resign", "--http", fmt.Sprintf("127.0.0.1:%d", c.nodes[names[0]].httpPort))
	if cmd.code != 1 || !strings.Contains(cmd.stderr, "not the leader") {
		t.Fatalf("resign at a follower: exit %d, %s", cmd.code, cmd.stderr)
	}

	// SIGUSR1 at the new leader: the hold still keeps names[2] out, so
	// names[0] takes over.
	c.nodes[names[1]].cmd.Process.Signal(syscall.SIGUSR1)
	third := waitRunning(t, rec, names, names[0], next.at)
	term, ok = lastOf(t, rec, names[1], "term")
	if !ok || !term.at.Before(third.at) {
		t.Fatalf("%s's command ended %v, %s's started %v", names[1], term.at, names[0], third.at)
	}
	t.Logf("SIGUSR1: %s's command ended %v before %s's started", names[1], third.at.Sub(term.at), names[0])
}

// On SIGTERM a leader stops its command before it leaves the cluster, so
// that no two commands ever run at once.
func TestExecSIGTERMStopsBeforeLeaving(t *testing.T) {
	c, rec, names, _ := memberListExec(t, 3)
	for i := 2; i > 0; i-- {
		leader := names[i]
		c.waitLeader(leader, 45*time.Second, names[:i+1]...)
		waitRunning(t, rec, names, leader, time.Time{})
		if code := c.nodes[leader].signal(syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM", leader, code)
		}
		next := waitRunning(t, rec, names[:i], names[i-1], time.Time{})
		term, ok := lastOf(t, rec, leader, "term")
		if !ok || !term.at.Before(next.at) {
			t.Fatalf("overlap: %s's command ended %v, %s's started %v", leader, term.at, names[i-1], next.at)
		}
		t.Logf("SIGTERM: %s's command ended %v before %s's started (no overlap)", leader, next.at.Sub(term.at), names[i-1])
	}
}

// A leader frozen with SIGSTOP cannot signal its command: the command
// keeps running while the lease lapses and another node leads (storage
// must check fencing tokens). When the node resumes, it must stop its
// command at once, without waiting for any message.
func TestExecLeaseLapseSIGSTOP(t *testing.T) {
	dir := t.TempDir()
	rec, args := execScript(t, dir)
	c := startViewsCluster(t, 3, args...)
	var names []string
	for n := range c.nodes {
		names = append(names, n)
	}
	old, _ := c.actingLeader(60*time.Second, 0, "")
	first := waitRunning(t, rec, names, old, time.Time{})
	if first.env["term"] == "" || first.env["term"] != first.env["token"] || first.env["seq"] != "" {
		t.Fatalf("the command's environment: %v", first.env)
	}
	victim := c.nodes[old]
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	defer victim.cmd.Process.Signal(syscall.SIGCONT)
	next, _ := c.actingLeader(60*time.Second, 0, old)
	eventually(t, 45*time.Second, next+"'s command starts", func() error {
		if _, ok := running(t, rec, names)[next]; !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if !processAlive(first.pid) {
		t.Fatal("the frozen leader's command died: nothing could have signalled it")
	}
	resumed := time.Now()
	victim.cmd.Process.Signal(syscall.SIGCONT)
	var term record
	eventually(t, 30*time.Second, "the resumed node stops its command", func() error {
		var ok bool
		if term, ok = lastOf(t, rec, old, "term"); !ok || term.pid != first.pid {
			return fmt.Errorf("no SIGTERM yet")
		}
		return nil
	})
	t.Logf("SIGCONT -> the lapsed leader's command got SIGTERM after %v", term.at.Sub(resumed))
}

// vouch lock runs the command once it leads, and exits with it.
func TestLock(t *testing.T) {
	c := newCluster(t)
	out := filepath.Join(c.dir, "lock-out")
	p := freePort(t)
	lock := start(t, "lock", c.dir, nil, "lock", "-p", strconv.Itoa(p), "-f", c.fid, "-fh", c.sum, "--",
		"/bin/sh", "-c", `echo "$VOUCH_LEADER $VOUCH_FENCING_TOKEN" > `+out)
	select {
	case <-lock.done:
	case <-time.After(60 * time.Second):
		t.Fatal("vouch lock did not exit after its command did")
	}
	if code := lock.exitCode(); code != 0 {
		t.Fatalf("vouch lock exited %d:\n%s", code, lock.out.String())
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.HasPrefix(string(b), strconv.Itoa(p)+" ") {
		t.Fatalf("the command wrote %q (%v)", b, err)
	}
}

type ran struct {
	code           int
	stdout, stderr string
}

// run2 runs `vouch args...` and returns its exit code and output.
func run2(dir string, args ...string) ran {
	cmd := execCommand(dir, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
	}
	return ran{code, o.String(), e.String()}
}

func execCommand(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(vouchBin, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	return cmd
}

// logTime returns the time of the last text-log line containing what.
func logTime(log, what string) time.Time {
	var at time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		if v, ok := strings.CutPrefix(strings.Fields(line)[0], "time="); ok {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				at = t
			}
		}
	}
	return at
}

// With signed views a resigned leader comes back as a follower and the
// new leader keeps its office, whatever the policy (highest) prefers: a
// joining or returning member does not preempt a healthy leader.
func TestExecResignSignedViewsSticky(t *testing.T) {
	dir := t.TempDir()
	rec, args := execScript(t, dir)
	c := startViewsCluster(t, 3, args...)
	var names []string
	for n := range c.nodes {
		names = append(names, n)
	}
	old, _ := c.actingLeader(60*time.Second, 0, "")
	first := waitRunning(t, rec, names, old, time.Time{})
	out := run(t, dir, nil, "node", "resign", "--http", fmt.Sprintf("127.0.0.1:%d", c.nodes[old].httpPort))
	if !strings.Contains(out, "resigned") {
		t.Fatalf("vouch node resign: %q", out)
	}
	next, ans := c.actingLeader(60*time.Second, 0, old)
	started := waitRunning(t, rec, names, next, first.at)
	term, ok := lastOf(t, rec, old, "term")
	if !ok || term.pid != first.pid || !term.at.Before(started.at) {
		t.Fatalf("%s's command ended %v, %s's started %v", old, term.at, next, started.at)
	}
	t.Logf("resign (signed views): %s's command ended %v before %s's started (term %d)", old, started.at.Sub(term.at), next, ans.Token)
	// The resigned node is back in every view; three leases later the
	// same command still runs alone.
	eventually(t, 30*time.Second, old+" back in the views", func() error {
		for _, n := range names {
			st, err := c.nodes[n].status()
			if err != nil {
				return err
			}
			if !slices.Contains(st.View, old) {
				return fmt.Errorf("%s's view %v", n, st.View)
			}
		}
		return nil
	})
	time.Sleep(3 * 600 * time.Millisecond)
	if now := running(t, rec, names); len(now) != 1 || now[next].pid != started.pid {
		t.Fatalf("after %s came back, running: %v (want %s's pid %d alone)", old, now, next, started.pid)
	}
}
