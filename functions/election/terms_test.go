package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/guest"
)

// The tests of this file started as the reproductions of an audit
// (configuration changes, leases, stalled leaders): each failed before the
// rule it checks was in place.

// outputs records every answer's bytes by term and fails the test if one
// term ever had two.
type outputs struct {
	t      *testing.T
	byTerm map[uint64][]byte
}

func newOutputs(t *testing.T) *outputs { return &outputs{t: t, byTerm: map[uint64][]byte{}} }

func (o *outputs) see(c *election.TermOutcome) *election.TermOutcome {
	o.t.Helper()
	b, _ := json.Marshal(c)
	if prev, ok := o.byTerm[c.Term]; ok && !bytes.Equal(prev, b) {
		o.t.Fatalf("two different certificates for term %d:\n  %s\n  %s", c.Term, prev, b)
	}
	o.byTerm[c.Term] = b
	return c
}

// resign signs a changed configuration with the next version.
func (h *harness) resign(change func(c *cluster.Config)) {
	h.t.Helper()
	next := h.cfg.Config
	next.Members = append([]cluster.Member(nil), next.Members...)
	next.Version++
	change(&next)
	var err error
	if h.cfg, err = cluster.Sign(next, h.owner); err != nil {
		h.t.Fatal(err)
	}
}

// electC elects c (highest) in a cluster a, b, c and has c renew its lease.
func electC(t *testing.T, lease int64) (*harness, *election.TermOutcome) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	if lease != 0 {
		h.resign(func(c *cluster.Config) { c.LeaseMillis = lease })
	}
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	c := h.must("c", "a", "b", "c")
	if c.Term != 1 || c.Leader != "c" {
		t.Fatalf("%+v", c)
	}
	return h, c
}

// A configuration change while the leader is not alive but its lease runs
// does not reissue the term under the new configuration: the same bytes
// are served until the lease runs out, then a new term starts under it.
func TestConfigChangeNeverReissuesATerm(t *testing.T) {
	h, c1 := electC(t, 0)
	seen := newOutputs(t)
	seen.see(c1)
	// c dies; a and b drop it.
	h.tick(100 * time.Millisecond)
	seen.see(h.must("a", "a", "b"))
	seen.see(h.must("b", "a", "b"))
	// The owner pushes version 2 (another lease) while c's lease runs.
	h.resign(func(c *cluster.Config) { c.LeaseMillis = 5000 })
	v2 := h.cfg.Config.Digest()
	c2 := seen.see(h.must("a", "a", "b"))
	if c2.Term != 1 || c2.ConfigDigest == v2 {
		t.Fatalf("during the old leader's lease: %+v", c2)
	}
	// Once c's lease (1 s from its renewal) has run out, a new term
	// starts under version 2.
	for i := 0; i < 12; i++ {
		h.tick(100 * time.Millisecond)
		seen.see(h.must("a", "a", "b"))
		seen.see(h.must("b", "a", "b"))
	}
	c3 := seen.see(h.must("a", "a", "b"))
	if c3.Term != 2 || c3.Leader != "b" || c3.ConfigDigest != v2 || c3.LeaseMs != 5000 {
		t.Fatalf("after the lease: %+v", c3)
	}
}

// A configuration that removes the leader: the removed leader loses
// office, but only once its granted lease has run out.
func TestConfigRemovesLeader(t *testing.T) {
	h, c1 := electC(t, 0)
	seen := newOutputs(t)
	seen.see(c1)
	h.resign(func(c *cluster.Config) { c.Members = c.Members[:2] })
	v2 := h.cfg.Config.Digest()
	h.tick(10 * time.Millisecond)
	c2 := seen.see(h.must("a", "a", "b"))
	seen.see(h.must("b", "a", "b"))
	if c2.Term != 1 || c2.Leader != "c" {
		t.Fatalf("the removed leader lost office before its lease ran out: %+v", c2)
	}
	// c is no longer a member: it cannot renew.
	if _, err := h.submit("c", "a", "b", "c"); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("removed leader's view: %v", err)
	}
	h.tick(995 * time.Millisecond) // 1005 ms after c's renewal
	c3 := seen.see(h.must("a", "a", "b"))
	if c3.Term != 2 || c3.Leader != "b" || c3.ConfigDigest != v2 {
		t.Fatalf("after the removed leader's lease: %+v", c3)
	}
}

