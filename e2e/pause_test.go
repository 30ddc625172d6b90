package e2e

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	vcluster "github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/node"
)

// leaderAnswer is GET /leader's body.
type leaderAnswer struct {
	Leader     string    `json:"leader"`
	Seq        uint64    `json:"seq"`
	Self       bool      `json:"self"`
	Token      uint64    `json:"token"`
	LeaseUntil time.Time `json:"lease_until"`
	Time       time.Time `json:"time"`
}

func (n *nodeProc) leader() (int, leaderAnswer, error) {
	var a leaderAnswer
	resp, err := httpc.Get(fmt.Sprintf("http://127.0.0.1:%d/leader", n.httpPort))
	if err != nil {
		return 0, a, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a, err
}

// startViewsCluster starts a runtime with the built-in election function
// and n nodes in signed-views mode with the default lease (600 ms); extra
// ends every node's command line.
func startViewsCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, rtPort: freePort(t), nodes: map[string]*nodeProc{}}
	c.env = []string{"VOUCH_ENCLAVE=" + c.rtURL()}
	c.startRuntime()
	var d struct {
		ID       string `json:"function_id"`
		Checksum string `json:"function_checksum"`
	}
	if err := json.Unmarshal([]byte(run(t, dir, c.env, "deploy", "--builtin", "election", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	c.fid, c.sum = d.ID, d.Checksum
	ref := run(t, dir, c.env, "token", c.fid, "--function-checksum", c.sum, "-o", "json")
	if err := os.WriteFile(filepath.Join(dir, "leader_election.json"), []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := vcluster.Config{Cluster: "pause", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: vcluster.PolicyHighest,
		LeaseMillis: vcluster.DefaultLease.Milliseconds(), ViewTTLMillis: vcluster.DefaultViewTTL.Milliseconds()}
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
		key, _, err := node.LoadIdentity(filepath.Join(dir, "data-"+strconv.Itoa(ports[i])))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Members = append(cfg.Members, vcluster.Member{ID: strconv.Itoa(ports[i]), Key: key.Public().(ed25519.PublicKey)})
	}
	signed, err := vcluster.Sign(cfg, owner)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		hp := freePort(t)
		args := []string{"node", "-p", strconv.Itoa(p), "--http", fmt.Sprintf("127.0.0.1:%d", hp),
			"--cluster-config", "cluster.json", "--data", "data-" + strconv.Itoa(p), "--log-format", "json"}
		for _, q := range ports {
			if q != p {
				args = append(args, "-n", strconv.Itoa(q))
			}
		}
		args = append(args, extra...)
		c.nodes[strconv.Itoa(p)] = &nodeProc{proc: start(t, "node "+strconv.Itoa(p), dir, nil, args...), port: p, httpPort: hp}
	}
	return c
}

// actingLeader waits until exactly one node answers GET /leader with 200,
// with a token above minToken, and returns it and its answer.
func (c *cluster) actingLeader(within time.Duration, minToken uint64, skip string) (string, leaderAnswer) {
	c.t.Helper()
	var name string
	var ans leaderAnswer
	eventually(c.t, within, "an acting leader", func() error {
		name = ""
		for n, np := range c.nodes {
			if n == skip {
				continue
			}
			code, a, err := np.leader()
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			if code != http.StatusOK {
				continue
			}
			if name != "" {
				return fmt.Errorf("%s and %s both answer 200", name, n)
			}
			name, ans = n, a
		}
		switch {
		case name == "":
			return fmt.Errorf("no node acts")
		case ans.Token <= minToken:
			return fmt.Errorf("%s acts with token %d, want above %d", name, ans.Token, minToken)
		}
		return nil
	})
	return name, ans
}

// A leader frozen past its lease (SIGSTOP) resumes after the next term's
// leader already acts. The first thing it is asked after it resumes, a
// request that was waiting in its socket while it was stopped, must find
// its lease over: GET /leader answers from the leadership context, which
// compares the clock with the lease end, not from a loop that has not run
// yet.
func TestPausedLeaderSeesItsLeaseExpired(t *testing.T) {
	c := startViewsCluster(t, 3)
	old, before := c.actingLeader(60*time.Second, 0, "")
	if !before.Self || before.LeaseUntil.IsZero() {
		t.Fatalf("acting leader %s: %+v, want self with a lease end", old, before)
	}
	victim := c.nodes[old]
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			victim.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	next, after := c.actingLeader(60*time.Second, before.Token, old)
	t.Logf("%s led term %d; frozen, %s took over with term %d", old, before.Token, next, after.Token)

	// The question, sent while the leader is frozen: the kernel accepts
	// the connection and buffers the request.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", victim.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /leader HTTP/1.1\r\nHost: vouch\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got leaderAnswer
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed %s answered %s: %+v", old, resp.Status, got)
	if resp.StatusCode != http.StatusServiceUnavailable || got.Self || got.Token != 0 {
		t.Fatalf("the resumed leader still acts: %s %+v", resp.Status, got)
	}
	if got.LeaseUntil.IsZero() || !got.LeaseUntil.Before(got.Time) {
		t.Fatalf("the resumed leader's answer does not show its lease over: lease until %v at %v", got.LeaseUntil, got.Time)
	}
	if got.LeaseUntil.After(after.Time) {
		t.Fatalf("the old lease (until %v) was still running when %s acted (%v)", got.LeaseUntil, next, after.Time)
	}
	// And it stays out: its status follows the new term.
	eventually(t, 30*time.Second, "the resumed node follows the new leader", func() error {
		st, err := victim.status()
		if err != nil {
			return err
		}
		if st.IsLeader || st.Leader != next {
			return fmt.Errorf("status: leader %q, is_leader %v", st.Leader, st.IsLeader)
		}
		return nil
	})
}
