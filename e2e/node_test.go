package e2e

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/functions"
)

// The original demo's two commands, as written, with the reference in
// ./leader_election.json; then a third node, the leader's death, a higher
// node joining.
func TestNodesElectAndFailOver(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t), freePort(t)}
	sortInts(p)
	c.startNode(p[0], p[1])
	c.startNode(p[1], p[0])
	c.startNode(p[2], p[0])
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1]), strconv.Itoa(p[2])}
	c.waitLeader(names[2], 20*time.Second, names...)
	// The leader logs that it leads; everyone logs the leader.
	eventually(t, 5*time.Second, "log lines", func() error {
		if !strings.Contains(c.nodes[names[2]].out.String(), "I AM THE LEADER") {
			return fmt.Errorf("leader did not say I AM THE LEADER")
		}
		if !strings.Contains(c.nodes[names[0]].out.String(), "leader is "+names[2]+" (seq ") {
			return fmt.Errorf("follower did not log the leader")
		}
		return nil
	})

	// SIGKILL the leader: the survivors fail over to the next verified leader.
	killed := time.Now()
	c.nodes[names[2]].kill()
	c.waitLeader(names[1], 15*time.Second, names[0], names[1])
	t.Logf("failover after SIGKILL took %v (including status polling)", time.Since(killed).Round(time.Millisecond))

	// A node with a higher ID joins: leadership moves to it.
	higher := maxPort(t, p[2])
	c.startNode(higher, p[0])
	h := strconv.Itoa(higher)
	c.waitLeader(h, 20*time.Second, names[0], names[1], h)
}

