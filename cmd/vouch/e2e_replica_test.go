package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
)

var seqRE = regexp.MustCompile(`receipt verified: seq (\d+)`)

// replicaSet reads GET /v1/replicas: status only, so it does not pin the
// replica's attested TLS key (the CLI does).
func replicaSet(url string) (api.ReplicaSet, bool) {
	var rs api.ReplicaSet
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get(url + "/v1/replicas")
	if err != nil {
		return rs, false
	}
	defer resp.Body.Close()
	return rs, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&rs) == nil
}

// TestE2EReplicas runs three `vouch enclave` replicas of one service as
// real processes: one bootstraps it, two join through it; a function
// deployed on the leader runs on whichever replica leads after the leader
// is killed with SIGKILL, with a greater seq, and the killed replica
// restarts from its data directory.
func TestE2EReplicas(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	root := t.TempDir()
	env := []string{"VOUCH_SIMULATED_ROOT=" + root}
	data := []string{filepath.Join(t.TempDir(), "r1"), filepath.Join(t.TempDir(), "r2"), filepath.Join(t.TempDir(), "r3")}
	raft := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	procs := make([]*enclaveProc, 3)
	procs[0] = startEnclave(t, work, data[0], 0, env, "--replica-id", "r1", "--raft-listen", raft[0], "--bootstrap")
	if !strings.Contains(procs[0].stderr(), "OWNER CREDENTIAL") {
		t.Fatalf("bootstrap did not print the owner credential:\n%s", procs[0].stderr())
	}
	eventually("r1 leads", func() bool { rs, ok := replicaSet(procs[0].url); return ok && rs.Leader == "r1" })
	for i := 1; i < 3; i++ {
		procs[i] = startEnclave(t, work, data[i], 0, env, "--replica-id", fmt.Sprintf("r%d", i+1), "--raft-listen", raft[i], "--join", procs[0].url)
	}
	eventually("3 voters", func() bool {
		rs, ok := replicaSet(procs[0].url)
		n := 0
		for _, m := range rs.Replicas {
			if m.Suffrage == "Voter" {
				n++
			}
		}
		return ok && n == 3
	})
	// The leader, as the live replicas see it (raft may re-elect under
	// load, so every step below goes to the leader of the moment).
	leader := func(live []*enclaveProc) *enclaveProc {
		var found *enclaveProc
		eventually("a leader", func() bool {
			for _, p := range live {
				if rs, ok := replicaSet(p.url); ok && rs.Leader == rs.Self {
					found = p
					return true
				}
			}
			return false
		})
		return found
	}
	var id, sum, tok string
	eventually("a deploy on the leader", func() bool {
		r := newCLI(t, work, "VOUCH_ENCLAVE="+leader(procs).url, "VOUCH_DATA="+data[0]).run("deploy", "--builtin", "leader")
		if r.code != 0 {
			return false
		}
		id, sum = parseDeploy(t, r)
		return true
	})
	eventually("a token from the leader", func() bool {
		r := newCLI(t, work, "VOUCH_ENCLAVE="+leader(procs).url, "VOUCH_DATA="+data[0]).run("token", id, "--function-checksum", sum)
		tok = strings.TrimSpace(r.stdout)
		return r.code == 0
	})
	run := func(live []*enclaveProc) uint64 {
		t.Helper()
		var n uint64
		eventually("a run on the leader", func() bool {
			r := newCLI(t, t.TempDir(), "VOUCH_ENCLAVE="+leader(live).url).run("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--token", tok)
			m := seqRE.FindStringSubmatch(r.stderr)
			if r.code != 0 || m == nil {
				return false
			}
			n, _ = strconv.ParseUint(m[1], 10, 64)
			return true
		})
		return n
	}
	before := run(procs)

	killed := leader(procs)
	killed.kill()
	var live []*enclaveProc
	for _, p := range procs {
		if p != killed {
			live = append(live, p)
		}
	}
	if after := run(live); after <= before {
		t.Fatalf("seq %d after the failover, not above %d", after, before)
	}

	// The killed replica restarts from its data directory alone.
	i := 0
	for procs[i] != killed {
		i++
	}
	back := startEnclave(t, work, data[i], killed.port, env, "--replica-id", fmt.Sprintf("r%d", i+1), "--raft-listen", raft[i])
	eventually("the restarted replica follows a leader", func() bool {
		rs, ok := replicaSet(back.url)
		return ok && rs.Leader != "" && rs.AppliedIndex > 0
	})

	// The operator's view, and removing a replica.
	all := strings.Join([]string{back.url, live[0].url, live[1].url}, ",")
	r := newCLI(t, work, "VOUCH_ENCLAVE="+all).ok("enclave", "members")
	for _, want := range []string{"Leader ➜ r", "r1", "r2", "r3", "Voter"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("enclave members does not say %q:\n%s", want, r)
		}
	}
	// Remove a follower (a leader does not remove itself).
	var gone string
	var stay *enclaveProc
	eventually("a follower removed", func() bool {
		lead := leader([]*enclaveProc{back, live[0], live[1]})
		rs, ok := replicaSet(lead.url)
		if !ok {
			return false
		}
		for _, m := range rs.Replicas {
			if m.ID != rs.Self {
				gone = m.ID
			}
		}
		stay = lead
		return newCLI(t, work, "VOUCH_ENCLAVE="+all, "VOUCH_OWNER_TOKEN_FILE="+filepath.Join(data[0], "owner.token")).run("enclave", "remove", gone).code == 0
	})
	eventually(gone+" is no longer a member", func() bool {
		rs, ok := replicaSet(stay.url)
		if !ok || len(rs.Replicas) != 2 {
			return false
		}
		for _, m := range rs.Replicas {
			if m.ID == gone {
				return false
			}
		}
		return true
	})
	r = newCLI(t, work, "VOUCH_ENCLAVE="+stay.url).ok("enclave", "members", "-o", "json")
	var rs api.ReplicaSet
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs.Replicas) != 2 {
		t.Fatalf("enclave members -o json: %v\n%s", err, r)
	}
}
