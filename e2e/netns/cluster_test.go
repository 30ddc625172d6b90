//go:build netns && linux

package netns

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cluster is a runtime host and node hosts on one bed.
type cluster struct {
	b     *bed
	rt    *host
	rtURL string
	env   []string
	fid   string
	sum   string
	views bool // signed views (cluster.json) instead of the member list
	nodes map[string]*node
	names []string // in start order
}

// node is a host running one `vouch node` process.
type node struct {
	*host
	p *proc
}

// status is the part of GET /status the tests read.
type status struct {
	Name     string   `json:"name"`
	Leader   string   `json:"leader"`
	Seq      uint64   `json:"seq"`
	IsLeader bool     `json:"is_leader"`
	View     []string `json:"view"`
	Members  []struct {
		Name   string `json:"name"`
		Addr   string `json:"addr"`
		State  string `json:"state"`
		InView bool   `json:"in_view"`
	} `json:"members"`
	Runtime struct {
		State  string `json:"state"`
		Detail string `json:"detail"`
	} `json:"runtime"`
}

// leaderAnswer is GET /leader's body (signed views).
type leaderAnswer struct {
	Leader     string    `json:"leader"`
	Seq        uint64    `json:"seq"`
	Self       bool      `json:"self"`
	Token      uint64    `json:"token"`
	LeaseUntil time.Time `json:"lease_until"`
	Time       time.Time `json:"time"`
}

func (n *node) status() (*status, error) {
	var st status
	code, err := n.getJSON("/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /status: %d", code)
	}
	return &st, err
}

func (n *node) leader() (int, leaderAnswer, error) {
	var a leaderAnswer
	code, err := n.getJSON("/leader", &a)
	return code, a, err
}

// newCluster starts a runtime in its own namespace, listening on its
// address on the runtime network, and deploys the election function:
// the built-in "election" for signed views, else "leader".
func newCluster(t *testing.T, views bool) *cluster {
	t.Helper()
	b := newBed(t)
	c := &cluster{b: b, views: views, nodes: map[string]*node{}}
	c.rt = b.host("runtime", runtimeNet)
	listen := fmt.Sprintf("%s:%d", c.rt.ip(runtimeNet), runtimePort)
	c.rtURL = "https://" + listen
	c.env = []string{"VOUCH_ENCLAVE=" + c.rtURL}
	c.rt.start(nil, "enclave", "--listen", listen, "--data", "vouch-data")
	c.setUpFunction(c.rt.run, b.simulatedTrust("vouch-data")...)
	return c
}