// Forged, mismatched, foreign and replayed certificates, sent by a peer
// that speaks memberlist: every node rejects each one and counts it under
// the right reason. Each step takes a baseline of every reason first
// (routine races count as stale too), sends k certificates and requires
// that reason's counter to rise by exactly k, and no other.
func TestNodesRejectBadCertificates(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t), freePort(t)}
	sortInts(p)
	c.startNode(p[0])
	c.startNode(p[1], p[0])
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1])}
	c.waitLeader(names[1], 20*time.Second, names...)
	old := heldCert(t, c.nodes[names[0]])

	// A third node joins: a newer certificate replaces the old one.
	c.startNode(p[2], p[0])
	names = append(names, strconv.Itoa(p[2]))
	c.waitLeader(names[2], 20*time.Second, names...)
	cur := heldCert(t, c.nodes[names[0]])

	liar := newLiar(t, c, "liar")
	send := func(cert *election.Certificate) {
		for _, name := range names {
			n := c.nodes[name]
			if err := liar.SendReliable(&memberlist.Node{Name: name, Addr: net.ParseIP("127.0.0.1"), Port: uint16(n.port)}, append([]byte{1}, cert.Encode()...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	const k = 3
	rt := c.client(t)
	other := c.deployOther(t, rt)
	lead := client.FunctionRef{ID: c.fid, Checksum: c.sum, Token: c.ownerToken(t)}
	view := []string{names[0], names[1], names[2]}
	_, foreignKey, _ := ed25519.GenerateKey(nil)
	steps := []struct {
		reason string
		cert   func(i int) *election.Certificate
		within time.Duration
	}{
		// A higher seq under the same signature.
		{"bad_signature", func(i int) *election.Certificate {
			forged := *cur
			forged.Receipt.Seq += uint64(1000 + i)
			return &forged
		}, 10 * time.Second},
		// Signed by a key that is not the runtime's.
		{"unknown_key", func(i int) *election.Certificate {
			f := *cur
			f.Receipt.Seq += uint64(2000 + i)
			if err := f.Receipt.Sign(foreignKey); err != nil {
				t.Fatal(err)
			}
			return &f
		}, 10 * time.Second},
		// A replayed older certificate.
		{"stale", func(int) *election.Certificate { return old }, 10 * time.Second},
		// A genuine certificate from another function (another checksum).
		{"wrong_checksum", func(int) *election.Certificate {
			res, err := rt.Run(context.Background(), other, election.Request("default", view))
			if err != nil {
				t.Fatal(err)
			}
			return &election.Certificate{Output: res.Output, Receipt: res.Receipt}
		}, 10 * time.Second},
		// Genuine certificates over a member list that is not the
		// cluster's: they wait for the view to converge (3 s), then are
		// rejected.
		{"members_mismatch", func(int) *election.Certificate {
			res, err := rt.Run(context.Background(), lead, election.Request("default", []string{names[0], names[1], "99999"}))
			if err != nil {
				t.Fatal(err)
			}
			return &election.Certificate{Output: res.Output, Receipt: res.Receipt}
		}, 15 * time.Second},
	}
	for _, step := range steps {
		base := map[string]map[string]uint64{}
		for _, name := range names {
			st, err := c.nodes[name].status()
			if err != nil {
				t.Fatal(err)
			}
			base[name] = st.Rejections
		}
		for i := 0; i < k; i++ {
			send(step.cert(i))
		}
		for _, name := range names {
			n := c.nodes[name]
			eventually(t, step.within, step.reason+" counted on "+name, func() error {
				st, err := n.status()
				if err != nil {
					return err
				}
				for reason, v := range st.Rejections {
					want := base[name][reason]
					if reason == step.reason {
						want += k
					}
					if v != want {
						return fmt.Errorf("%s: %d, want %d (before: %v, now: %v)", reason, v, want, base[name], st.Rejections)
					}
				}
				return nil
			})
		}
	}
	// Nothing changed: the genuine leader still leads.
	c.waitLeader(names[2], 5*time.Second, names...)
}

// The runtime restarts mid-run: nodes keep their leader, say the runtime is
// unreachable, and recover.
func TestNodesSurviveRuntimeRestart(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t), freePort(t)}
	sortInts(p)
	for i, port := range p {
		if i == 0 {
			c.startNode(port)
		} else {
			c.startNode(port, p[0])
		}
	}
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1]), strconv.Itoa(p[2])}
	c.waitLeader(names[2], 20*time.Second, names...)

	c.runtime.kill()
	// A membership change while the runtime is down: nobody can certify it.
	c.nodes[names[2]].kill()
	eventually(t, 10*time.Second, "nodes notice the runtime is down", func() error {
		st, err := c.nodes[names[0]].status()
		if err != nil {
			return err
		}
		if st.Runtime.State != "unreachable" {
			return fmt.Errorf("runtime state %q", st.Runtime.State)
		}
		if st.Leader != names[2] {
			return fmt.Errorf("leader changed to %q without the runtime", st.Leader)
		}
		return nil
	})
	c.startRuntime()
	c.waitLeader(names[1], 20*time.Second, names[0], names[1])
}