// A configuration change while the leader is alive starts a new term at
// once, keeping the leader; with nobody alive, nothing changes and the
// term's bytes stay the same.
func TestConfigChangeStartsTermWhenItMay(t *testing.T) {
	h, c1 := electC(t, 0)
	seen := newOutputs(t)
	seen.see(c1)
	h.resign(func(c *cluster.Config) { c.Policy = cluster.PolicyLowest })
	c2 := seen.see(h.must("a", "a", "b", "c"))
	if c2.Term != 2 || c2.Leader != "c" || c2.ConfigDigest != h.cfg.Config.Digest() || c2.Policy != cluster.PolicyLowest {
		t.Fatalf("a live leader is kept through a configuration change: %+v", c2)
	}
	// Everyone goes silent; a new version arrives with one stale view.
	h.tick(5 * time.Second)
	h.resign(func(c *cluster.Config) { c.LeaseMillis = 2000 })
	c3 := seen.see(h.must("a", "a"))
	if c3.Term != 2 {
		t.Fatalf("a term started without a majority: %+v", c3)
	}
}

// Shortening the lease applies to leases granted from then on, not to the
// one the leader holds: the runtime waits for the lease it granted.
func TestLeaseShortenedIsNotRetroactive(t *testing.T) {
	h, c1 := electC(t, 5000)
	t0 := h.env.mono // c renewed its 5 s lease now
	// c is cut off from a and b, but acts on its lease.
	h.tick(100 * time.Millisecond)
	h.must("a", "a", "b")
	h.must("b", "a", "b")
	h.resign(func(c *cluster.Config) { c.LeaseMillis = 1000 })
	for h.env.mono-t0 < 6*time.Second {
		h.tick(100 * time.Millisecond)
		h.must("a", "a", "b")
		c := h.must("b", "a", "b")
		if c.Term > c1.Term && h.env.mono-t0 < 5*time.Second {
			t.Fatalf("term %d (leader %s) at t0+%v, while %s's lease granted at t0 (%d ms) runs", c.Term, c.Leader, h.env.mono-t0, c1.Leader, c1.LeaseMs)
		}
		if c.Term > c1.Term {
			return
		}
	}
	t.Fatal("no new term after the old lease ran out")
}

// A shorter lease granted later does not shorten an earlier grant whose
// answer may have been lost: a term that keeps the leader under a new
// configuration carries the old lease, also across a restart.
func TestLaterShorterGrantKeepsEarlierBound(t *testing.T) {
	for _, restart := range []bool{false, true} {
		h, c1 := electC(t, 5000)
		t0 := h.env.mono
		// Version 2, lease 1 s: a new term keeps the live leader c.
		h.resign(func(c *cluster.Config) { c.LeaseMillis = 1000 })
		h.tick(50 * time.Millisecond)
		c2 := h.must("a", "a", "b", "c")
		if c2.Term != 2 || c2.Leader != "c" || c2.LeaseMs != 1000 {
			t.Fatalf("%+v", c2)
		}
		// c renews under term 2 (1 s); suppose that answer is lost: c still
		// acts on its 5 s lease of term 1.
		h.must("c", "a", "b", "c")
		if restart {
			h.env.restart()
			t0 = h.env.mono - 50*time.Millisecond // the restart is later than t0
		}
		h.tick(100 * time.Millisecond)
		for h.env.mono-t0 < 6*time.Second {
			h.must("a", "a", "b")
			c := h.must("b", "a", "b")
			if c.Term > c2.Term && h.env.mono-t0 < 5*time.Second {
				t.Fatalf("restart %v: term %d at t0+%v while the lease of term %d (%d ms, granted at t0) runs", restart, c.Term, h.env.mono-t0, c1.Term, c1.LeaseMs)
			}
			if c.Term > c2.Term {
				break
			}
			h.tick(100 * time.Millisecond)
		}
	}
}

