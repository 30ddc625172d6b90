//go:build netns && linux

package netns

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replicaSet is GET /v1/replicas's body (the replicated runtime).
type replicaSet struct {
	Replicas []struct {
		ID       string `json:"id"`
		APIURL   string `json:"api_url"`
		Suffrage string `json:"suffrage"`
	} `json:"replicas"`
	Leader       string `json:"leader"`
	Self         string `json:"self"`
	State        string `json:"state"`
	AppliedIndex uint64 `json:"applied_index"`
}

// replica is a runtime replica's host and process.
type replica struct {
	*host
	id   string
	args []string
	p    *proc
}

func (r *replica) url() string { return fmt.Sprintf("https://%s:%d", r.ip(runtimeNet), runtimePort) }

func (r *replica) replicas() (*replicaSet, error) {
	resp, err := r.http.Get(r.url() + "/v1/replicas")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rs replicaSet
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /v1/replicas: %s", r.id, resp.Status)
	}
	return &rs, json.NewDecoder(resp.Body).Decode(&rs)
}

// requireReplicas skips unless the vouch under test has the replicated
// runtime's flags.
func requireReplicas(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(vouchBin, "enclave", "--help").CombinedOutput()
	if !strings.Contains(string(out), "--replica-id") {
		t.Skip("netns test bed: this vouch has no replicated runtime (vouch enclave --replica-id); set VOUCH_NETNS_VOUCH to a binary that has")
	}
}

// Three runtime replicas in three namespaces, started with the command
// lines of deploy/compose.replicas.yaml (one bootstraps, two join it, one
// shared simulated root), and three nodes electing through them. A
// follower replica dies and restarts with its flags unchanged, --join
// included; the raft leader dies and another replica serves writes with
// the same owner credential; the old leader restarts with --bootstrap
// still given and rejoins as a follower.
func TestReplicatedRuntimeAcrossNamespaces(t *testing.T) {
	requireNetns(t)
	requireReplicas(t)
	b := newBed(t)
	reps := map[string]*replica{}
	for _, id := range []string{"r1", "r2", "r3"} {
		reps[id] = &replica{host: b.host(id, runtimeNet), id: id}
	}
	start := func(r *replica) {
		r.p = r.start(nil, r.args...)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		r := reps[id]
		addr := r.ip(runtimeNet)
		r.args = []string{"enclave", "--listen", fmt.Sprintf("%s:%d", addr, runtimePort), "--data", "data-" + id,
			"--replica-id", id, "--simulated-root", "simroot", "--raft-listen", fmt.Sprintf("%s:%d", addr, runtimePort+1),
			"--advertise-url", r.url()}
		if id == "r1" {
			r.args = append(r.args, "--bootstrap")
		} else {
			r.args = append(r.args, "--join", reps["r1"].url())
		}
	}
	start(reps["r1"])
	waitReplicas := func(within time.Duration, ask *replica, leaderNot string, voters int) *replicaSet {
		t.Helper()
		var rs *replicaSet
		eventually(t, within, fmt.Sprintf("%s sees a leader other than %q and %d voters", ask.id, leaderNot, voters), func() error {
			var err error
			if rs, err = ask.replicas(); err != nil {
				return err
			}
			n := 0
			for _, m := range rs.Replicas {
				if m.Suffrage == "Voter" {
					n++
				}
			}
			if rs.Leader == "" || rs.Leader == leaderNot || n != voters {
				return fmt.Errorf("leader %q, %d voters: %+v", rs.Leader, n, rs)
			}
			return nil
		})
		return rs
	}
	waitReplicas(30*time.Second, reps["r1"], "", 1)
	start(reps["r2"])
	waitReplicas(60*time.Second, reps["r1"], "", 2)
	start(reps["r3"])
	waitReplicas(60*time.Second, reps["r1"], "", 3)

	// Nodes elect through the leader replica.
	owner := filepath.Join(b.dir, "data-r1", "owner.token")
	trust := b.simulatedTrust("simroot")
	cli := func(r *replica, args ...string) string {
		return r.run(nil, append(append(args, "--enclave", r.url(), "--owner-token-file", owner), trust...)...)
	}
	c := &cluster{b: b, rt: reps["r1"].host, rtURL: reps["r1"].url(), nodes: map[string]*node{}}
	var d struct {
		ID       string `json:"function_id"`
		Checksum string `json:"function_checksum"`
	}
	if err := json.Unmarshal([]byte(cli(reps["r1"], "deploy", "--builtin", "leader", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	c.fid, c.sum = d.ID, d.Checksum
	ref := cli(reps["r1"], "token", c.fid, "--function-checksum", c.sum, "-o", "json")
	if err := os.WriteFile(filepath.Join(b.dir, "leader_election.json"), []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
	c.addHosts("n1", "n2", "n3")
	c.startAll()
	c.waitMembers(60*time.Second, c.names...)
	c.waitAgree(60*time.Second, "n3", c.names...)

	// A follower dies: two of three replicas still certify a failover.
	reps["r3"].p.kill()
	c.nodes["n3"].p.kill()
	c.waitAgree(30*time.Second, "n2", "n1", "n2")
	// It restarts with --join still given: its keys and raft state are on
	// disk, so it neither joins again nor is refused.
	start(reps["r3"])
	eventually(t, 60*time.Second, "r3 follows again", func() error {
		rs, err := reps["r3"].replicas()
		if err != nil {
			return err
		}
		if rs.State != "Follower" || rs.Leader != "r1" {
			return fmt.Errorf("r3: %s, leader %q", rs.State, rs.Leader)
		}
		return nil
	})

	// The raft leader dies: another replica leads and serves a write with
	// the service's owner credential.
	killed := time.Now()
	reps["r1"].p.kill()
	rs := waitReplicas(60*time.Second, reps["r2"], "r1", 3)
	t.Logf("replicated runtime: r1 (raft leader) SIGKILLed; %s leads after %v", rs.Leader, time.Since(killed).Round(time.Millisecond))
	leader := reps[rs.Leader]
	eventually(t, 30*time.Second, "the new leader serves a deploy", func() error {
		cmd := exec.Command("ip", append([]string{"netns", "exec", leader.ns, vouchBin, "deploy", "--builtin", "election", "-o", "json",
			"--enclave", leader.url(), "--owner-token-file", owner}, trust...)...)
		cmd.Dir = b.dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	// The old leader restarts with --bootstrap still given: it holds raft
	// state, so it rejoins as a follower instead of founding a service.
	start(reps["r1"])
	eventually(t, 60*time.Second, "r1 follows "+rs.Leader, func() error {
		got, err := reps["r1"].replicas()
		if err != nil {
			return err
		}
		if got.State != "Follower" || got.Leader != rs.Leader {
			return fmt.Errorf("r1: %s, leader %q", got.State, got.Leader)
		}
		return nil
	})
}
