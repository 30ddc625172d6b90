package main

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/guest"
)

// fakeEnv is the runtime's state and clocks, in memory.
type fakeEnv struct {
	kv   map[guest.Namespace]map[string][]byte
	t    time.Time     // the wall clock
	mono time.Duration // the monotonic clock
	rnd  byte
}

func newEnv() *fakeEnv {
	return &fakeEnv{kv: map[guest.Namespace]map[string][]byte{guest.Durable: {}, guest.Volatile: {}}, t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), mono: 7 * time.Hour}
}

func (e *fakeEnv) get(ns guest.Namespace, k string) ([]byte, bool) {
	v, ok := e.kv[ns][k]
	return v, ok
}
func (e *fakeEnv) put(ns guest.Namespace, k string, v []byte) { e.kv[ns][k] = v }
func (e *fakeEnv) del(ns guest.Namespace, k string)           { delete(e.kv[ns], k) }
func (e *fakeEnv) now() time.Time                             { return e.t }
func (e *fakeEnv) random(b []byte) {
	for i := range b {
		e.rnd++
		b[i] = e.rnd
	}
}

// restart loses volatile state, as a runtime restart does, and the
// monotonic clock starts again from the new process's start.
func (e *fakeEnv) restart() {
	e.kv[guest.Volatile] = map[string][]byte{}
	e.mono = 0
}

// txEnv is one invocation's view of a fakeEnv: its writes stay private
// until commit, as in the runtime, so a failed submission changes nothing.
type txEnv struct {
	base *fakeEnv
	w    map[guest.Namespace]map[string][]byte // nil value: deleted
}

func (e *txEnv) get(ns guest.Namespace, k string) ([]byte, bool) {
	if v, ok := e.w[ns][k]; ok {
		return v, v != nil
	}
	return e.base.get(ns, k)
}
func (e *txEnv) put(ns guest.Namespace, k string, v []byte) {
	if v == nil {
		v = []byte{}
	}
	e.w[ns][k] = v
}
func (e *txEnv) del(ns guest.Namespace, k string) { e.w[ns][k] = nil }
func (e *txEnv) now() time.Time                   { return e.base.t }
func (e *txEnv) mono() time.Duration              { return e.base.mono }
func (e *txEnv) random(b []byte)                  { e.base.random(b) }

// run invokes the function on raw as the runtime does: its writes commit
// only if it succeeds.
func (e *fakeEnv) run(raw []byte) ([]byte, error) {
	tx := &txEnv{base: e, w: map[guest.Namespace]map[string][]byte{guest.Durable: {}, guest.Volatile: {}}}
	out, err := handle(raw, tx)
	if err != nil {
		return nil, err
	}
	for ns, m := range tx.w {
		for k, v := range m {
			if v == nil {
				delete(e.kv[ns], k)
			} else {
				e.kv[ns][k] = v
			}
		}
	}
	return out, nil
}

// refusal returns the refusal a failed submission's error carries (its
// message is the refusal's encoding), or nil.
func refusal(err error) *outcome.Refusal {
	if err == nil {
		return nil
	}
	r, perr := outcome.ParseRefusal(err.Error())
	if perr != nil {
		return nil
	}
	return r
}

type harness struct {
	t     *testing.T
	env   *fakeEnv
	owner ed25519.PrivateKey
	keys  map[string]ed25519.PrivateKey
	seqs  map[string]uint64
	cfg   *cluster.Signed
	// skew is how far the nodes' clocks are from the runtime's wall clock.
	skew time.Duration
}

func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

func newHarness(t *testing.T, policy string, ids ...string) *harness {
	h := &harness{t: t, env: newEnv(), owner: key(200), keys: map[string]ed25519.PrivateKey{}, seqs: map[string]uint64{}}
	c := cluster.Config{Cluster: "demo", Version: 1, Owner: h.owner.Public().(ed25519.PublicKey), Policy: policy, LeaseMillis: 1000, ViewTTLMillis: 1000, Open: len(ids) == 0}
	for i, id := range ids {
		h.keys[id] = key(byte(i + 1))
		c.Members = append(c.Members, cluster.Member{ID: id, Key: h.keys[id].Public().(ed25519.PublicKey), Stake: uint64(i + 1)})
	}
	var err error
	if h.cfg, err = cluster.Sign(c, h.owner); err != nil {
		t.Fatal(err)
	}
	return h
}