// A leader that a majority sees alive but that stops renewing loses office
// after stallLeases × lease, and the next pick excludes it (the highest
// policy would pick it again).
func TestStalledLeaderLosesOffice(t *testing.T) {
	h, c1 := electC(t, 0)
	t0 := h.env.mono
	var last *election.TermOutcome
	for h.env.mono-t0 < 60*time.Second {
		h.tick(100 * time.Millisecond)
		h.must("a", "a", "b", "c")
		last = h.must("b", "a", "b", "c")
		if last.Term != c1.Term {
			break
		}
	}
	took := h.env.mono - t0
	if last.Term == c1.Term {
		t.Fatalf("leader %s has not renewed for 60 s (lease %d ms) and is still in office", c1.Leader, c1.LeaseMs)
	}
	if took <= stallLeases*time.Second || took > stallLeases*time.Second+200*time.Millisecond {
		t.Fatalf("the stalled leader lost office after %v, want just after %v", took, stallLeases*time.Second)
	}
	if last.Term != 2 || last.Leader != "b" {
		t.Fatalf("after the stall: %+v, want term 2 led by b (c excluded)", last)
	}
	// c may lead again in a later term: the exclusion is for one term.
	h.must("c", "a", "b", "c")
	if h.must("c", "a", "b", "c").Leader != "b" {
		t.Fatal("the new leader lost office")
	}
}

// An honest leader renewing on every view, with jitter and the odd long
// pause, never trips the stall rule.
func TestHonestLeaderNeverStalls(t *testing.T) {
	h, c1 := electC(t, 0)
	gaps := []time.Duration{250, 180, 400, 320, 250, 900, 250, 120, 2500, 250, 600}
	for i := 0; i < 600; i++ {
		h.tick(gaps[i%len(gaps)] * time.Millisecond)
		h.must("a", "a", "b", "c")
		h.must("b", "a", "b", "c")
		if c := h.must("c", "a", "b", "c"); c.Term != c1.Term || c.Leader != "c" {
			t.Fatalf("step %d: an honest leader lost office: %+v", i, c)
		}
	}
}

// Lease and view-TTL arithmetic uses the monotonic clock: a step of the
// runtime's wall clock neither expires the leader's lease early nor makes
// views stale.
func TestWallClockStepDoesNotMoveLeases(t *testing.T) {
	h, c1 := electC(t, 0)
	h.tick(100 * time.Millisecond)
	h.must("a", "a", "b")
	h.must("b", "a", "b") // c is no longer alive by majority
	// The runtime's wall clock jumps 5 s ahead; the nodes' clocks do not.
	h.env.t = h.env.t.Add(5 * time.Second)
	h.skew = -5 * time.Second
	h.must("a", "a", "b")
	if c := h.must("b", "a", "b"); c.Term != c1.Term {
		t.Fatalf("a wall-clock step ended c's lease early: %+v", c)
	}
	h.tick(950 * time.Millisecond)
	if c := h.must("b", "a", "b"); c.Term != 2 || c.Leader != "b" {
		t.Fatalf("after the lease, on the monotonic clock: %+v", c)
	}
}

// After a runtime restart, a view signed before the runtime process
// started is refused, even a moment before: its seq would no longer be
// known, so it could be a replay. A view signed after the process started
// is taken, even if it reaches the runtime before any other.
func TestRestartRefusesViewsSignedBefore(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	sign := func(node string) []byte {
		h.seqs[node]++
		sv, _ := cluster.SignView(cluster.View{Cluster: "demo", Node: node, Seq: h.seqs[node], TimeMillis: h.env.t.UnixMilli(), Alive: []string{node}}, h.keys[node])
		b, _ := json.Marshal(Input{View: sv})
		return b
	}
	// a signs a view that is captured, not delivered.
	captured := sign("a")
	h.tick(5 * time.Millisecond)
	h.env.restart()
	h.tick(10 * time.Millisecond)
	early := sign("c") // signed after the restart, before the first submission
	h.tick(10 * time.Millisecond)
	h.must("b", "a", "b", "c") // the runtime starts serving the cluster
	if _, err := h.env.run(captured); err == nil || !strings.Contains(err.Error(), "signed before the runtime restarted") {
		t.Fatalf("a view signed 5 ms before the restart: %v", err)
	}
	if _, err := h.env.run(early); err != nil {
		t.Fatalf("a view signed after the restart: %v", err)
	}
	// A view signed now is taken.
	h.must("a", "a", "b", "c")
}

