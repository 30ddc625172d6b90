package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/cluster/spec"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/guest"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// env is what the function needs from the runtime.
type env interface {
	get(ns guest.Namespace, key string) ([]byte, bool)
	put(ns guest.Namespace, key string, v []byte)
	del(ns guest.Namespace, key string)
	// now is the runtime's wall clock: for view times and issued_at_ms.
	now() time.Time
	// mono is the runtime's monotonic clock (guest.Monotonic): for every
	// duration, the view TTL, leases and the stall bound. Its values are
	// kept only in volatile state, which a restart loses with them.
	mono() time.Duration
	random(b []byte)
}

// Input is a submission.
type Input struct {
	Config *spec.Signed     `json:"config,omitempty"`
	View   *spec.SignedView `json:"view"`
}

// durable is a cluster's durable state, kept under three keys so that a
// submission rewrites only what changed:
//
//	cfg/<cluster>   the signed configuration (on a configuration change)
//	term/<cluster>  the term's certificate output and carried lease (on a new term)
//	reg/<cluster>   open-mode registrations (on a registration or a pruning)
type durable struct {
	Config     spec.Signed
	digest     string      // Config's digest
	term       *termRecord // nil before the first term
	Registered []spec.Member
}

// termRecord is a term as stored when it starts. Output is the term's
// certificate, byte for byte: the function answers with exactly these
// bytes for the whole term, whatever configuration it adopts meanwhile.
type termRecord struct {
	Output []byte `json:"output"`
	// CarryMs is how long leases granted before the term started could
	// still run when it started (a term that keeps the previous leader
	// inherits its lease). After a restart the function waits for the
	// longer of it and the term's lease.
	CarryMs int64 `json:"carry_ms,omitempty"`
	// Fenced marks a term restored from a proof of rollback (floor.go):
	// its leader is never renewed, the function answers "no leader", and
	// the next term starts once the leases granted so far ran out.
	Fenced bool `json:"fenced,omitempty"`

	o outcome.Term
}

func (d *durable) termNum() uint64 {
	if d.term == nil {
		return 0
	}
	return d.term.o.Term
}

func (d *durable) leader() string {
	if d.term == nil {
		return ""
	}
	return d.term.o.Leader
}

// views is a cluster's volatile state: each member's latest view (key
// view/<cluster>/<node>) and, from the first submission since the runtime
// started (key boot/<cluster>), when its process started and when it
// started serving the spec. A restart forgets both.
type views struct {
	cluster string
	// StartWallMs is when the runtime process started, on the wall clock:
	// the monotonic clock counts from the process start, so it is the
	// wall clock minus the monotonic clock.
	StartWallMs int64
	// BootMonoMs is when the runtime started serving the cluster, on the
	// monotonic clock.
	BootMonoMs int64
	Latest     map[string]viewSeen
}

type viewSeen struct {
	Seq    uint64
	RecvMs int64 // monotonic clock
	// Alive is what the view lists alive, of the members. A view loaded
	// from state leaves it nil and has a memo instead (alive decodes it).
	Alive []string

	memo *seenMemo
}

// seenMemo is what a warm instance keeps, between calls, of one stored
// view: its bytes, and what it lists alive as indexes into a member list.
// Every submission reads each member's latest view from state, but only
// one of them (the submitter's) changed since the last: decoding the
// others again and tallying them by ID made a submission's cost grow with
// the square of the cluster's size (docs/BENCHMARKS.md, "A cheaper
// election function").
// The memo is only a cache: it is used when the stored bytes are the same.
type seenMemo struct {
	raw []byte
	// idx lists the positions, in the member list of generation gen (see
	// memberIndex), of the IDs the view lists alive.
	gen uint64
	idx []int32
}

// seenMemos holds the memos by view key, with memoBytes the size of their
// stored bytes. They are dropped together when that passes maxMemoBytes,
// a quarter of the function's 64 MiB of memory.
var (
	seenMemos = map[string]*seenMemo{}
	memoBytes int
)

const maxMemoBytes = 16 << 20

// memberIndex numbers the member list a tally counts over. A list gets a
// new generation whenever it differs from the previous one, so a memo's
// indexes are reused only for the list they were computed for.
var memberIndex struct {
	key string
	gen uint64
	pos map[string]int
}

