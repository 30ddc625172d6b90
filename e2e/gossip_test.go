package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/forgedgossip"
)

// The attack of issue 11: one unauthenticated UDP "dead" message, sent
// from outside the cluster, names the leader, claims to come from the
// leader itself (memberlist then takes it for the leader's own leave) and
// carries the highest incarnation, so nothing the leader says outranks it.
// Without a gossip key the followers drop the living leader and elect
// another: two leaders.

// trio starts three nodes as the README does, with the reference in
// ./leader_election.json, and waits for the highest to lead.
func (c *cluster) trio() []string {
	c.t.Helper()
	p := []int{freePort(c.t), freePort(c.t), freePort(c.t)}
	sortInts(p)
	c.startNode(p[0])
	c.startNode(p[1], p[0])
	c.startNode(p[2], p[0])
	names := []string{strconv.Itoa(p[0]), strconv.Itoa(p[1]), strconv.Itoa(p[2])}
	c.waitLeader(names[2], 20*time.Second, names...)
	return names
}

// forgeDead sends each node k forged dead messages about the leader from
// a socket that belongs to no member.
func (c *cluster) forgeDead(names []string, k int) {
	c.t.Helper()
	leader := names[len(names)-1]
	pkt, err := forgedgossip.DeadPacket("vouch/default", leader, leader, 1<<32-1)
	if err != nil {
		c.t.Fatal(err)
	}
	var addrs []string
	for _, name := range names {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", c.nodes[name].port))
	}
	for range k {
		if err := forgedgossip.Send(pkt, addrs...); err != nil {
			c.t.Fatal(err)
		}
	}
}

// By default (the key from the reference) every node drops the forged
// packets undecrypted, and nobody leaves anyone's view.
func TestForgedDeadPacketEvictsNoOne(t *testing.T) {
	c := newCluster(t)
	names := c.trio()
	base := map[string]uint64{}
	for _, name := range names {
		st, err := c.nodes[name].status()
		if err != nil {
			t.Fatal(err)
		}
		base[name] = st.Dropped["bad_packet"]
		if out := c.nodes[name].out.String(); !strings.Contains(out, "gossip is encrypted and authenticated") || !strings.Contains(out, `key_from="the function reference"`) {
			t.Fatalf("%s does not say it took the reference's gossip key:\n%s", name, out)
		}
	}
	const k = 5
	c.forgeDead(names, k)
	for _, name := range names {
		eventually(t, 10*time.Second, name+" drops the forged packets", func() error {
			st, err := c.nodes[name].status()
			if err != nil {
				return err
			}
			if st.Dropped["bad_packet"] < base[name]+k {
				return fmt.Errorf("bad_packet %d, want at least %d", st.Dropped["bad_packet"], base[name]+k)
			}
			return nil
		})
	}
	// Every packet was dropped before memberlist read it, so nothing
	// can have changed.
	for _, name := range names {
		st, err := c.nodes[name].status()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.View, names) || st.Leader != names[2] || st.IsLeader != (name == names[2]) {
			t.Fatalf("%s after the forged packets: view %v, leader %q, is_leader %v", name, st.View, st.Leader, st.IsLeader)
		}
	}
}

// With --insecure-gossip the same packets work: the followers fail over
// from a leader that never stopped, and for a while two nodes act as
// leader. This is what TestForgedDeadPacketEvictsNoOne shows the key
// prevents.
func TestForgedDeadPacketWithInsecureGossip(t *testing.T) {
	c := newCluster(t)
	c.nodeArgs = []string{"--insecure-gossip"}
	names := c.trio()
	if out := c.nodes[names[0]].out.String(); !strings.Contains(out, "gossip is NOT authenticated") {
		t.Fatalf("no warning that gossip is not authenticated:\n%s", out)
	}
	c.forgeDead(names, 5)
	eventually(t, 15*time.Second, "two leaders", func() error {
		var leaders []string
		for _, name := range names {
			st, err := c.nodes[name].status()
			if err != nil {
				return err
			}
			if st.IsLeader {
				leaders = append(leaders, name)
			}
		}
		if len(leaders) < 2 {
			return fmt.Errorf("acting leaders %v", leaders)
		}
		return nil
	})
	if !c.nodes[names[2]].alive() {
		t.Fatal("the old leader died: the failover would be legitimate")
	}
}
