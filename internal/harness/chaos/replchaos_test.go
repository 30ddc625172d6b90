package chaos

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
)

var (
	flagReplicaDuration = flag.Duration("chaos.replica-duration", defaultReplicaDuration, "how long TestChaosReplicas injects replica faults; 0 skips it")
	flagReplicaMode     = flag.String("chaos.replica-mode", "views", "TestChaosReplicas' election scheme: views or seq")
)

// replica faults
const (
	rfKill      = iota // SIGKILL a replica, restart it from its data directory
	rfPartition        // cut a replica's raft traffic to and from the others
	rfRollback         // stop a replica, restore its older copy, start it
)

var rfNames = []string{"kill", "partition", "rollback"}

// rfault is one replica fault of the schedule.
type rfault struct {
	kind   int
	target int  // replica index
	leader bool // aim at whoever leads then (target stands in if none)
	node   bool // also kill the leader node for the fault's duration
	hold   time.Duration
	gap    time.Duration // pause after convergence
}

func (f rfault) String() string {
	who := fmt.Sprintf("replica #%d", f.target)
	if f.leader {
		who = fmt.Sprintf("the leader replica (else #%d)", f.target)
	}
	return fmt.Sprintf("%s %s for %.1fs", rfNames[f.kind], who, f.hold.Seconds())
}

// makeReplicaSchedule draws replica faults from seed: the first three
// cover the three kinds in a random order, the rest are drawn evenly; half
// aim at the leader of the moment, and during half of them the leader
// node is killed too (so that the nodes elect while a replica is
// down or cut off). Faults come one at a time: each is
// lifted and the replicas and nodes converge before the next.
func makeReplicaSchedule(seed uint64, replicas, n int) []rfault {
	rng := rand.New(rand.NewPCG(seed, 0x7265706c))
	kinds := []int{rfKill, rfPartition, rfRollback}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var s []rfault
	for i := 0; i < n; i++ {
		k := rng.IntN(3)
		if i < len(kinds) {
			k = kinds[i]
		}
		s = append(s, rfault{kind: k, target: rng.IntN(replicas), leader: rng.IntN(2) == 0, node: rng.IntN(2) == 0,
			hold: time.Duration(1000+rng.IntN(3000)) * time.Millisecond, gap: time.Duration(300+rng.IntN(1200)) * time.Millisecond})
	}
	return s
}

func TestReplicaScheduleIsSeeded(t *testing.T) {
	for seed := uint64(1); seed < 30; seed++ {
		a, b := makeReplicaSchedule(seed, 3, 10), makeReplicaSchedule(seed, 3, 10)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("seed %d: two schedules", seed)
		}
		seen := map[int]bool{}
		for _, f := range a[:3] {
			seen[f.kind] = true
		}
		if len(seen) != 3 {
			t.Fatalf("seed %d: the first three faults miss a kind: %v", seed, a[:3])
		}
	}
}