// indexMembers returns all's generation and each ID's position in it.
func indexMembers(all []string) (uint64, map[string]int) {
	key := strings.Join(all, "\n")
	if memberIndex.pos == nil || key != memberIndex.key {
		pos := make(map[string]int, len(all))
		for i, id := range all {
			pos[id] = i
		}
		memberIndex.key, memberIndex.gen, memberIndex.pos = key, memberIndex.gen+1, pos
	}
	return memberIndex.gen, memberIndex.pos
}

// alive returns the IDs the view lists alive.
func (v viewSeen) alive() []string {
	if v.Alive == nil && v.memo != nil {
		return decodeAlive(v.memo.raw)
	}
	return v.Alive
}

// indexes returns the positions in the member list of generation gen of
// the IDs the view lists alive that are in it.
func (v viewSeen) indexes(gen uint64, pos map[string]int) []int32 {
	if m := v.memo; m != nil && m.gen == gen { // generations start at 1
		return m.idx
	}
	alive := v.alive()
	idx := make([]int32, 0, len(alive))
	for _, a := range alive {
		if j, ok := pos[a]; ok {
			idx = append(idx, int32(j))
		}
	}
	if m := v.memo; m != nil {
		m.gen, m.idx = gen, idx
	}
	return idx
}

func (v viewSeen) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, v.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(v.RecvMs))
	return append(b, strings.Join(v.alive(), "\n")...)
}

// decodeSeen decodes a stored view (Alive included).
func decodeSeen(b []byte) (viewSeen, bool) {
	v, ok := decodeSeenHeader(b)
	if ok {
		v.Alive = decodeAlive(b)
	}
	return v, ok
}

// decodeSeenHeader decodes a stored view's seq and time, leaving Alive nil.
func decodeSeenHeader(b []byte) (viewSeen, bool) {
	if len(b) < 16 {
		return viewSeen{}, false
	}
	return viewSeen{Seq: binary.BigEndian.Uint64(b), RecvMs: int64(binary.BigEndian.Uint64(b[8:]))}, true
}

func decodeAlive(b []byte) []string {
	if len(b) <= 16 {
		return []string{}
	}
	return strings.Split(string(b[16:]), "\n")
}

// leaseState is the volatile key lease/<cluster>: what the runtime granted
// the leader. All times are on the monotonic clock.
type leaseState struct {
	// Term is the term it is about.
	Term uint64
	// SinceMs is when the term's leader last renewed its lease, or when
	// the term or this runtime started, if later: the stall bound counts
	// from it.
	SinceMs int64
	// UntilMs is until when a lease granted so far may run: the latest
	// renewal time plus the lease granted with it, over every renewal (a
	// shorter lease granted later does not shorten an earlier grant).
	UntilMs int64
}

func (l leaseState) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, l.Term)
	b = binary.BigEndian.AppendUint64(b, uint64(l.SinceMs))
	return binary.BigEndian.AppendUint64(b, uint64(l.UntilMs))
}

// maxClockSkew is how far a view's time may be from the runtime's clock.
const maxClockSkew = 10 * time.Second

// forgetAfterTTLs is how many view TTLs an open cluster keeps a registered
// member that sends no view: it stops counting, and its registration is
// pruned (its ID may then be registered again).
const forgetAfterTTLs = 10

// maxRegistered bounds an open cluster's registrations: every submission
// reads all of them, and they are stored as one value.
const maxRegistered = 1000

// stallLeases is k of the stall rule: a leader that has not renewed its
// lease for k × max(lease, view TTL) loses office even while a majority
// sees it alive (docs/ELECTION.md, "Liveness, terms and leases", says why
// 3).
const stallLeases = 3

// configRetry is how long the function ignores the newer configurations a
// member attaches after one of them failed verification. Honest nodes
// verify their configuration before they send it, so only a liar (or a
// broken client) is slowed; a liar cannot make the runtime verify more
// than one configuration of its per configRetry.
const configRetry = 5 * time.Second

