package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"vouch/cluster"
	"vouch/election"
	"vouch/election/members"
	"vouch/guest"
	"vouch/internal/strictjson"
)

// env is what the function needs from the runtime.
type env interface {
	get(ns guest.Namespace, key string) ([]byte, bool)
	put(ns guest.Namespace, key string, v []byte)
	now() time.Time
	random(b []byte)
}

// Input is a submission.
type Input struct {
	Config *cluster.Signed     `json:"config,omitempty"`
	View   *cluster.SignedView `json:"view"`
}

// durable is a cluster's durable state, kept under three keys so that a
// submission rewrites only what changed:
//
//	cfg/<cluster>   the signed configuration (on a configuration change)
//	term/<cluster>  term, leader, members digest, issue time (on a new term)
//	reg/<cluster>   open-mode registrations (on a registration)
type durable struct {
	Config cluster.Signed `json:"-"`
	termState
	Registered []cluster.Member `json:"-"`
}

type termState struct {
	Term          uint64 `json:"term"`
	Leader        string `json:"leader"`
	MembersDigest string `json:"members_digest"`
	IssuedAtMs    int64  `json:"issued_at_ms"`
}

// views is a cluster's volatile state: each member's latest view (key
// view/<cluster>/<node>) and when this runtime started serving the cluster
// (key boot/<cluster>). A restart forgets both.
type views struct {
	cluster string
	BootMs  int64
	Latest  map[string]viewSeen
}

type viewSeen struct {
	Seq    uint64
	RecvMs int64
	Alive  []string
}

func (v viewSeen) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, v.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(v.RecvMs))
	return append(b, strings.Join(v.Alive, "\n")...)
}

func decodeSeen(b []byte) (viewSeen, bool) {
	if len(b) < 16 {
		return viewSeen{}, false
	}
	v := viewSeen{Seq: binary.BigEndian.Uint64(b), RecvMs: int64(binary.BigEndian.Uint64(b[8:]))}
	if len(b) > 16 {
		v.Alive = strings.Split(string(b[16:]), "\n")
	}
	return v, true
}

// maxClockSkew is how far a view's time may be from the runtime's clock.
const maxClockSkew = 10 * time.Second

// bootGraceMs is how long before the runtime's first submission after a
// start a view may have been signed and still be taken: the first views
// after a restart were signed a moment before they arrived.
const bootGraceMs = 1000

// forgetAfter is how long an open cluster keeps a registered member that
// sends no views before it stops counting it.
const forgetAfterTTLs = 10