// setUpFunction waits for the runtime at c.rtURL, deploys the built-in the
// scheme needs and writes the reference to leader_election.json. run runs
// vouch beside the runtime's data; trust is added to the owner commands.
func (c *cluster) setUpFunction(run func(env []string, args ...string) string, trust ...string) {
	t := c.b.t
	t.Helper()
	eventually(t, 30*time.Second, "runtime up at "+c.rtURL, func() error {
		resp, err := c.rt.http.Get(c.rtURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	builtin := "leader"
	if c.views {
		builtin = "election"
	}
	var d struct {
		ID       string `json:"function_id"`
		Checksum string `json:"function_checksum"`
	}
	if err := json.Unmarshal([]byte(run(c.env, append([]string{"deploy", "--builtin", builtin, "-o", "json"}, trust...)...)), &d); err != nil {
		t.Fatal(err)
	}
	c.fid, c.sum = d.ID, d.Checksum
	ref := run(c.env, append([]string{"token", c.fid, "--function-checksum", c.sum, "-o", "json"}, trust...)...)
	if err := os.WriteFile(filepath.Join(c.b.dir, "leader_election.json"), []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
}

// addHosts creates one host per name on the gossip and runtime networks.
// With signed views it also creates each node's identity and writes a
// signed cluster.json that lists them all (policy highest).
func (c *cluster) addHosts(names ...string) {
	t := c.b.t
	t.Helper()
	for _, name := range names {
		c.nodes[name] = &node{host: c.b.host(name, gossipNet, runtimeNet)}
		c.names = append(c.names, name)
	}
	if !c.views {
		return
	}
	c.rt.run(nil, "cluster", "init", "--name", "nsbed", "--owner-key", "owner.pem", "-o", "cluster.json")
	for _, name := range names {
		c.rt.run(nil, "node", "id", "--data", "data-"+name)
		c.rt.run(nil, "cluster", "add-member", "--id", name, "--node-data", "data-"+name, "--config", "cluster.json", "--owner-key", "owner.pem")
	}
}

// gossipAddr is a node's address on the gossip network.
func (n *node) gossipAddr() string { return fmt.Sprintf("%s:%d", n.ip(gossipNet), gossipPort) }

// startNode starts `vouch node` in the named host, bound to its gossip
// address, joining peers, with extra flags. Every node gossips on the
// same port, as on Kubernetes, so --name is what tells them apart.
func (c *cluster) startNode(name string, peers []string, extra ...string) *node {
	t := c.b.t
	t.Helper()
	n := c.nodes[name]
	args := []string{"node", "-p", strconv.Itoa(gossipPort), "--name", name,
		"--http", fmt.Sprintf("127.0.0.1:%d", httpPort), "--enclave", c.rtURL, "--log-level", "debug"}
	if c.views {
		args = append(args, "--cluster-config", "cluster.json", "--data", "data-"+name)
	} else {
		args = append(args, "-f", c.fid, "-fh", c.sum)
	}
	if !containsFlag(extra, "--bind") {
		args = append(args, "--bind", n.gossipAddr())
	}
	for _, p := range peers {
		args = append(args, "-n", c.nodes[p].gossipAddr())
	}
	n.p = n.start(nil, append(args, extra...)...)
	return n
}

func containsFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// startAll starts every node, each joining the first (the first joins
// the second).
func (c *cluster) startAll(extra ...string) {
	for i, name := range c.names {
		peer := c.names[0]
		if i == 0 {
			peer = c.names[1]
		}
		c.startNode(name, []string{peer}, extra...)
	}
}

// agree returns nil once every named node's /status names leader want
// (any leader if want is "") with one seq, and returns that leader.
func (c *cluster) agree(want string, names ...string) (string, error) {
	var leader string
	var seq uint64
	for i, name := range names {
		st, err := c.nodes[name].status()
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if st.Leader == "" || (want != "" && st.Leader != want) {
			return "", fmt.Errorf("%s says leader %q (seq %d, view %v, runtime %s %s)", name, st.Leader, st.Seq, st.View, st.Runtime.State, st.Runtime.Detail)
		}
		if i > 0 && (st.Leader != leader || st.Seq != seq) {
			return "", fmt.Errorf("%s says %s at seq %d, %s says %s at %d", name, st.Leader, st.Seq, names[0], leader, seq)
		}
		leader, seq = st.Leader, st.Seq
	}
	return leader, nil
}

// waitAgree waits until the named nodes agree on want and returns how
// long that took.
func (c *cluster) waitAgree(within time.Duration, want string, names ...string) time.Duration {
	c.b.t.Helper()
	start := time.Now()
	eventually(c.b.t, within, fmt.Sprintf("%v agree on leader %q", names, want), func() error {
		_, err := c.agree(want, names...)
		return err
	})
	return time.Since(start)
}

// waitMembers waits until every named node's election view is exactly
// the named nodes. Agreeing on a leader is not enough to call a cluster
// formed: a node learns the leader from the runtime before it has joined
// the gossip, and one whose only seed is then cut off never joins.
func (c *cluster) waitMembers(within time.Duration, names ...string) {
	c.b.t.Helper()
	eventually(c.b.t, within, fmt.Sprintf("%v see each other", names), func() error {
		return c.seeEachOther(names...)
	})
}

// seeEachOther reports, as an error, a named node whose election view is
// not exactly the named nodes.
func (c *cluster) seeEachOther(names ...string) error {
	want := slices.Sorted(slices.Values(names))
	for _, name := range names {
		st, err := c.nodes[name].status()
		if err != nil {
			return err
		}
		if got := slices.Sorted(slices.Values(st.View)); !slices.Equal(got, want) {
			return fmt.Errorf("%s's view is %v", name, st.View)
		}
	}
	return nil
}

// acting returns the one named node that answers GET /leader with 200,
// with its answer; an error if none or several do.
func (c *cluster) acting(names ...string) (string, leaderAnswer, error) {
	var who string
	var ans leaderAnswer
	for _, name := range names {
		code, a, err := c.nodes[name].leader()
		if err != nil {
			return "", ans, fmt.Errorf("%s: %w", name, err)
		}
		if code != http.StatusOK {
			continue
		}
		if who != "" {
			return "", ans, fmt.Errorf("%s and %s both act", who, name)
		}
		who, ans = name, a
	}
	if who == "" {
		return "", ans, fmt.Errorf("no node of %v acts", names)
	}
	return who, ans, nil
}

// without returns names less drop.
func without(names []string, drop ...string) []string {
	var out []string
	for _, n := range names {
		skip := false
		for _, d := range drop {
			skip = skip || n == d
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// highest is the policy's pick among names ("n1".."n9" compare byte-wise).
func highest(names []string) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	return s[len(s)-1]
}

// lowest is the first of names in byte order.
func lowest(names []string) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	return s[0]
}

// waitActing waits until exactly one of names acts with a token above
// minToken and returns it and its answer.
func (c *cluster) waitActing(within time.Duration, minToken uint64, names ...string) (string, leaderAnswer) {
	c.b.t.Helper()
	var who string
	var ans leaderAnswer
	eventually(c.b.t, within, "one acting leader", func() error {
		var err error
		if who, ans, err = c.acting(names...); err != nil {
			return err
		}
		if ans.Token <= minToken {
			return fmt.Errorf("%s acts with term %d, not above %d", who, ans.Token, minToken)
		}
		return nil
	})
	return who, ans
}

// summary prints durations as "min … median … max (n samples: a, b, …)".
func summary(d []time.Duration) string {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var all []string
	for _, x := range d {
		all = append(all, x.Round(time.Millisecond).String())
	}
	return fmt.Sprintf("min %v, median %v, max %v (%d samples: %s)", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond),
		s[len(s)-1].Round(time.Millisecond), len(s), strings.Join(all, ", "))
}

// percentiles prints "p50 X / p99 Y (n trials)" by nearest rank.
func percentiles(d []time.Duration) string {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
	}
	return fmt.Sprintf("p50 %v / p99 %v (%d trials)", rank(0.50), rank(0.99), len(s))
}