// A configuration of another owner is refused before anything is verified
// (its signature here is garbage, and the error is about the owner), a
// view in a member's name with another key is refused before its attached
// configuration is looked at, and an older version is ignored.
func TestCheapChecksComeFirst(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	h.must("a", "a", "b")
	good := h.cfg
	rogueKey := key(77)
	rogue := good.Config
	rogue.Owner, rogue.Version = rogueKey.Public().(ed25519.PublicKey), 9
	sc, _ := cluster.Sign(rogue, rogueKey)
	sc.Signature = bytes.Repeat([]byte{1}, 64)
	h.cfg = sc
	if _, err := h.submit("a", "a", "b"); err == nil || !strings.Contains(err.Error(), "another owner") {
		t.Fatalf("rogue owner: %v", err)
	}
	// The owner's key, a higher version, a bad signature, attached to a
	// view signed in a's name with c's key: refused for the key.
	forged := *good
	forged.Config.Version = 9
	forged.Signature = bytes.Repeat([]byte{2}, 64)
	h.cfg = &forged
	h.keys["a"], h.keys["c"] = h.keys["c"], h.keys["a"]
	if _, err := h.submit("a", "a", "b"); err == nil || !strings.Contains(err.Error(), "not member") {
		t.Fatalf("impersonation with a configuration attached: %v", err)
	}
	h.keys["a"], h.keys["c"] = h.keys["c"], h.keys["a"]
	// An older version is ignored; the same version with other contents
	// refused.
	h.cfg = good
	h.resign(func(c *cluster.Config) {})
	v2 := h.cfg
	h.must("a", "a", "b")
	h.cfg = good
	if c := h.must("b", "a", "b"); c.ConfigDigest != v2.Config.Digest() {
		t.Fatalf("an older configuration was adopted: %+v", c)
	}
	same := v2.Config
	same.LeaseMillis = 3000
	sc, _ = cluster.Sign(same, h.owner)
	h.cfg = sc
	if _, err := h.submit("b", "a", "b"); err == nil || !strings.Contains(err.Error(), "already exists with other contents") {
		t.Fatalf("same version, other contents: %v", err)
	}
}

// A member's newer configuration that does not verify is ignored and its
// view taken; for configRetry the function verifies no configuration of
// that member's, while another member's is adopted.
func TestBadConfigurationThrottled(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	h.must("a", "a", "b")
	v1 := h.cfg
	forged := *v1
	forged.Config.Version = 5
	forged.Signature = bytes.Repeat([]byte{3}, 64)
	h.cfg = &forged
	if c := h.must("a", "a", "b"); c.ConfigDigest != v1.Config.Digest() {
		t.Fatalf("a forged configuration was adopted: %+v", c)
	}
	if _, ok := h.env.get(guest.Volatile, "cfgfail/demo/a"); !ok {
		t.Fatal("the failure was not recorded")
	}
	// A genuine version 2 from a, within configRetry: not looked at.
	h.cfg = v1
	h.resign(func(c *cluster.Config) { c.LeaseMillis = 2000 })
	v2 := h.cfg
	h.tick(time.Second)
	if c := h.must("a", "a", "b"); c.ConfigDigest != v1.Config.Digest() {
		t.Fatalf("a's configurations are verified again within %v: %+v", configRetry, c)
	}
	// From b it is adopted (a new term: b, highest, is alive).
	if c := h.must("b", "a", "b"); c.ConfigDigest != v2.Config.Digest() {
		t.Fatalf("b's genuine configuration: %+v", c)
	}
	// After configRetry, a's are verified again.
	h.tick(configRetry)
	h.resign(func(c *cluster.Config) { c.LeaseMillis = 3000 })
	h.must("a", "a", "b")
	if c := h.must("b", "a", "b"); c.LeaseMs != 3000 {
		t.Fatalf("a's configuration after %v: %+v", configRetry, c)
	}
}