// Garbage on the gossip ports kills nobody, and the nodes count what they
// drop. memberlist drops unlabelled packets before anything of vouch sees
// them, so the test also sends packets with the cluster's label
// ("vouch/<cluster>") and user messages with bad payloads, which reach the
// node's own decoders, and a push/pull state that is garbage.
func TestNodesSurviveGarbage(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t), freePort(t)}
	sortInts(p)
	c.startNode(p[0])
	c.startNode(p[1], p[0])
	c.startNode(p[2], p[0])
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1]), strconv.Itoa(p[2])}
	c.waitLeader(names[2], 20*time.Second, names...)
	base := map[string]*status{}
	for _, name := range names {
		st, err := c.nodes[name].status()
		if err != nil {
			t.Fatal(err)
		}
		base[name] = st
	}

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		return b
	}
	liar := newLiar(t, c, "liar")
	const k = 20
	for _, port := range p {
		u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			b := garbage(rng.IntN(1400))
			if i%5 == 0 && len(b) > 0 {
				b[0] = byte(i % 16) // plausible memberlist message types
			}
			if i%2 == 1 {
				// Labelled: memberlist takes it for one of its own and
				// tries to decode it.
				if b, err = memberlist.AddLabelHeaderToPacket(b, "vouch/default"); err != nil {
					t.Fatal(err)
				}
			}
			u.Write(b)
		}
		u.Close()
		for i := 0; i < 10; i++ {
			tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				continue
			}
			if i%2 == 1 {
				memberlist.AddLabelHeaderToStream(tc, "vouch/default")
			}
			tc.Write(garbage(rng.IntN(4096)))
			tc.Close()
		}
		// User messages with bad payloads: a certificate that does not
		// decode, an unknown message type, a goodbye without a name.
		to := &memberlist.Node{Name: strconv.Itoa(port), Addr: net.ParseIP("127.0.0.1"), Port: uint16(port)}
		for i := 0; i < k; i++ {
			msgs := [][]byte{append([]byte{1}, garbage(1+rng.IntN(200))...), append([]byte{9}, garbage(rng.IntN(50))...), {2}}
			for j, m := range msgs {
				send := liar.SendBestEffort
				if i%2 == 1 {
					send = liar.SendReliable
				}
				if err := send(to, m); err != nil {
					t.Fatalf("message %d: %v", j, err)
				}
			}
		}
	}
	// A member whose push/pull state is garbage. Its name is not a member
	// ID, so it never enters the election view.
	joiner := newLiar(t, c, "garbage joiner", func(c *memberlist.Config) { c.Delegate = garbageState{} })
	for _, port := range p {
		if _, err := joiner.Join([]string{fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
			t.Fatal(err)
		}
	}

	for _, name := range names {
		n := c.nodes[name]
		b := base[name]
		eventually(t, 10*time.Second, "drops counted on "+name, func() error {
			st, err := n.status()
			if err != nil {
				return err
			}
			for reason, min := range map[string]uint64{"malformed": 2 * k, "unknown_type": k + 1, "bad_packet": 50} {
				if st.Dropped[reason] < b.Dropped[reason]+min {
					return fmt.Errorf("dropped %s: %d, want at least %d more than %d (%v)", reason, st.Dropped[reason], min, b.Dropped[reason], st.Dropped)
				}
			}
			if st.Rejections["malformed"] < b.Rejections["malformed"]+k {
				return fmt.Errorf("malformed certificates not in the rejections: %v", st.Rejections)
			}
			m, err := n.metric(`vouch_node_messages_dropped_total{reason="malformed"}`)
			if err != nil {
				return err
			}
			if uint64(m) < st.Dropped["malformed"] {
				return fmt.Errorf("/metrics says %v malformed, /status %d", m, st.Dropped["malformed"])
			}
			// The process's own metrics are there too (the soak reads
			// go_goroutines from node processes).
			if g, err := n.metric("go_goroutines"); err != nil || g < 1 {
				return fmt.Errorf("/metrics has no go_goroutines (%v, %v)", g, err)
			}
			return nil
		})
		if !n.alive() {
			t.Fatalf("node %s died", name)
		}
	}
	c.waitLeader(names[2], 10*time.Second, names...)
	// A membership change still works after the garbage.
	c.nodes[names[2]].kill()
	c.waitLeader(names[1], 15*time.Second, names[0], names[1])
}

// garbageState is a memberlist delegate whose push/pull state is garbage.
type garbageState struct{}

func (garbageState) NodeMeta(int) []byte                 { return nil }
func (garbageState) NotifyMsg([]byte)                    {}
func (garbageState) GetBroadcasts(int, int) [][]byte     { return nil }
func (garbageState) LocalState(bool) []byte              { return []byte{9, 0xde, 0xad} }
func (garbageState) MergeRemoteState(buf []byte, _ bool) {}