// TestChaosReplicas runs three runtime replicas and a cluster of nodes
// (signed views by default) and, one at a time, kills a replica (SIGKILL,
// restart from its data directory with its original flags), cuts one off
// from the others (its raft proxy refuses and drops connections both ways)
// or rolls one back (stop, restore the copy of its data directory taken at
// the start, start). After each fault is lifted the replicas and the
// nodes must converge. Throughout, the harness runs a function through the
// SDK (collecting its receipts) and, on every live replica, a run with a
// revoked token and a run of a deleted function, which must never be
// signed. At the end every live replica must still list the functions the
// harness deployed and not the deleted one, and the checker finds no
// violation in the nodes' event logs, no receipt seq issued twice across
// the nodes' certificates and the harness's runs, and no two certificates
// for one term. It prints one summary line starting with "chaos-replicas: ".
func TestChaosReplicas(t *testing.T) {
	if *flagReplicaDuration <= 0 {
		t.Skip("-chaos.replica-duration 0 (the default without -tags chaos)")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = drawSeed()
	}
	mode := *flagReplicaMode
	if mode != "views" && mode != "seq" {
		t.Fatalf("-chaos.replica-mode %q: want views or seq", mode)
	}
	n, procs := *flagNodes, *flagProcs
	const replicas = 3
	fmt.Printf("chaos-replicas: seed=%d mode=%s duration=%s replicas=%d nodes=%d (%d processes) raft timeout=%v — replay with -run TestChaosReplicas -chaos.seed %d -chaos.replica-duration %s\n",
		seed, mode, *flagReplicaDuration, replicas, n, procs, replicaTimeout, seed, *flagReplicaDuration)
	dir, err := os.MkdirTemp("", "vouch-chaos-replicas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || *flagKeep {
			t.Logf("logs, event logs and the schedule are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	h := newHarnessReplicas(t, dir, mode, n, procs, replicas, seed)
	defer h.stopAll()
	rs := h.rs
	owner, err := os.ReadFile(filepath.Join(rs.reps[0].dataDir, "owner.token"))
	if err != nil {
		t.Fatal(err)
	}
	ownerTok := strings.TrimSpace(string(owner))

	// What must survive: two functions deployed now (one more mid-run),
	// one deployed and deleted, a token revoked.
	var durable Durable
	deploy := func(name string) (id, sum string) {
		var d struct {
			ID       string `json:"function_id"`
			Checksum string `json:"function_checksum"`
		}
		err := poll(h.ctx, 60*time.Second, func() error {
			out, err := h.cli("deploy", "--builtin", "leader", "--name", name, "-o", "json", "--allow-simulated")
			if err != nil {
				return err
			}
			return json.Unmarshal(out, &d)
		})
		if err != nil {
			t.Fatalf("deploying %s: %v", name, err)
		}
		return d.ID, d.Checksum
	}
	mint := func(id, sum string) string {
		var tok string
		err := poll(h.ctx, 60*time.Second, func() error {
			out, err := h.cli("token", id, "--function-checksum", sum, "--allow-simulated", "--expiry", "24h")
			tok = strings.TrimSpace(string(out))
			return err
		})
		if err != nil {
			t.Fatalf("minting a token for %s: %v", id, err)
		}
		return tok
	}
	keepID, keepSum := deploy("keep-1")
	keep2ID, _ := deploy("keep-2")
	goneID, goneSum := deploy("gone")
	goneTok := mint(goneID, goneSum)
	if err := poll(h.ctx, 60*time.Second, func() error { _, err := h.cli("delete", goneID); return err }); err != nil {
		t.Fatalf("deleting %s: %v", goneID, err)
	}
	keepTok := mint(keepID, keepSum)
	revokedTok := mint(keepID, keepSum)
	if err := poll(h.ctx, 60*time.Second, func() error { _, err := h.cli("token", "revoke", revokedTok); return err }); err != nil {
		t.Fatalf("revoking: %v", err)
	}
	durable.Functions = []string{h.ref.FunctionID, keepID, keep2ID}
	durable.Deleted = []string{goneID}
	t.Logf("deployed %s and %s, deleted %s, revoked a token of %s", keepID, keep2ID, goneID, keepID)

	for _, m := range h.members {
		if err := h.start(m); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := h.converge(time.Now(), 60*time.Second, time.Second); err != nil {
		t.Fatalf("the cluster did not agree before any fault: %v", err)
	} else {
		t.Logf("%s: %d nodes agreed in %v before any fault", mode, n, d.Round(time.Millisecond))
	}

	// The probes: runs through the SDK (receipts collected), and forbidden
	// runs on every live replica.
	probeOut, err := os.OpenFile(filepath.Join(dir, "probes.out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer probeOut.Close()
	h.probeLog = slog.New(slog.NewTextHandler(probeOut, nil))
	pr := &prober{h: h, keep: client.FunctionRef{ID: keepID, Checksum: keepSum, Token: keepTok},
		revoked: client.FunctionRef{ID: keepID, Checksum: keepSum, Token: revokedTok},
		gone:    client.FunctionRef{ID: goneID, Checksum: goneSum, Token: goneTok}}
	probeCtx, stopProbes := context.WithCancel(h.ctx)
	var probes sync.WaitGroup
	probes.Add(1)
	go func() { defer probes.Done(); pr.loop(probeCtx) }()
	defer func() { stopProbes(); probes.Wait() }()

	var violations []string
	var conv []time.Duration
	counts := map[string]int{}
	h.net.SetFaults(background)
	sched := makeReplicaSchedule(seed, replicas, 1000)
	start := time.Now()
	var outcomes []string
	for i := 0; time.Since(start) < *flagReplicaDuration; i++ {
		f := sched[i]
		target := rs.reps[f.target]
		if f.leader {
			if l := rs.leader(); l != nil {
				target = l
			}
		}
		at := time.Since(start)
		t.Logf("%6.2fs fault %d: %s -> %s", at.Seconds(), i, f, target.id)
		counts[rfNames[f.kind]]++
		var killedNode *member
		if f.node {
			if killedNode = h.currentLeader(); killedNode != nil {
				h.kill(killedNode)
				counts["node"]++
			}
		}
		switch f.kind {
		case rfKill:
			rs.kill(target)
			time.Sleep(f.hold) // the schedule's clock
			err = rs.start(target)
		case rfPartition:
			wasLeader := rs.leader() == target
			rs.partition(target.idx)
			time.Sleep(f.hold)
			// What the cut-off replica thinks just before the heal: a
			// leader cut off must have stepped down (raft's leader lease).
			seen := "no answer"
			if st, err := rs.status(target); err == nil {
				seen = fmt.Sprintf("state %s, leader %q", st.State, st.Leader)
				if st.State == "Leader" && f.hold > 3*replicaTimeout {
					violations = append(violations, fmt.Sprintf("fault %d: %s still leads %v after it was cut off", i, target.id, f.hold))
				}
			}
			outcomes = append(outcomes, fmt.Sprintf("%s cut off (leader before: %v): %s", target.id, wasLeader, seen))
			rs.heal()
		case rfRollback:
			rs.kill(target)
			err = rollback(target)
			time.Sleep(f.hold)
			if err == nil {
				err = rs.start(target)
			}
			if err == nil {
				what, bad := observeRollback(h, target, durable, ownerTok)
				outcomes = append(outcomes, what)
				violations = append(violations, bad...)
			}
		}
		if killedNode != nil && err == nil {
			err = h.start(killedNode)
		}
		if err != nil {
			violations = append(violations, fmt.Sprintf("fault %d (%s): %v", i, f, err))
			break
		}
		lifted := time.Now()
		if err := rs.converge(lifted, *flagConverge); err != nil {
			violations = append(violations, fmt.Sprintf("after fault %d (%s on %s): %v", i, f, target.id, err))
			break
		}
		d, err := h.converge(lifted, *flagConverge, time.Second)
		if err != nil {
			violations = append(violations, fmt.Sprintf("after fault %d (%s on %s): the nodes: %v", i, f, target.id, err))
			break
		}
		conv = append(conv, d)
		t.Logf("%6.2fs fault %d lifted; replicas and nodes converged %v later", time.Since(start).Seconds(), i, d.Round(time.Millisecond))
		if i == 1 {
			// A deploy in the middle of the run must survive too.
			id, _ := deploy("keep-mid")
			durable.Functions = append(durable.Functions, id)
		}
		time.Sleep(f.gap)
	}
	h.net.SetFaults(Faults{})
	if rs.partitioned() {
		rs.heal()
	}
	stopProbes()
	probes.Wait()

	// Every live replica keeps every deployment, deletion and revocation.
	var views []ReplicaView
	for _, r := range rs.reps {
		if !r.up {
			continue
		}
		v := ReplicaView{Replica: r.id}
		ids, err := rs.functionIDs(r, ownerTok)
		if err != nil {
			violations = append(violations, err.Error())
			continue
		}
		v.Listed = ids
		v.RevokedServed = pr.served(r, pr.revoked)
		v.DeletedServed = pr.served(r, pr.gone)
		views = append(views, v)
	}
	violations = append(violations, CheckDurable(durable, views)...)
	violations = append(violations, pr.violations()...)
	for _, d := range h.unexpectedDeaths() {
		violations = append(violations, "unexpected death: "+d)
	}
	h.stopAll()
	stopped := time.Now()

	rep, err := CheckFiles(h.eventFiles(), h.trust())
	if err != nil {
		t.Fatal(err)
	}
	violations = append(violations, rep.Violations...)
	harnessReceipts := pr.receipts()
	violations = append(violations, CheckReceipts(append(slices.Clone(rep.Receipts), harnessReceipts...))...)
	iv, err := h.leaderships(stopped)
	if err != nil {
		t.Fatal(err)
	}
	overlaps := Overlaps(iv)
	for _, o := range overlaps {
		if mode == "views" && (o.For > *flagOverlap || *flagOverlap == 0) {
			violations = append(violations, "two leaders at once: "+o.String())
		}
	}
	if rep.Accepted == 0 || rep.Elections == 0 {
		violations = append(violations, "the event logs hold no accepted certificate")
	}
	if len(harnessReceipts) == 0 {
		violations = append(violations, "the harness got no receipt from its runs")
	}
	var maxConv time.Duration
	for _, d := range conv {
		maxConv = max(maxConv, d)
	}
	faults := counts["kill"] + counts["partition"] + counts["rollback"]
	summary := fmt.Sprintf("chaos-replicas: seed=%d faults=%d (replica kills=%d, partitions=%d [%d raft connections refused or cut, %d from an unknown dialler], rollbacks=%d, leader nodes killed meanwhile=%d) what the replicas did: [%s] harness runs=%d ok, %d failed, forbidden runs refused=%d; receipts checked=%d (%d from node certificates, %d from harness runs) elections=%d overlaps=%d convergence after each fault max=%v violations=%d mode=%s duration=%s raft timeout=%v",
		seed, faults, counts["kill"], counts["partition"], rs.refused.Load(), rs.unknown.Load(), counts["rollback"], counts["node"], strings.Join(outcomes, "; "),
		len(harnessReceipts), pr.failed(), pr.refusedCount(), len(rep.Receipts)+len(harnessReceipts), len(rep.Receipts), len(harnessReceipts),
		rep.Elections, len(overlaps), maxConv.Round(time.Millisecond), len(violations), mode, *flagReplicaDuration, replicaTimeout)
	fmt.Println(summary)
	t.Log(summary)
	t.Logf("checker: %d events, %d certificates accepted, %d leader actions, %d re-accepted after a restart", rep.Events, rep.Accepted, rep.Acted, rep.Reaccepted)
	for i, v := range violations {
		if i == 30 {
			t.Errorf("... and %d more", len(violations)-30)
			break
		}
		t.Errorf("violation: %s", v)
	}
	if len(violations) > 0 {
		t.Errorf("replay: go test -tags chaos ./internal/harness/chaos -run 'TestChaosReplicas' -chaos.seed %d -chaos.replica-duration %s", seed, *flagReplicaDuration)
	}
}

// rollback replaces a stopped replica's data directory by its older copy.
func rollback(r *replica) error {
	if err := os.RemoveAll(r.dataDir); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", r.old, r.dataDir).CombinedOutput(); err != nil {
		return fmt.Errorf("restoring %s: %v: %s", r.old, err, out)
	}
	return nil
}

// observeRollback watches a replica restarted from an older copy of its
// data directory until it has re-synced (it applied the log as far as the
// others committed and lists what the harness deployed and deleted) or,
// for 30 s, refuses to serve; it returns what happened, for the summary.
// Stale reads meanwhile (GET /v1/functions from the old state) are
// counted, not violations: a read signs nothing. Leading before it
// caught up is a violation (a leader signs).
func observeRollback(h *harness, r *replica, d Durable, owner string) (string, []string) {
	rs := h.rs
	target := rs.commitIndex()
	start := time.Now()
	stale, refusing := 0, 0
	var bad []string
	for time.Since(start) < 30*time.Second {
		st, err := rs.status(r)
		if err == nil && st.State == "Leader" && st.AppliedIndex < target && len(bad) == 0 {
			bad = append(bad, fmt.Sprintf("%s leads from its rolled-back state (applied %d, the others committed %d)", r.id, st.AppliedIndex, target))
		}
		resp, herr := httpc.Get(r.url() + "/healthz")
		code := 0
		if herr == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if code == 503 {
			refusing++
		}
		if err == nil && st.AppliedIndex >= target {
			if ids, err := rs.functionIDs(r, owner); err == nil {
				if len(CheckDurable(d, []ReplicaView{{Replica: r.id, Listed: ids}})) == 0 {
					return fmt.Sprintf("%s re-synced in %.1fs (%d stale reads, %d polls refusing)", r.id, time.Since(start).Seconds(), stale, refusing), bad
				}
				stale++
			}
		} else if ids, err := rs.functionIDs(r, owner); err == nil && len(CheckDurable(d, []ReplicaView{{Replica: r.id, Listed: ids}})) > 0 {
			stale++
		}
		time.Sleep(100 * time.Millisecond)
	}
	if refusing == 0 {
		bad = append(bad, fmt.Sprintf("%s, restored from an older copy, neither re-synced nor refused to serve within 30 s", r.id))
	}
	return fmt.Sprintf("%s not re-synced after 30s (%d stale reads, %d polls refusing)", r.id, stale, refusing), bad
}

// prober runs functions against the runtime while faults go on.
type prober struct {
	h                   *harness
	keep, revoked, gone client.FunctionRef
	mu                  sync.Mutex
	got                 []SeenReceipt
	nFailed, nRefused   int
	forbidden           []string
	lastErr             string
}

// clientOptions pins the service and sends the SDK's failover notes to
// the runtime's log file rather than the test's output.
func (p *prober) clientOptions() client.Options {
	return client.Options{Trust: p.h.ref.Trust, Logger: p.h.probeLog}
}

var probeInput = election.Request("probe", []string{"1", "2", "3"})

func (p *prober) loop(ctx context.Context) {
	all, err := client.NewReplicas(p.h.rtURLs(), p.clientOptions())
	if err != nil {
		p.mu.Lock()
		p.forbidden = append(p.forbidden, "probe client: "+err.Error())
		p.mu.Unlock()
		return
	}
	defer all.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := all.Run(rctx, p.keep, probeInput)
		cancel()
		p.mu.Lock()
		if err != nil {
			p.nFailed++
			p.lastErr = err.Error()
		} else {
			p.got = append(p.got, SeenReceipt{Seq: res.Receipt.Seq, Signature: res.Receipt.Signature, Where: fmt.Sprintf("harness run at %s", time.Now().UTC().Format("15:04:05.000"))})
		}
		p.mu.Unlock()
		if k%5 != 0 {
			continue
		}
		// Every second: the forbidden runs, on each replica (one that is
		// down refuses the connection).
		for _, r := range p.h.rs.reps {
			for _, ref := range []client.FunctionRef{p.revoked, p.gone} {
				if p.served(r, ref) {
					p.mu.Lock()
					p.forbidden = append(p.forbidden, fmt.Sprintf("%s signed a forbidden run (%s) at %s", r.id, p.what(ref), time.Now().UTC().Format("15:04:05.000")))
					p.mu.Unlock()
				}
			}
		}
	}
}

func (p *prober) what(ref client.FunctionRef) string {
	if ref.ID == p.gone.ID {
		return "the deleted function"
	}
	return "a revoked token"
}

// served runs ref on replica r (following its redirect to the leader) and
// reports whether the run came back signed.
func (p *prober) served(r *replica, ref client.FunctionRef) bool {
	c, err := client.New(r.url(), p.clientOptions())
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(p.h.ctx, 5*time.Second)
	defer cancel()
	_, err = c.Run(ctx, ref, probeInput)
	if err == nil {
		return true
	}
	p.mu.Lock()
	p.nRefused++
	p.mu.Unlock()
	return false
}

func (p *prober) receipts() []SeenReceipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *prober) violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.forbidden)
}

func (p *prober) failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nFailed
}

func (p *prober) refusedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nRefused
}