// handle takes one submission (a signed view, perhaps with a signed
// configuration) and answers with the cluster's current term certificate,
// or refuses it with a typed refusal (package outcome), which fails the
// invocation; a refusal changes nothing, since the runtime commits an
// invocation's writes only if it succeeds.
func handle(raw []byte, e env) ([]byte, *outcome.Refusal) {
	// The attached configuration stays raw until the cheap checks on the
	// view have passed and its owner and version say it is worth
	// verifying.
	rawConfig, rawView, err := splitInput(raw)
	if err != nil {
		return nil, outcome.Refuse(outcome.Malformed, "malformed submission: %v", err)
	}
	if rawView == nil {
		return nil, outcome.Refuse(outcome.Malformed, "malformed submission: view is missing")
	}
	// The cheap checks come first, on what the scanner read of the view:
	// who speaks, whether the attached configuration is worth verifying
	// at all (its owner and version), and whether the view is no larger
	// than the cluster's members can need. Only then is the view decoded
	// and its signature verified, and only then may a configuration be
	// verified.
	vh, err := readViewHeader(rawView)
	if err != nil {
		return nil, outcome.Refuse(outcome.Malformed, "malformed submission: view: %v", err)
	}
	if err := members.ValidCluster(vh.Cluster); err != nil {
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: %v", err)
	}
	now := e.now()
	nowMs, monoMs := now.UnixMilli(), e.mono().Milliseconds()

	st, ref := loadDurable(e, vh.Cluster)
	if ref != nil {
		return nil, ref
	}
	candidate, ref := screenConfig(st, rawConfig, vh.Cluster)
	if ref != nil {
		return nil, ref
	}
	var member *spec.Member
	if st != nil {
		member = memberOf(st, vh.Node)
	}
	if member != nil && subtle.ConstantTimeCompare(member.Key, vh.Key) != 1 {
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: it is signed with a key that is not member %q's", vh.Node)
	}
	if member == nil && candidate == nil {
		switch {
		case st == nil:
			return nil, outcome.Refuse(outcome.NoConfiguration, "cluster %q has no configuration yet: a node must submit one (vouch node --cluster-config FILE)", vh.Cluster)
		case !st.Config.Config.Open:
			return nil, outcome.Refuse(outcome.ViewRefused, "view refused: %q is not a member of cluster %q", vh.Node, vh.Cluster)
		}
	}
	failKey := "cfgfail/" + vh.Cluster + "/" + vh.Node
	if candidate != nil && member != nil {
		if b, ok := e.get(guest.Volatile, failKey); ok && len(b) == 8 && monoMs-int64(binary.BigEndian.Uint64(b)) < configRetry.Milliseconds() {
			candidate = nil // its last one failed a moment ago: not again yet
		}
	}
	if candidate == nil {
		if limit := maxViewBytes(st); len(rawView) > limit {
			return nil, outcome.Refuse(outcome.ViewRefused, "view refused: it is %d bytes, more than a view of cluster %q's %d members can need (%d); a view lists the members its node sees alive", len(rawView), vh.Cluster, len(st.Config.Config.Members)+len(st.Registered), limit)
		}
	}
	var sv spec.SignedView
	if err := strictjson.Unmarshal(rawView, &sv); err != nil {
		return nil, outcome.Refuse(outcome.Malformed, "malformed submission: view: %v", err)
	}
	v := &sv.View
	if v.Cluster != vh.Cluster || v.Node != vh.Node || !bytes.Equal(v.Key, vh.Key) {
		return nil, outcome.Refuse(outcome.Malformed, "malformed submission: view: a field is given twice")
	}
	if err := sv.VerifyWith(guest.VerifyEd25519); err != nil {
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: %v", err)
	}
	configChanged := false
	if candidate != nil {
		sc, ref := verifyConfig(st, candidate, v.Cluster)
		switch {
		case ref == nil:
			if st == nil {
				st = &durable{}
			}
			st.Config, st.digest, configChanged = *sc, sc.Config.Digest(), true
		case member != nil:
			// A member that may speak attached a configuration that does
			// not verify: take its view without it, and do not verify its
			// configurations again for a while.
			e.put(guest.Volatile, failKey, binary.BigEndian.AppendUint64(nil, uint64(monoMs)))
		default:
			return nil, ref
		}
		if configChanged {
			// Who speaks, under the new configuration.
			if member = memberOf(st, v.Node); member != nil && subtle.ConstantTimeCompare(member.Key, v.Key) != 1 {
				return nil, outcome.Refuse(outcome.ViewRefused, "view refused: it is signed with a key that is not member %q's", v.Node)
			}
		}
	}
	cfg := &st.Config.Config
	vs := loadViews(e, st, v.Cluster, nowMs, monoMs)
	pruned := cfg.Open && prune(st, vs, monoMs, v.Node, e)
	registered := false
	if member == nil {
		if !cfg.Open {
			return nil, outcome.Refuse(outcome.ViewRefused, "view refused: %q is not a member of cluster %q", v.Node, v.Cluster)
		}
		// Open mode: anyone, on first contact (trust on first use).
		if len(st.Registered) >= maxRegistered {
			return nil, outcome.Refuse(outcome.ViewRefused, "view refused: open cluster %q already has %d registered members, the most it keeps; a member that sends no view for %d view TTLs is forgotten, so retry later, or use a closed cluster", v.Cluster, len(st.Registered), forgetAfterTTLs)
		}
		st.Registered = append(st.Registered, spec.Member{ID: v.Node, Key: v.Key})
		registered = true
	}

	if d := now.Sub(v.Time()); d > maxClockSkew || d < -maxClockSkew {
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: its time is %v away from the runtime's clock (more than %v; check the node's clock)", d.Round(time.Millisecond), maxClockSkew)
	}
	if v.TimeMillis < vs.StartWallMs {
		// A restart forgets the seqs seen before it, so a view signed
		// before this runtime process started may be a replay. One signed
		// since cannot be: no earlier process saw it.
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: it was signed before the runtime restarted (a restart forgets the seqs it has seen, so it could be a replay); sign a new one")
	}
	if prev, ok := vs.Latest[v.Node]; ok && v.Seq <= prev.Seq {
		return nil, outcome.Refuse(outcome.ViewRefused, "view refused: seq %d is not above %d, the last view taken from %q (stale or replayed)", v.Seq, prev.Seq, v.Node)
	}
	// Keep only the IDs that can count: a view listing thousands of
	// strangers must not make every later tally slower.
	seen := viewSeen{Seq: v.Seq, RecvMs: monoMs, Alive: knownOnly(st, v.Alive)}
	vs.Latest[v.Node] = seen
	e.put(guest.Volatile, "view/"+v.Cluster+"/"+v.Node, seen.encode())

	if configChanged {
		b, _ := json.Marshal(st.Config)
		e.put(guest.Durable, "cfg/"+v.Cluster, b)
	}
	if registered || pruned {
		b, _ := json.Marshal(st.Registered)
		e.put(guest.Durable, "reg/"+v.Cluster, b)
	}
	ls := loadLease(e, st, vs)
	adopted := adoptFloor(e, st, v.Cluster, &ls, monoMs)
	alive, newTerm := decide(st, vs, &ls, nowMs, monoMs, e)
	if newTerm || adopted {
		b, _ := json.Marshal(st.term)
		e.put(guest.Durable, "term/"+v.Cluster, b)
	}
	renewed := false
	if t := st.term; t != nil && v.Node == t.o.Leader && !t.Fenced {
		// The leader's own submission renews its lease, but only while a
		// majority sees it alive: a leader cut off from its peers must
		// not keep acting because it still reaches the runtime.
		if !contains(alive, t.o.Leader) {
			return nil, outcome.Refuse(outcome.LeaseNotRenewed, "lease not renewed: leader %q of term %d is not alive by a majority of views", t.o.Leader, t.o.Term)
		}
		// The lease granted is the one in the answer, the term's.
		ls.SinceMs, ls.UntilMs, renewed = monoMs, max(ls.UntilMs, monoMs+t.o.LeaseMs), true
	}
	if newTerm || renewed || adopted {
		e.put(guest.Volatile, "lease/"+v.Cluster, ls.encode())
	}
	return certificate(st), nil
}