// newLiar starts a memberlist peer that holds the cluster's gossip key:
// a member that lies.
func newLiar(t *testing.T, c *cluster, name string, tune ...func(*memberlist.Config)) *memberlist.Memberlist {
	t.Helper()
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Label = "vouch/default"
	cfg.LogOutput = io.Discard
	ref, err := api.LoadRef(filepath.Join(c.dir, "leader_election.json"))
	if err != nil {
		t.Fatal(err)
	}
	primary, extra, err := ref.GossipKeys()
	if err != nil || primary == nil {
		t.Fatalf("the reference's gossip key: %v", err)
	}
	if cfg.Keyring, err = memberlist.NewKeyring(extra, primary); err != nil {
		t.Fatal(err)
	}
	for _, f := range tune {
		f(cfg)
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	return ml
}

func heldCert(t *testing.T, n *nodeProc) *election.Certificate {
	t.Helper()
	var st struct {
		Certificate struct {
			Wire []byte `json:"wire"`
		} `json:"certificate"`
	}
	if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/status", n.httpPort), &st); err != nil {
		t.Fatal(err)
	}
	cert, err := election.DecodeCertificate(st.Certificate.Wire)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (c *cluster) ownerToken(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(c.dir, "vouch-data", "owner.token"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:len(b)-1])
}