func handle(raw []byte, e env) ([]byte, error) {
	var in Input
	if err := strictjson.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("malformed submission: %v", err)
	}
	if in.View == nil {
		return nil, errors.New("malformed submission: view is missing")
	}
	if err := in.View.Verify(); err != nil {
		return nil, fmt.Errorf("view refused: %v", err)
	}
	v := &in.View.View
	now := e.now()
	nowMs := now.UnixMilli()

	st, err := loadDurable(e, v.Cluster)
	if err != nil {
		return nil, err
	}
	configChanged := false
	if in.Config != nil {
		if st, configChanged, err = adoptConfig(st, in.Config, v.Cluster); err != nil {
			return nil, err
		}
	}
	if st == nil {
		return nil, fmt.Errorf("cluster %q has no configuration yet: a node must submit one (vouch node --cluster-config FILE)", v.Cluster)
	}
	cfg := &st.Config.Config

	// Who may speak: a configured member with its configured key, or, in an
	// open cluster, anyone on first contact (trust on first use).
	registered := false
	if m := memberOf(st, v.Node); m != nil {
		if subtle.ConstantTimeCompare(m.Key, v.Key) != 1 {
			return nil, fmt.Errorf("view refused: it is signed with a key that is not member %q's", v.Node)
		}
	} else if cfg.Open {
		st.Registered = append(st.Registered, cluster.Member{ID: v.Node, Key: v.Key})
		registered = true
	} else {
		return nil, fmt.Errorf("view refused: %q is not a member of cluster %q", v.Node, v.Cluster)
	}

	vs := loadViews(e, st, v.Cluster, nowMs)
	if d := now.Sub(v.Time()); d > maxClockSkew || d < -maxClockSkew {
		return nil, fmt.Errorf("view refused: its time is %v away from the runtime's clock (more than %v; check the node's clock)", d.Round(time.Millisecond), maxClockSkew)
	}
	if v.TimeMillis < vs.BootMs-bootGraceMs {
		// A view signed before this runtime started serving the cluster may
		// be a replay: the seqs seen before the restart are forgotten.
		return nil, errors.New("view refused: it was signed before the runtime restarted; sign a new one")
	}
	if prev, ok := vs.Latest[v.Node]; ok && v.Seq <= prev.Seq {
		return nil, fmt.Errorf("view refused: seq %d is not above %d, the last view taken from %q (stale or replayed)", v.Seq, prev.Seq, v.Node)
	}
	seen := viewSeen{Seq: v.Seq, RecvMs: nowMs, Alive: v.Alive}
	vs.Latest[v.Node] = seen
	e.put(guest.Volatile, "view/"+v.Cluster+"/"+v.Node, seen.encode())

	if configChanged {
		b, _ := json.Marshal(st.Config)
		e.put(guest.Durable, "cfg/"+v.Cluster, b)
	}
	if registered {
		b, _ := json.Marshal(st.Registered)
		e.put(guest.Durable, "reg/"+v.Cluster, b)
	}
	alive, newTerm := decide(st, vs, nowMs, configChanged, e)
	if newTerm {
		b, _ := json.Marshal(st.termState)
		e.put(guest.Durable, "term/"+v.Cluster, b)
	}
	if st.Term > 0 && v.Node == st.Leader {
		// The leader's own submission renews its lease, but only while a
		// majority sees it alive: a leader cut off from its peers must
		// not keep acting because it still reaches the runtime.
		if !contains(alive, st.Leader) {
			return nil, fmt.Errorf("lease not renewed: leader %q of term %d is not alive by a majority of views", st.Leader, st.Term)
		}
		e.put(guest.Volatile, "renewed/"+v.Cluster, binary.BigEndian.AppendUint64(nil, uint64(nowMs)))
	}
	return certificate(st), nil
}

// decide applies the election rules. It returns the members alive by
// majority and whether a new term started.
func decide(st *durable, vs *views, nowMs int64, configChanged bool, e env) ([]string, bool) {
	cfg := &st.Config.Config
	all := activeMembers(st, vs, nowMs)
	n := len(all)
	ttl := cfg.ViewTTLMillis
	count := map[string]int{}
	for _, id := range all {
		seen, ok := vs.Latest[id]
		if !ok || nowMs-seen.RecvMs > ttl {
			continue // no fresh view from this member
		}
		for _, a := range seen.Alive {
			count[a]++
		}
	}
	var alive []string
	for _, id := range all {
		if 2*count[id] > n { // a strict majority of all members
			alive = append(alive, id)
		}
	}
	leaderAlive := st.Term > 0 && contains(alive, st.Leader)
	if leaderAlive && !configChanged {
		return alive, false // a leader keeps its office while it is alive
	}
	if len(alive) == 0 {
		return alive, false // no majority agrees on anyone: wait
	}
	set, err := members.New(alive)
	if err != nil {
		return alive, false
	}
	next := ""
	switch {
	case leaderAlive:
		next = st.Leader // only the configuration changed
	case st.Term > 0 && st.Leader != "":
		// The leader is not alive by majority. It may still act until its
		// lease runs out, counted from the last renewal (or from when the
		// runtime started, if later: renewals before a restart are
		// forgotten).
		last := vs.BootMs
		if b, ok := e.get(guest.Volatile, "renewed/"+vs.cluster); ok && len(b) == 8 {
			last = max(last, int64(binary.BigEndian.Uint64(b)))
		}
		if nowMs < last+cfg.LeaseMillis {
			return alive, false
		}
	}
	if next == "" {
		next, err = cluster.Pick(cfg, set, secret(st, e), st.Term+1)
		if err != nil {
			return alive, false
		}
	}
	st.Term++
	st.Leader = next
	st.MembersDigest = set.Digest()
	st.IssuedAtMs = nowMs
	return alive, true
}