// decide applies the election rules. It returns the members alive by
// majority and whether a new term started (then st.term and ls describe
// it).
func decide(st *durable, vs *views, ls *leaseState, nowMs, monoMs int64, e env) ([]string, bool) {
	cfg := &st.Config.Config
	all := activeMembers(st, vs, monoMs)
	n := len(all)
	ttl := cfg.ViewTTLMillis
	gen, pos := indexMembers(all)
	count := make([]int, n)
	for _, id := range all {
		seen, ok := vs.Latest[id]
		if !ok || monoMs-seen.RecvMs > ttl {
			continue // no fresh view from this member
		}
		for _, j := range seen.indexes(gen, pos) {
			count[j]++
		}
	}
	var alive []string
	for i, id := range all {
		if 2*count[i] > n { // a strict majority of all members
			alive = append(alive, id)
		}
	}
	candidates, next := alive, ""
	if t := st.term; t != nil {
		leader := t.o.Leader
		leaderAlive := contains(alive, leader) // a removed member is never alive
		stalled := leaderAlive && monoMs-ls.SinceMs > stallLeases*max(t.o.LeaseMs, ttl)
		pending := t.o.ConfigDigest != st.digest
		switch {
		case leaderAlive && !stalled && !pending && !t.Fenced:
			return alive, false // a leader keeps its office while it is alive
		case leaderAlive && !stalled && !t.Fenced:
			next = leader // a new configuration: a new term, same leader
		default:
			// The leader lost office: not alive by majority, removed by
			// the configuration, or stalled. It may still act until the
			// leases granted to it run out.
			if monoMs < ls.UntilMs {
				return alive, false
			}
			if stalled {
				candidates = without(alive, leader) // or "highest" picks it again
			}
		}
	}
	if len(candidates) == 0 {
		return alive, false // no majority agrees on anyone: wait
	}
	set, err := members.New(candidates)
	if err != nil {
		return alive, false
	}
	if next == "" {
		if next, err = spec.Pick(cfg, set, secret(st, e), st.termNum()+1); err != nil {
			return alive, false
		}
	}
	out := outcome.Term{
		Cluster: cfg.Cluster, ConfigDigest: st.digest, Term: st.termNum() + 1, Leader: next, MembersDigest: set.Digest(),
		IssuedAtMs: nowMs, LeaseMs: cfg.LeaseMillis, Policy: cfg.Policy, Mode: mode(cfg),
	}
	b, _ := json.Marshal(out)
	kept := next == st.leader()
	st.term = &termRecord{Output: b, CarryMs: max(0, ls.UntilMs-monoMs), o: out}
	ls.Term = out.Term
	if !kept {
		ls.SinceMs = monoMs // a new leader's stall bound counts from its term
	}
	return alive, true
}