func (c *cluster) client(t *testing.T) *client.Client {
	t.Helper()
	ref, err := api.LoadRef(filepath.Join(c.dir, "leader_election.json"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.rtURL(), client.Options{Trust: ref.Trust, OwnerToken: c.ownerToken(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// deployOther deploys the leader's module under another manifest, so it has
// another checksum.
func (c *cluster) deployOther(t *testing.T, cl *client.Client) client.FunctionRef {
	t.Helper()
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	b.ManifestJSON = []byte(`{"name":"impostor","allow_plaintext_input":true}`)
	d, err := cl.Deploy(context.Background(), b, "")
	if err != nil {
		t.Fatal(err)
	}
	return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: c.ownerToken(t)}
}

func sortInts(p []int) {
	for i := range p {
		for j := i + 1; j < len(p); j++ {
			if p[j] < p[i] {
				p[i], p[j] = p[j], p[i]
			}
		}
	}
}

// maxPort returns a free port above floor: the first one above it that
// binds for both TCP and UDP and was not handed out before. It does not ask
// the kernel for a random port: for sockets with SO_REUSEADDR (all of Go's
// listeners) Linux tries the lower half of the ephemeral range first, so
// when floor sits near the top of that half a random port is almost never
// above it.
func maxPort(t *testing.T, floor int) int {
	t.Helper()
	for p := floor + 1; p <= 65535 && p <= floor+2000; p++ {
		if claim(p) {
			return p
		}
	}
	t.Fatalf("no free port above %d", floor)
	return 0
}

// SIGTERM and SIGINT leave gracefully: the peers log a leave, not a
// failure, and the process exits 0. Nodes stopped at the same moment (as
// systemd or compose do) exit 0 too, although none can confirm its leave
// to peers that are leaving as well, and none tries to rejoin while it
// leaves.
func TestNodesLeaveOnSignal(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)}
	sortInts(p)
	for i, port := range p {
		if i == 0 {
			c.startNode(port)
		} else {
			c.startNode(port, p[0])
		}
	}
	var names []string
	for _, port := range p {
		names = append(names, strconv.Itoa(port))
	}
	c.waitLeader(names[4], 20*time.Second, names...)

	leaves := func(who string, sig os.Signal, peers ...string) {
		t.Helper()
		if code := c.nodes[who].signal(sig, 10*time.Second); code != 0 {
			t.Fatalf("%s exited %d after %v:\n%s", who, code, sig, c.nodes[who].out.String())
		}
		for _, peer := range peers {
			eventually(t, 10*time.Second, peer+" logs that "+who+" left", func() error {
				out := c.nodes[peer].out.String()
				if strings.Contains(out, "member="+who+" how=dead") {
					return fmt.Errorf("%s logged %s as dead", peer, who)
				}
				if !strings.Contains(out, `msg="member departed" node=`+peer+" member="+who+" how=left") {
					return fmt.Errorf("no leave logged")
				}
				return nil
			})
		}
		if out := c.nodes[who].out.String(); strings.Contains(out, "member="+who+" how=") {
			t.Fatalf("%s logged its own departure:\n%s", who, out)
		}
	}
	// The leader leaves on SIGTERM; the next one takes over at once.
	leaves(names[4], syscall.SIGTERM, names[:4]...)
	c.waitLeader(names[3], 10*time.Second, names[:4]...)
	// A follower leaves on SIGINT.
	leaves(names[0], os.Interrupt, names[1:4]...)
	c.waitLeader(names[3], 10*time.Second, names[1:4]...)

	// The rest at once.
	rest := names[1:4]
	for _, name := range rest {
		c.nodes[name].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, name := range rest {
		n := c.nodes[name]
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not exit after SIGTERM", name)
		}
		out := n.out.String()
		if code := n.exitCode(); code != 0 {
			t.Fatalf("%s exited %d when stopped together with its peers:\n%s", name, code, out)
		}
		if i := strings.Index(out, "leaving the cluster"); i < 0 || strings.Contains(out[i:], "reconnected to members") || strings.Contains(out[i:], "reconnect attempt") {
			t.Fatalf("%s tried to rejoin while leaving:\n%s", name, out)
		}
	}
}

// `vouch demo --watch` prints a command that starts one more node; run it
// as printed: the new node joins, and with the highest port it leads.
func TestDemoWatchHintWorks(t *testing.T) {
	dir := t.TempDir()
	demo := start(t, "demo", dir, nil, "demo", "--nodes", "2", "--watch")
	var line, above string
	eventually(t, 30*time.Second, "the demo's hint", func() error {
		out := demo.out.String()
		i := strings.Index(out, "start more nodes with:\n")
		if i < 0 {
			if !demo.alive() {
				t.Fatalf("the demo exited:\n%s", out)
			}
			return fmt.Errorf("no hint yet")
		}
		rest := strings.Split(out[i:], "\n")
		if len(rest) < 3 || !strings.HasPrefix(rest[2], "  (PORT above ") {
			return fmt.Errorf("hint incomplete")
		}
		line = strings.TrimSpace(rest[1])
		above = strings.Fields(strings.TrimPrefix(rest[2], "  (PORT above "))[0]
		return nil
	})
	args := strings.Fields(line)
	if len(args) < 3 || args[0] != "vouch" || args[1] != "node" {
		t.Fatalf("hint %q is not a vouch node command", line)
	}
	floor, err := strconv.Atoi(above)
	if err != nil {
		t.Fatalf("hint names port %q", above)
	}
	port := maxPort(t, floor)
	for i, a := range args {
		if a == "PORT" {
			args[i] = strconv.Itoa(port)
		}
	}
	hp := freePort(t)
	n := &nodeProc{proc: start(t, "hinted node", dir, nil, append(args[1:], "--http", fmt.Sprintf("127.0.0.1:%d", hp))...), port: port, httpPort: hp}
	me := strconv.Itoa(port)
	eventually(t, 20*time.Second, "the hinted node joins and leads", func() error {
		st, err := n.status()
		if err != nil {
			return err
		}
		if len(st.View) != 2 || st.Leader != me || !st.IsLeader {
			return fmt.Errorf("view %v, leader %q (runtime %s %s)", st.View, st.Leader, st.Runtime.State, st.Runtime.Detail)
		}
		return nil
	})
	if code := demo.signal(os.Interrupt, 10*time.Second); code != 0 {
		t.Fatalf("the demo exited %d on Ctrl-C:\n%s", code, demo.out.String())
	}
}
