package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"vouch/api"
	"vouch/client"
	"vouch/election"
	"vouch/functions"
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

// Forged, mismatched and replayed certificates, sent by a peer that speaks
// memberlist: every node rejects each one and counts it by reason.
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

	liar := newLiar(t)
	send := func(cert *election.Certificate) {
		for _, name := range names {
			n := c.nodes[name]
			if err := liar.SendReliable(&memberlist.Node{Name: name, Addr: net.ParseIP("127.0.0.1"), Port: uint16(n.port)}, append([]byte{1}, cert.Encode()...)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// 1. A forged certificate: a higher seq under the same signature.
	forged := *cur
	forged.Receipt.Seq += 1000
	send(&forged)
	// 2. A replayed older certificate.
	send(old)
	// 3. A genuine certificate from another function (another checksum).
	rt := c.client(t)
	other := c.deployOther(t, rt)
	view := []string{names[0], names[1], names[2]}
	res, err := rt.Run(context.Background(), other, election.Request("default", view))
	if err != nil {
		t.Fatal(err)
	}
	send(&election.Certificate{Output: res.Output, Receipt: res.Receipt})
	// 4. A genuine certificate over a member list that is not the cluster's.
	lead := client.FunctionRef{ID: c.fid, Checksum: c.sum, Token: c.ownerToken(t)}
	res, err = rt.Run(context.Background(), lead, election.Request("default", []string{names[0], names[1], "99999"}))
	if err != nil {
		t.Fatal(err)
	}
	send(&election.Certificate{Output: res.Output, Receipt: res.Receipt})

	want := map[string]uint64{"bad_signature": 1, "stale": 1, "wrong_checksum": 1, "members_mismatch": 1}
	for _, name := range names {
		n := c.nodes[name]
		eventually(t, 10*time.Second, "rejections counted on "+name, func() error {
			st, err := n.status()
			if err != nil {
				return err
			}
			for reason, min := range want {
				if st.Rejections[reason] < min {
					return fmt.Errorf("rejections %v, want at least %v", st.Rejections, want)
				}
			}
			return nil
		})
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

// Garbage on the gossip ports kills nobody.
func TestNodesSurviveGarbage(t *testing.T) {
	c := newCluster(t)
	p := []int{freePort(t), freePort(t)}
	sortInts(p)
	c.startNode(p[0])
	c.startNode(p[1], p[0])
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1])}
	c.waitLeader(names[1], 20*time.Second, names...)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, port := range p {
		u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			b := make([]byte, rng.IntN(1500))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			if i%5 == 0 && len(b) > 0 {
				b[0] = byte(i % 16) // plausible memberlist message types
			}
			u.Write(b)
		}
		u.Close()
		for i := 0; i < 20; i++ {
			tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				continue
			}
			b := make([]byte, rng.IntN(4096))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			tc.Write(b)
			tc.Close()
		}
	}
	for _, name := range names {
		if !c.nodes[name].alive() {
			t.Fatalf("node %s died", name)
		}
	}
	c.waitLeader(names[1], 10*time.Second, names...)
	// A membership change still works after the garbage.
	c.nodes[names[1]].kill()
	c.waitLeader(names[0], 15*time.Second, names[0])
}

func newLiar(t *testing.T) *memberlist.Memberlist {
	t.Helper()
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = "liar"
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Label = "vouch/default"
	cfg.LogOutput = io.Discard
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

// maxPort returns a free port above floor.
func maxPort(t *testing.T, floor int) int {
	for i := 0; i < 200; i++ {
		if p := freePort(t); p > floor {
			return p
		}
	}
	t.Fatalf("no free port above %d", floor)
	return 0
}
