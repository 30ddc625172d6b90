package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"vouch/cluster"
	"vouch/election/members"
	"vouch/guest"
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

// Certificate is the function's output: the cluster's certificate for its
// current term. Term 0 means no leader has been elected yet.
type Certificate struct {
	Cluster       string `json:"cluster"`
	ConfigDigest  string `json:"config_digest"`
	Term          uint64 `json:"term"`
	Leader        string `json:"leader"`
	MembersDigest string `json:"members_digest"`
	IssuedAtMs    int64  `json:"issued_at_ms"`
	LeaseMs       int64  `json:"lease_ms"`
	Policy        string `json:"policy"`
	Mode          string `json:"mode"`
}

// durable is a cluster's durable state (key "c/<cluster>").
type durable struct {
	Config        cluster.Signed   `json:"config"`
	Term          uint64           `json:"term"`
	Leader        string           `json:"leader"`
	MembersDigest string           `json:"members_digest"`
	IssuedAtMs    int64            `json:"issued_at_ms"`
	Registered    []cluster.Member `json:"registered,omitempty"` // open mode
}

// views is a cluster's volatile state (key "v/<cluster>"): each member's
// latest view, and when this runtime started serving the cluster.
type views struct {
	BootMs int64               `json:"boot_ms"`
	Latest map[string]viewSeen `json:"latest"`
}

type viewSeen struct {
	Seq    uint64   `json:"seq"`
	RecvMs int64    `json:"recv_ms"`
	Alive  []string `json:"alive"`
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
	if err := strictJSON(raw, &in); err != nil {
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

	vs := loadViews(e, v.Cluster, nowMs)
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
	vs.Latest[v.Node] = viewSeen{Seq: v.Seq, RecvMs: nowMs, Alive: v.Alive}

	changed := registered || configChanged
	if decide(st, vs, nowMs, configChanged, e) {
		changed = true
	}
	if changed {
		b, _ := json.Marshal(st)
		e.put(guest.Durable, "c/"+v.Cluster, b)
	}
	b, _ := json.Marshal(vs)
	e.put(guest.Volatile, "v/"+v.Cluster, b)
	return certificate(st), nil
}

// decide applies the election rules and reports whether the durable state
// changed (a new term).
func decide(st *durable, vs *views, nowMs int64, configChanged bool, e env) bool {
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
		return false // a leader keeps its office while it is alive
	}
	if len(alive) == 0 {
		return false // no majority agrees on anyone: wait
	}
	set, err := members.New(alive)
	if err != nil {
		return false
	}
	next := ""
	switch {
	case leaderAlive:
		next = st.Leader // only the configuration changed
	case st.Term > 0 && st.Leader != "":
		// The leader is not alive by majority. It may still act until its
		// lease runs out, counted from the last time this runtime heard
		// from it (or from when the runtime started, if later).
		last := vs.BootMs
		if seen, ok := vs.Latest[st.Leader]; ok && seen.RecvMs > last {
			last = seen.RecvMs
		}
		if nowMs < last+cfg.LeaseMillis {
			return false
		}
	}
	if next == "" {
		next, err = cluster.Pick(cfg, set, secret(st, e), st.Term+1)
		if err != nil {
			return false
		}
	}
	st.Term++
	st.Leader = next
	st.MembersDigest = set.Digest()
	st.IssuedAtMs = nowMs
	return true
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

func loadDurable(e env, name string) (*durable, error) {
	b, ok := e.get(guest.Durable, "c/"+name)
	if !ok {
		return nil, nil
	}
	var st durable
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cluster %q: stored state is unreadable: %v", name, err)
	}
	return &st, nil
}

func loadViews(e env, name string, nowMs int64) *views {
	vs := &views{Latest: map[string]viewSeen{}}
	if b, ok := e.get(guest.Volatile, "v/"+name); ok {
		if json.Unmarshal(b, vs) == nil && vs.Latest != nil {
			return vs
		}
		vs = &views{Latest: map[string]viewSeen{}}
	}
	vs.BootMs = nowMs // first submission since the runtime started
	return vs
}

func certificate(st *durable) []byte {
	c := &st.Config.Config
	mode := "closed"
	if c.Open {
		mode = "open (trust on first use)"
	}
	out := Certificate{
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

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