// A view listing strangers is stored with the members only.
func TestViewKeepsMembersOnly(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	h.must("a", "a", "b", "x1", "x2", "zz")
	b, _ := h.env.get(guest.Volatile, "view/demo/a")
	if v, ok := decodeSeen(b); !ok || strings.Join(v.Alive, ",") != "a,b" {
		t.Fatalf("stored view %+v", v)
	}
}

// Open-mode registrations of members silent for ten view TTLs are pruned
// (their IDs may be registered again), and the count is capped with a
// clear refusal.
func TestOpenRegistrationsAreBounded(t *testing.T) {
	h := newHarness(t, cluster.PolicyLowest)
	for i, id := range []string{"n1", "n2", "n3"} {
		h.keys[id] = key(byte(10 + i))
	}
	h.must("n1", "n1")
	h.must("n2", "n1", "n2")
	h.must("n3", "n1", "n2", "n3")
	// n3 falls silent for more than ten view TTLs; n1 and n2 go on.
	for i := 0; i < 11; i++ {
		h.tick(time.Second)
		h.must("n1", "n1", "n2")
		h.must("n2", "n1", "n2")
	}
	var reg []cluster.Member
	b, _ := h.env.get(guest.Durable, "reg/demo")
	json.Unmarshal(b, &reg)
	if len(reg) != 2 || reg[0].ID != "n1" || reg[1].ID != "n2" {
		t.Fatalf("registrations after n3's silence: %+v", reg)
	}
	// n3's ID is free again, for any key.
	h.keys["n3"] = key(99)
	h.must("n3", "n1", "n2", "n3")

	// The cap: registrations up to maxRegistered (stored as if they had
	// registered before the runtime started).
	b, _ = h.env.get(guest.Durable, "reg/demo")
	json.Unmarshal(b, &reg)
	for i := len(reg); i < maxRegistered; i++ {
		reg = append(reg, cluster.Member{ID: fmt.Sprintf("m%04d", i), Key: key(byte(i)).Public().(ed25519.PublicKey)})
	}
	full, _ := json.Marshal(reg)
	h.env.kv[guest.Durable]["reg/demo"] = full
	h.env.restart()
	h.tick(100 * time.Millisecond)
	h.must("n1", "n1")
	h.keys["late"] = key(123)
	if _, err := h.submit("late", "late"); err == nil || !strings.Contains(err.Error(), "registered members, the most it keeps") {
		t.Fatalf("registration over the cap: %v", err)
	}
	// Silent for ten TTLs after this runtime started, they are pruned,
	// and there is room again.
	h.tick(11 * time.Second)
	h.must("n1", "n1")
	b, _ = h.env.get(guest.Durable, "reg/demo")
	reg = nil
	json.Unmarshal(b, &reg)
	if len(reg) != 1 || reg[0].ID != "n1" {
		t.Fatalf("%d registrations after ten TTLs of silence", len(reg))
	}
	if c := h.must("late", "late", "n1"); c.Term == 0 {
		t.Fatalf("%+v", c)
	}
}

// A view larger than the cluster's members can need is refused before it
// is decoded; one within the bound is taken.
func TestViewSizeBounded(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	h.must("a", "a", "b")
	limit := maxViewBytes(&durable{Config: *h.cfg})
	strangers := func(n int) []string {
		ids := []string{"a"}
		for i := range n {
			ids = append(ids, fmt.Sprintf("z%0127d", i))
		}
		return ids
	}
	if _, err := h.submit("a", strangers(limit/130)...); err == nil || !strings.Contains(err.Error(), "members can need") {
		t.Fatalf("a view of %d strangers: %v", limit/130, err)
	}
	h.must("a", strangers(limit/131-10)...)
}