// activeMembers lists who counts: the configured members, or in an open
// cluster also the registered members that sent a view recently.
func activeMembers(st *durable, vs *views, monoMs int64) []string {
	cfg := &st.Config.Config
	var ids []string
	for _, m := range cfg.Members {
		ids = append(ids, m.ID)
	}
	if cfg.Open {
		forget := cfg.ViewTTLMillis * forgetAfterTTLs
		for _, m := range st.Registered {
			if seen, ok := vs.Latest[m.ID]; ok && monoMs-seen.RecvMs <= forget {
				ids = append(ids, m.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	set, err := members.New(ids)
	if err != nil {
		return nil
	}
	return set.IDs()
}

// prune forgets the registrations of an open cluster whose member sent no
// view for forgetAfterTTLs view TTLs (counted from this runtime's start if
// it sent none since), except the current leader's and the submitter's.
// It reports whether it forgot any.
func prune(st *durable, vs *views, monoMs int64, submitter string, e env) bool {
	forget := st.Config.Config.ViewTTLMillis * forgetAfterTTLs
	var kept []spec.Member
	pruned := false
	for _, m := range st.Registered {
		last := vs.BootMonoMs
		if seen, ok := vs.Latest[m.ID]; ok {
			last = max(last, seen.RecvMs)
		}
		if monoMs-last <= forget || m.ID == st.leader() || m.ID == submitter {
			kept = append(kept, m)
			continue
		}
		delete(vs.Latest, m.ID)
		e.del(guest.Volatile, "view/"+vs.cluster+"/"+m.ID)
		pruned = true
	}
	if pruned {
		st.Registered = kept
	}
	return pruned
}

// maxViewBytes bounds a signed view's JSON in a cluster: its alive list
// may name every member twice over and 64 strangers, each ID as long and
// as escaped (\u003c is 6 bytes) as it can be.
func maxViewBytes(st *durable) int {
	n := len(st.Config.Config.Members) + len(st.Registered)
	return 1024 + (2*n+64)*(6*members.MaxIDLen+3)
}

// knownOnly returns the IDs of alive that are members (configured or
// registered), in the same order.
func knownOnly(st *durable, alive []string) []string {
	known := make(map[string]bool, len(st.Config.Config.Members)+len(st.Registered))
	for _, m := range st.Config.Config.Members {
		known[m.ID] = true
	}
	for _, m := range st.Registered {
		known[m.ID] = true
	}
	var out []string
	for _, id := range alive {
		if known[id] {
			out = append(out, id)
		}
	}
	return out
}

// secret returns the cluster's secret for the fair and stake policies,
// creating it from the runtime's CSPRNG on first use. It never leaves the
// runtime's state.
func secret(st *durable, e env) []byte {
	key := "secret/" + st.Config.Config.Cluster
	if s, ok := e.get(guest.Durable, key); ok && len(s) == 32 {
		return s
	}
	s := make([]byte, 32)
	e.random(s)
	e.put(guest.Durable, key, s)
	return s
}

// configHeader is what the function reads of an attached configuration
// before it decides whether to verify it.
type configHeader struct {
	Config struct {
		Cluster string `json:"cluster"`
		Version uint64 `json:"version"`
		Owner   []byte `json:"owner"`
	} `json:"config"`
	Signature []byte `json:"signature"`
}

// screenConfig decides cheaply, without verifying anything, whether an
// attached configuration is worth verifying: the first one of a cluster,
// or one of the bound owner with a higher version. It returns nil when
// there is nothing to do (none, or the same or an older version), and an
// error for a configuration that can only be refused.
func screenConfig(st *durable, raw []byte, clusterName string) ([]byte, *outcome.Refusal) {
	if raw == nil {
		return nil, nil
	}
	h, err := readHeader(raw)
	if err != nil {
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: malformed: %v", err)
	}
	if h.Config.Cluster != clusterName {
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: it is for cluster %q, the view for %q", h.Config.Cluster, clusterName)
	}
	if st == nil {
		return raw, nil // the first configuration binds the cluster to its owner key
	}
	cur := &st.Config
	if !bytes.Equal(h.Config.Owner, cur.Config.Owner) {
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: it is signed by another owner than the cluster's")
	}
	switch {
	case h.Config.Version > cur.Config.Version:
		return raw, nil
	case h.Config.Version == cur.Config.Version && !bytes.Equal(h.Signature, cur.Signature):
		// Ed25519 signatures are deterministic: the same contents signed by
		// the same owner have the same signature.
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: version %d already exists with other contents; sign a change with a higher version", h.Config.Version)
	}
	return nil, nil // the same or an older version: nothing to do
}

// verifyConfig decodes and verifies a configuration screenConfig let
// through.
func verifyConfig(st *durable, raw []byte, clusterName string) (*spec.Signed, *outcome.Refusal) {
	var sc spec.Signed
	if err := strictjson.Unmarshal(raw, &sc); err != nil {
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: malformed: %v", err)
	}
	if err := sc.VerifyWith(guest.VerifyEd25519); err != nil {
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: %v", err)
	}
	c := &sc.Config
	switch {
	case c.Cluster != clusterName:
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: it is for cluster %q, the view for %q", c.Cluster, clusterName)
	case st != nil && !bytes.Equal(c.Owner, st.Config.Config.Owner):
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: it is signed by another owner than the cluster's")
	case st != nil && c.Version <= st.Config.Config.Version:
		return nil, outcome.Refuse(outcome.ConfigurationRefused, "configuration refused: version %d is not above %d", c.Version, st.Config.Config.Version)
	}
	return &sc, nil
}

func memberOf(st *durable, id string) *spec.Member {
	if m := st.Config.Config.Member(id); m != nil {
		return m
	}
	for i := range st.Registered {
		if st.Registered[i].ID == id {
			return &st.Registered[i]
		}
	}
	return nil
}

// parsedConfig is a decoded stored configuration and its digest.
type parsedConfig struct {
	sc     spec.Signed
	digest string
}

// parsed caches decoded configurations by the SHA-256 of their bytes:
// decoding and hashing a large configuration on every submission would
// dominate. Warm instances keep it between calls; it is only a cache.
var parsed = map[[32]byte]*parsedConfig{}

func loadDurable(e env, name string) (*durable, *outcome.Refusal) {
	raw, ok := e.get(guest.Durable, "cfg/"+name)
	if !ok {
		return nil, nil
	}
	key := guest.SHA256(raw) // the host's SHA-256: Go's in wasm costs about 1.6 µs a block
	pc, ok := parsed[key]
	if !ok {
		var c spec.Signed
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, outcome.Refuse(outcome.StateUnreadable, "cluster %q: stored configuration is unreadable: %v", name, err)
		}
		if len(parsed) > 64 {
			clear(parsed)
		}
		pc = &parsedConfig{sc: c, digest: c.Config.Digest()}
		parsed[key] = pc
	}
	st := &durable{Config: pc.sc, digest: pc.digest}
	if b, ok := e.get(guest.Durable, "term/"+name); ok {
		var rec termRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, outcome.Refuse(outcome.StateUnreadable, "cluster %q: stored term is unreadable: %v", name, err)
		}
		if err := strictjson.Unmarshal(rec.Output, &rec.o); err != nil {
			return nil, outcome.Refuse(outcome.StateUnreadable, "cluster %q: stored term certificate is unreadable: %v", name, err)
		}
		st.term = &rec
	}
	if b, ok := e.get(guest.Durable, "reg/"+name); ok {
		if err := json.Unmarshal(b, &st.Registered); err != nil {
			return nil, outcome.Refuse(outcome.StateUnreadable, "cluster %q: stored registrations are unreadable: %v", name, err)
		}
	}
	return st, nil
}

// loadViews reads the latest view of every member that may count.
func loadViews(e env, st *durable, name string, nowMs, monoMs int64) *views {
	vs := &views{cluster: name, Latest: map[string]viewSeen{}}
	if b, ok := e.get(guest.Volatile, "boot/"+name); ok && len(b) == 16 {
		vs.StartWallMs, vs.BootMonoMs = int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	} else {
		// The first submission since the runtime started.
		vs.StartWallMs, vs.BootMonoMs = nowMs-monoMs, monoMs
		e.put(guest.Volatile, "boot/"+name, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(vs.StartWallMs)), uint64(monoMs)))
	}
	for _, m := range st.Config.Config.Members {
		loadSeen(e, vs, m.ID)
	}
	for _, m := range st.Registered {
		loadSeen(e, vs, m.ID)
	}
	return vs
}