// submit sends node's view of alive, with the configuration attached.
func (h *harness) submit(node string, alive ...string) (*election.TermOutcome, error) {
	h.seqs[node]++
	sv, err := cluster.SignView(cluster.View{Cluster: "demo", Node: node, Seq: h.seqs[node], TimeMillis: h.env.t.Add(h.skew).UnixMilli(), Alive: alive}, h.keys[node])
	if err != nil {
		h.t.Fatal(err)
	}
	in, _ := json.Marshal(Input{Config: h.cfg, View: sv})
	out, err := h.env.run(in)
	if err != nil {
		return nil, err
	}
	var c election.TermOutcome
	if err := json.Unmarshal(out, &c); err != nil {
		h.t.Fatal(err)
	}
	return &c, nil
}

func (h *harness) must(node string, alive ...string) *election.TermOutcome {
	h.t.Helper()
	c, err := h.submit(node, alive...)
	if err != nil {
		h.t.Fatalf("%s: %v", node, err)
	}
	return c
}

// tick lets d pass, on both of the runtime's clocks.
func (h *harness) tick(d time.Duration) { h.env.t, h.env.mono = h.env.t.Add(d), h.env.mono+d }

func TestElectsByMajorityAndKeepsOffice(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	if c := h.must("a", "a", "b"); c.Term != 0 || c.Leader != "" {
		t.Fatalf("one view of three elected %+v", c)
	}
	c := h.must("b", "a", "b")
	if c.Term != 1 || c.Leader != "b" {
		t.Fatalf("two views agreeing on a and b: %+v", c)
	}
	// c joins: b keeps office although c is higher (no flapping), and
	// asking again returns the very same certificate.
	h.tick(100 * time.Millisecond)
	c1 := h.must("c", "a", "b", "c")
	c2 := h.must("a", "a", "b", "c")
	if c1.Term != 1 || c1.Leader != "b" || *c1 != *c2 {
		t.Fatalf("certificates for one term differ: %+v %+v", c1, c2)
	}
}

func TestFailoverWaitsForMajorityAndLease(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	if c := h.must("a", "a", "b", "c"); c.Leader != "c" || c.Term != 1 {
		t.Fatalf("%+v", c)
	}
	// c dies. a sees it first: c's own fresh view and b's still count it.
	h.tick(200 * time.Millisecond)
	if c := h.must("a", "a", "b"); c.Leader != "c" {
		t.Fatalf("one view evicted the leader: %+v", c)
	}
	// b agrees: c is no longer alive by majority, but its lease (1 s from
	// when the runtime last heard from it) has not run out.
	h.tick(200 * time.Millisecond)
	if c := h.must("b", "a", "b"); c.Leader != "c" || c.Term != 1 {
		t.Fatalf("replaced the leader before its lease ran out: %+v", c)
	}
	h.tick(700 * time.Millisecond)
	c := h.must("a", "a", "b")
	if c.Term != 2 || c.Leader != "b" {
		t.Fatalf("after the lease: %+v", c)
	}
}

func TestMinorityCannotEvictOrKeepCorpse(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c", "d", "e")
	all := []string{"a", "b", "c", "d", "e"}
	for _, n := range all {
		h.must(n, all...)
	}
	// Two liars (d, e) omit the live leader e... e is the leader here, so
	// let the liars be a and b, omitting e.
	for i := 0; i < 5; i++ {
		h.tick(300 * time.Millisecond)
		h.must("a", "a", "b", "c", "d")
		h.must("b", "a", "b", "c", "d")
		h.must("c", all...)
		h.must("d", all...)
		if c := h.must("e", all...); c.Leader != "e" || c.Term != 1 {
			t.Fatalf("a minority evicted a live leader: %+v", c)
		}
	}
	// e dies; the liars a and b keep claiming it is alive.
	for i := 0; i < 6; i++ {
		h.tick(300 * time.Millisecond)
		h.must("a", all...)
		h.must("b", all...)
		h.must("c", "a", "b", "c", "d")
		h.must("d", "a", "b", "c", "d")
	}
	c := h.must("c", "a", "b", "c", "d")
	if c.Term != 2 || c.Leader != "d" {
		t.Fatalf("a minority kept a dead leader in office: %+v", c)
	}
}