// activeMembers lists who counts: the configured members, or in an open
// cluster the registered members that sent a view recently.
func activeMembers(st *durable, vs *views, nowMs int64) []string {
	cfg := &st.Config.Config
	var ids []string
	for _, m := range cfg.Members {
		ids = append(ids, m.ID)
	}
	if cfg.Open {
		forget := cfg.ViewTTLMillis * forgetAfterTTLs
		for _, m := range st.Registered {
			if seen, ok := vs.Latest[m.ID]; ok && nowMs-seen.RecvMs <= forget {
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

func adoptConfig(st *durable, sc *cluster.Signed, clusterName string) (*durable, bool, error) {
	if err := sc.Verify(); err != nil {
		return st, false, fmt.Errorf("configuration refused: %v", err)
	}
	c := &sc.Config
	if c.Cluster != clusterName {
		return st, false, fmt.Errorf("configuration refused: it is for cluster %q, the view for %q", c.Cluster, clusterName)
	}
	if st == nil {
		// The first configuration binds the cluster to its owner key.
		return &durable{Config: *sc}, true, nil
	}
	cur := &st.Config.Config
	if !bytes.Equal(c.Owner, cur.Owner) {
		return st, false, errors.New("configuration refused: it is signed by another owner than the cluster's")
	}
	switch {
	case c.Version > cur.Version:
		st.Config = *sc
		return st, true, nil
	case c.Version == cur.Version && c.Digest() != cur.Digest():
		return st, false, fmt.Errorf("configuration refused: version %d already exists with other contents", c.Version)
	}
	return st, false, nil // the same or an older version: nothing to do
}

func memberOf(st *durable, id string) *cluster.Member {
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

// parsed caches decoded configurations by the SHA-256 of their bytes:
// decoding a large configuration on every submission would dominate.
var parsed = map[[32]byte]*cluster.Signed{}

func loadDurable(e env, name string) (*durable, error) {
	raw, ok := e.get(guest.Durable, "cfg/"+name)
	if !ok {
		return nil, nil
	}
	key := sha256.Sum256(raw)
	sc, ok := parsed[key]
	if !ok {
		var c cluster.Signed
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("cluster %q: stored configuration is unreadable: %v", name, err)
		}
		if len(parsed) > 64 {
			clear(parsed)
		}
		parsed[key], sc = &c, &c
	}
	st := &durable{Config: *sc}
	if b, ok := e.get(guest.Durable, "term/"+name); ok {
		if err := json.Unmarshal(b, &st.termState); err != nil {
			return nil, fmt.Errorf("cluster %q: stored term is unreadable: %v", name, err)
		}
	}
	if b, ok := e.get(guest.Durable, "reg/"+name); ok {
		if err := json.Unmarshal(b, &st.Registered); err != nil {
			return nil, fmt.Errorf("cluster %q: stored registrations are unreadable: %v", name, err)
		}
	}
	return st, nil
}

// loadViews reads the latest view of every member that may count.
func loadViews(e env, st *durable, name string, nowMs int64) *views {
	vs := &views{cluster: name, Latest: map[string]viewSeen{}}
	if b, ok := e.get(guest.Volatile, "boot/"+name); ok && len(b) == 8 {
		vs.BootMs = int64(binary.BigEndian.Uint64(b))
	} else {
		vs.BootMs = nowMs // the first submission since the runtime started
		e.put(guest.Volatile, "boot/"+name, binary.BigEndian.AppendUint64(nil, uint64(nowMs)))
	}
	if st == nil {
		return vs
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
	if b, ok := e.get(guest.Volatile, "view/"+vs.cluster+"/"+id); ok {
		if v, ok := decodeSeen(b); ok {
			vs.Latest[id] = v
		}
	}
}

func certificate(st *durable) []byte {
	c := &st.Config.Config
	mode := "closed"
	if c.Open {
		mode = "open (trust on first use)"
	}
	out := election.TermOutcome{
		Cluster: c.Cluster, ConfigDigest: c.Digest(), Term: st.Term, Leader: st.Leader, MembersDigest: st.MembersDigest,
		IssuedAtMs: st.IssuedAtMs, LeaseMs: c.LeaseMillis, Policy: c.Policy, Mode: mode,
	}
	b, _ := json.Marshal(out)
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