func loadSeen(e env, vs *views, id string) {
	key := "view/" + vs.cluster + "/" + id
	b, ok := e.get(guest.Volatile, key)
	if !ok {
		return
	}
	v, ok := decodeSeenHeader(b)
	if !ok {
		return
	}
	m := seenMemos[key]
	if m == nil || !bytes.Equal(m.raw, b) {
		if m != nil {
			memoBytes -= len(m.raw)
		}
		if memoBytes+len(b) > maxMemoBytes {
			clear(seenMemos)
			memoBytes = 0
		}
		m = &seenMemo{raw: bytes.Clone(b)}
		seenMemos[key], memoBytes = m, memoBytes+len(b)
	}
	v.memo = m
	vs.Latest[id] = v
}

// loadLease reads what the runtime granted the leader. After a restart it
// knows nothing of the renewals before it, so it assumes the longest lease
// that could still run was granted at the restart.
func loadLease(e env, st *durable, vs *views) leaseState {
	if b, ok := e.get(guest.Volatile, "lease/"+vs.cluster); ok && len(b) == 24 {
		l := leaseState{Term: binary.BigEndian.Uint64(b), SinceMs: int64(binary.BigEndian.Uint64(b[8:])), UntilMs: int64(binary.BigEndian.Uint64(b[16:]))}
		if l.Term == st.termNum() {
			return l
		}
	}
	l := leaseState{Term: st.termNum(), SinceMs: vs.BootMonoMs}
	if t := st.term; t != nil {
		l.UntilMs = vs.BootMonoMs + max(t.o.LeaseMs, t.CarryMs)
	}
	return l
}

func mode(c *spec.Config) string {
	if c.Open {
		return "open (trust on first use)"
	}
	return "closed"
}

// certificate returns the answer: the term's stored certificate output,
// or before the first term (and while a term restored from a proof of
// rollback is fenced) an output with term 0 and no leader.
func certificate(st *durable) []byte {
	if st.term != nil && !st.term.Fenced {
		return st.term.Output
	}
	c := &st.Config.Config
	b, _ := json.Marshal(outcome.Term{Cluster: c.Cluster, ConfigDigest: st.digest, LeaseMs: c.LeaseMillis, Policy: c.Policy, Mode: mode(c)})
	return b
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func without(ids []string, id string) []string {
	var out []string
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}