func TestRefusesBadViews(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	h.must("a", "a")
	// Signed with someone else's key.
	h.keys["x"] = h.keys["a"]
	if _, err := h.submit("x", "x"); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("non-member: %v", err)
	}
	h.keys["b"] = key(99)
	if _, err := h.submit("b", "a", "b"); err == nil || !strings.Contains(err.Error(), "not member") {
		t.Fatalf("wrong key: %v", err)
	}
	// A replayed (stale) view.
	h.seqs["a"] = 0
	if _, err := h.submit("a", "a"); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("stale seq: %v", err)
	}
	// A bad signature.
	sv, _ := cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: 100, TimeMillis: h.env.t.UnixMilli(), Alive: []string{"a"}}, h.keys["a"])
	sv.View.Seq = 101
	in, _ := json.Marshal(Input{View: sv})
	if _, err := h.env.run(in); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("bad signature: %v", err)
	}
	// A view from far in the past.
	h.tick(time.Minute)
	sv, _ = cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: 200, TimeMillis: h.env.t.Add(-time.Minute).UnixMilli(), Alive: []string{"a"}}, h.keys["a"])
	in, _ = json.Marshal(Input{View: sv})
	if _, err := h.env.run(in); err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("old view: %v", err)
	}
	for _, bad := range []string{``, `{}`, `{"view":{}}`, `[]`, `{"view":null,"x":1}`} {
		if _, err := h.env.run([]byte(bad)); err == nil {
			t.Fatalf("malformed %q accepted", bad)
		}
	}
}

func TestTermSurvivesRestart(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	h.env.restart()
	h.tick(100 * time.Millisecond)
	// After the restart the views are gone: the term is kept, and no new
	// term starts until a majority speaks again.
	if c := h.must("a", "a", "b"); c.Term != 1 || c.Leader != "c" {
		t.Fatalf("after restart: %+v", c)
	}
	h.must("b", "a", "b")
	// The leader's lease counts from the restart: no new term yet.
	if c := h.must("a", "a", "b"); c.Term != 1 {
		t.Fatalf("replaced the leader right after a restart: %+v", c)
	}
	h.tick(1100 * time.Millisecond)
	h.must("b", "a", "b")
	if c := h.must("a", "a", "b"); c.Term != 2 || c.Leader != "b" {
		t.Fatalf("term did not continue from stored state: %+v", c)
	}
}

func TestConfigurationUpdates(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b")
	h.must("a", "a", "b")
	c := h.must("b", "a", "b")
	if c.Term != 1 {
		t.Fatalf("%+v", c)
	}
	// Another owner's configuration is refused.
	other := h.cfg.Config
	other.Owner = key(201).Public().(ed25519.PublicKey)
	other.Version = 5
	forged, _ := cluster.Sign(other, key(201))
	h.cfg = forged
	if _, err := h.submit("a", "a", "b"); err == nil || !strings.Contains(err.Error(), "another owner") {
		t.Fatalf("other owner: %v", err)
	}
	// The owner adds a member: a new term, same leader if still alive.
	next := forged.Config
	next.Owner = h.owner.Public().(ed25519.PublicKey)
	next.Version = 2
	h.keys["c"] = key(3)
	next.Members = append(next.Members, cluster.Member{ID: "c", Key: h.keys["c"].Public().(ed25519.PublicKey)})
	if h.cfg, _ = cluster.Sign(next, h.owner); h.cfg == nil {
		t.Fatal("sign")
	}
	c2 := h.must("a", "a", "b")
	if c2.Term != 2 || c2.Leader != "b" || c2.ConfigDigest == c.ConfigDigest {
		t.Fatalf("after a configuration change: %+v (before %+v)", c2, c)
	}
}

func TestOpenRegistration(t *testing.T) {
	h := newHarness(t, cluster.PolicyLowest)
	h.keys["n1"], h.keys["n2"] = key(1), key(2)
	h.must("n1", "n1")
	out := h.must("n2", "n1", "n2")
	if out.Leader != "n1" || !strings.Contains(out.Mode, "trust on first use") {
		t.Fatalf("%+v", out)
	}
	// A later view for n1 under another key is refused.
	h.keys["n1"] = key(9)
	if _, err := h.submit("n1", "n1", "n2"); err == nil {
		t.Fatal("open cluster let a new key take over a registered member")
	}
}
