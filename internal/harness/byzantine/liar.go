package byzantine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/receipt"
)

// liar is a Byzantine member: a configured member with its own key and
// function token that does whatever it likes.
type liar struct {
	h        *harness
	name     string
	key      ed25519.PrivateKey
	ref      client.FunctionRef // the election function, with its own token
	otherRef client.FunctionRef // another function, with its own token
	ml       *memberlist.Memberlist
	hc       *http.Client

	mu      sync.Mutex
	seq     uint64
	oldView []byte // one of its own earlier submissions, to replay
}

func (l *liar) start() error {
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = "liar-" + l.name
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", 0
	cfg.Label = "vouch/" + clusterName
	cfg.LogOutput = io.Discard
	kr, err := memberlist.NewKeyring(nil, l.h.gossipKey)
	if err != nil {
		return err
	}
	cfg.Keyring = kr
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return err
	}
	l.ml = ml
	l.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return nil
}

func (l *liar) stop() {
	if l.ml != nil {
		l.ml.Shutdown()
	}
	if l.hc != nil {
		l.hc.CloseIdleConnections()
	}
}

func (l *liar) nextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq = max(l.seq+1, uint64(time.Now().UnixMicro()))
	return l.seq
}

// view signs a view of its own (its name, its key) listing alive.
func (l *liar) view(alive []string) *cluster.SignedView {
	sv, err := cluster.SignView(cluster.View{Cluster: clusterName, Node: l.name, Seq: l.nextSeq(), TimeMillis: time.Now().UnixMilli(), Alive: alive}, l.key)
	if err != nil {
		panic(err) // the harness builds valid lists
	}
	return sv
}

func body(sv *cluster.SignedView) []byte {
	b, _ := json.Marshal(map[string]any{"view": sv})
	return b
}

// submit sends a raw submission with the liar's token and classifies the
// answer: "ok" (the runtime took it; its certificate is returned) or the
// reason it was refused.
func (l *liar) submit(ctx context.Context, ref client.FunctionRef, input []byte) (*election.Certificate, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.h.env.URL+"/v1/functions/"+url.PathEscape(ref.ID)+"/run", bytes.NewReader(input))
	if err != nil {
		return nil, "transport"
	}
	req.Header.Set("Content-Type", api.ContentTypePlain)
	req.Header.Set(api.HeaderChecksum, ref.Checksum)
	req.Header.Set("Authorization", "Bearer "+ref.Token)
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, "transport"
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "transport"
	}
	if resp.StatusCode == http.StatusOK {
		var res api.RunResult
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, "bad_answer"
		}
		cert := &election.Certificate{Output: res.Output, Receipt: res.Receipt}
		if ref.ID == l.ref.ID {
			l.h.sawCert(cert, true)
		}
		return cert, "ok"
	}
	var er api.ErrorResponse
	_ = json.Unmarshal(data, &er)
	return nil, classify(resp.StatusCode, er.Error)
}

// classify names the runtime's reason for refusing a submission.
func classify(status int, e *api.Error) string {
	if status == http.StatusTooManyRequests {
		return "rate_limited"
	}
	if e == nil {
		return "http_" + strconv.Itoa(status)
	}
	msg := e.Message
	switch {
	case strings.Contains(msg, "not member"):
		return "wrong_key"
	case strings.Contains(msg, "signature does not verify"):
		return "bad_signature"
	case strings.Contains(msg, "is not a member of cluster"):
		return "not_member"
	case strings.Contains(msg, "is not above"):
		return "stale_seq"
	case strings.Contains(msg, "away from the runtime's clock"):
		return "clock_skew"
	case strings.Contains(msg, "before the runtime restarted"):
		return "before_restart"
	case strings.Contains(msg, "lease not renewed"):
		return "lease_refused"
	case strings.Contains(msg, "configuration refused"):
		return "config_refused"
	case strings.Contains(msg, "members can need"):
		return "view_too_large"
	case strings.Contains(msg, "malformed"), strings.Contains(msg, "invalid cluster configuration"):
		return "malformed"
	}
	if e.Code != "" {
		return e.Code
	}
	return "http_" + strconv.Itoa(status)
}

// try submits input for attack a and counts the answer.
func (l *liar) try(ctx context.Context, a Attack, input []byte) (*election.Certificate, string) {
	cert, class := l.submit(ctx, l.ref, input)
	l.h.rep.count(a, "attempt", 1)
	switch class {
	case "ok":
		l.h.rep.count(a, "accepted", 1)
	case "transport":
		if ctx.Err() != nil {
			return nil, class // the run is ending
		}
		fallthrough
	default:
		l.h.rep.count(a, "runtime:"+class, 1)
	}
	return cert, class
}

// latest returns a current genuine certificate, submitting a harmless
// view (only itself alive) if it has none of the current term.
func (l *liar) latest(ctx context.Context) *election.Certificate {
	term, _ := l.h.runtimeHeld()
	if certs := l.h.capturedCerts(term); len(certs) > 0 {
		return certs[len(certs)-1]
	}
	cert, _ := l.submit(ctx, l.ref, body(l.view([]string{l.name})))
	return cert
}

// send delivers a gossip message to an honest node over TCP, as a
// memberlist user message. It reports whether it was delivered.
func (l *liar) send(hn *honestNode, msg []byte) bool {
	return l.ml.SendReliable(&memberlist.Node{Name: hn.name, Addr: net.ParseIP("127.0.0.1"), Port: uint16(hn.n.Port())}, msg) == nil
}

// sendCert gossips a certificate to each of nodes; it returns how many
// deliveries it made.
func (l *liar) sendCert(nodes []*honestNode, cert *election.Certificate) uint64 {
	return l.sendRaw(nodes, append([]byte{1}, cert.Encode()...))
}

func (l *liar) sendRaw(nodes []*honestNode, msg []byte) uint64 {
	var n uint64
	for _, hn := range nodes {
		if l.send(hn, msg) {
			n++
		}
	}
	return n
}

// members returns the configured members except those in omit.
func (h *harness) members(omit ...string) []string {
	var out []string
	for _, m := range h.config.Config.Members {
		if !slices.Contains(omit, m.ID) {
			out = append(out, m.ID)
		}
	}
	return out
}

func (h *harness) liarNames() []string {
	var out []string
	for _, l := range h.liars {
		out = append(out, l.name)
	}
	return out
}

// --- the attacks ---

// omitLoop: views that list every member but the live leader.
func (l *liar) omitLoop(ctx context.Context, g *group, leader string) {
	g.loop(ctx, 250*time.Millisecond, func() {
		b := body(l.view(l.h.members(leader)))
		if _, class := l.try(ctx, Omit, b); class == "ok" {
			l.mu.Lock()
			if l.oldView == nil {
				l.oldView = b
			}
			l.mu.Unlock()
		}
	})
}

// impersonateLoop: views in the victim's name or with forged signatures.
// The views list only the victim and the liars, so that if one counted it
// would take the victim's vote away from every other honest member.
func (l *liar) impersonateLoop(ctx context.Context, g *group, victim string) {
	h := l.h
	victimKey := h.config.Config.Member(victim).Key
	alive := h.liarNames()
	asVictim := append(slices.Clone(alive), victim) // a view lists its own node
	round := 0
	g.loop(ctx, 400*time.Millisecond, func() {
		now := time.Now().UnixMilli()
		// 1. The victim's ID, signed with the liar's key (a valid
		// signature under a key that is not the victim's).
		sv, _ := cluster.SignView(cluster.View{Cluster: clusterName, Node: victim, Seq: l.nextSeq(), TimeMillis: now, Alive: asVictim}, l.key)
		l.try(ctx, Impersonate, body(sv))
		// 2. The victim's ID and public key, signed with the liar's key.
		sv2, _ := cluster.SignView(cluster.View{Cluster: clusterName, Node: victim, Seq: l.nextSeq(), TimeMillis: now, Alive: asVictim}, l.key)
		sv2.View.Key = victimKey
		l.try(ctx, Impersonate, body(sv2))
		// 3. The liar's own ID with a forged signature.
		sv3 := l.view(alive)
		sv3.Signature = h.random(ed25519.SignatureSize)
		l.try(ctx, Impersonate, body(sv3))
		// 4. The victim's own last view, replayed byte for byte.
		if b := h.byName[victim].rt.last(); b != nil {
			l.try(ctx, Impersonate, b)
		}
		if round++; round%3 != 1 {
			return
		}
		// 5. Impersonating the owner: a configuration of the cluster,
		// version 99, with only the liars as members, signed by the liar
		// as its owner ...
		rogue := h.config.Config
		rogue.Version, rogue.Owner, rogue.Members = 99, l.key.Public().(ed25519.PublicKey), nil
		for _, m := range h.config.Config.Members {
			if slices.Contains(alive, m.ID) {
				rogue.Members = append(rogue.Members, m)
			}
		}
		if sc, err := cluster.Sign(rogue, l.key); err == nil {
			b, _ := json.Marshal(map[string]any{"config": sc, "view": l.view(alive)})
			l.try(ctx, Impersonate, b)
		}
		// 6. ... and the owner's configuration with a member of the
		// liar's added, version raised, the owner's signature kept.
		// The runtime takes the liar's own view and ignores the
		// configuration, which does not verify.
		forged := *h.config
		forged.Config.Version = 99
		forged.Config.Members = append(slices.Clone(forged.Config.Members), cluster.Member{ID: "zz-sybil", Key: l.key.Public().(ed25519.PublicKey)})
		b, _ := json.Marshal(map[string]any{"config": &forged, "view": l.view(alive)})
		l.tryConfig(ctx, Impersonate, b)
	})
}

// tryConfig submits input, which carries a configuration that must not be
// adopted with a view of the liar's own that may be taken, for attack a:
// an answer still naming the cluster's configuration counts as refused
// (config_ignored), one naming another as accepted.
func (l *liar) tryConfig(ctx context.Context, a Attack, input []byte) {
	cert, class := l.submit(ctx, l.ref, input)
	l.h.rep.count(a, "attempt", 1)
	switch class {
	case "ok":
		var o election.TermOutcome
		if json.Unmarshal(cert.Output, &o) == nil && o.ConfigDigest == l.h.config.Config.Digest() {
			l.h.rep.count(a, "runtime:config_ignored", 1)
		} else {
			l.h.rep.count(a, "accepted", 1)
		}
	case "transport":
		if ctx.Err() == nil {
			l.h.rep.count(a, "runtime:transport", 1)
		}
	default:
		l.h.rep.count(a, "runtime:"+class, 1)
	}
}

// expensiveSet is one liar's inputs for the Expensive attack, built before
// it starts: two configurations as JSON, each with as many members as fit
// the function's input limit; as many strangers as fit in a view within
// the input limit, and as many as the function takes in a view of this
// cluster.
type expensiveSet struct {
	rogue, forged  []byte
	members        int
	strangers      []string
	fewerStrangers []string
}

// maxViewBytes is the election function's bound on a view's JSON in a
// cluster of n members (functions/election, maxViewBytes).
func maxViewBytes(n int) int { return 1024 + (2*n+64)*(6*members.MaxIDLen+3) }

// prepareExpensive builds the liar's expensive inputs for an input limit
// of limit bytes.
func (l *liar) prepareExpensive(limit int) (*expensiveSet, error) {
	h := l.h
	build := func(n int) (*expensiveSet, error) {
		pub := l.key.Public().(ed25519.PublicKey)
		mk := func(owner []byte) cluster.Config {
			c := cluster.Config{Cluster: clusterName, Version: 1000, Owner: owner, Policy: cluster.PolicyHighest, LeaseMillis: leaseMs, ViewTTLMillis: viewTTLMs}
			for i := range n {
				c.Members = append(c.Members, cluster.Member{ID: fmt.Sprintf("s%099d", i), Key: pub})
			}
			return c
		}
		// A configuration of the liar's own, validly signed by it.
		rogue, err := cluster.Sign(mk(pub), l.key)
		if err != nil {
			return nil, err
		}
		// The cluster owner's key, a version above the cluster's, and a
		// signature that does not verify: it passes every check but the
		// signature's.
		fc := mk(h.config.Config.Owner)
		fc.Normalize()
		forged := &cluster.Signed{Config: fc, Signature: h.random(ed25519.SignatureSize)}
		set := &expensiveSet{members: n}
		if set.rogue, err = json.Marshal(rogue); err != nil {
			return nil, err
		}
		if set.forged, err = json.Marshal(forged); err != nil {
			return nil, err
		}
		return set, nil
	}
	room := limit - 2<<10 // the view and the envelope
	set, err := build(min(room/170, members.MaxMembers))
	for err == nil && max(len(set.rogue), len(set.forged)) > room {
		set, err = build(set.members * 9 / 10)
	}
	if err != nil {
		return nil, err
	}
	k := min((limit-4<<10)/104, members.MaxMembers-len(h.config.Config.Members)-1)
	for i := range k {
		set.strangers = append(set.strangers, fmt.Sprintf("z%099d", i))
	}
	set.fewerStrangers = set.strangers[:min(k, (maxViewBytes(len(h.config.Config.Members))-1024)/104)]
	return set, nil
}

// envelope is a submission of cfg (JSON) with a view.
func envelope(cfg []byte, sv *cluster.SignedView) []byte {
	v, _ := json.Marshal(sv)
	b := append([]byte(`{"config":`), cfg...)
	b = append(b, `,"view":`...)
	b = append(b, v...)
	return append(b, '}')
}

// expensiveWorker submits the set's inputs in turn, every interval. The
// view listing too many strangers is refused on its size alone, so it is
// signed once; the others carry a fresh view each time.
func (l *liar) expensiveWorker(ctx context.Context, g *group, set *expensiveSet, interval time.Duration) {
	self := []string{l.name}
	tooMany := body(l.view(append(slices.Clone(set.strangers), l.name)))
	fewer := append(slices.Clone(set.fewerStrangers), l.name)
	i := 0
	g.loop(ctx, interval, func() {
		switch i++; i % 4 {
		case 0:
			l.try(ctx, Expensive, envelope(set.rogue, l.view(self)))
		case 1:
			l.tryConfig(ctx, Expensive, envelope(set.forged, l.view(self)))
		case 2:
			l.try(ctx, Expensive, tooMany)
		default:
			l.try(ctx, Expensive, body(l.view(fewer)))
		}
	})
}

// equivocateLoop: rapidly alternating contradictory views, and pairs of
// different views with one seq sent at once.
func (l *liar) equivocateLoop(ctx context.Context, g *group) {
	h := l.h
	all, self := h.members(), []string{l.name}
	flip := false
	round := 0
	g.loop(ctx, 100*time.Millisecond, func() {
		flip = !flip
		alive := self
		if flip {
			alive = all
		}
		l.try(ctx, Equivocate, body(l.view(alive)))
		if round++; round%10 == 0 {
			seq, now := l.nextSeq(), time.Now().UnixMilli()
			a, _ := cluster.SignView(cluster.View{Cluster: clusterName, Node: l.name, Seq: seq, TimeMillis: now, Alive: all}, l.key)
			b, _ := cluster.SignView(cluster.View{Cluster: clusterName, Node: l.name, Seq: seq, TimeMillis: now, Alive: self}, l.key)
			var wg sync.WaitGroup
			for _, sv := range []*cluster.SignedView{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.try(ctx, Equivocate, body(sv))
				}()
			}
			wg.Wait()
		}
	})
}

// corpseLoop: views that include the dead leader (and omit every live
// honest member), the corpse's last view replayed, and views in the
// corpse's name signed with the liar's key, to renew its lease.
func (l *liar) corpseLoop(ctx context.Context, g *group, corpse string, last []byte) {
	h := l.h
	alive := append([]string{corpse}, h.liarNames()...)
	g.loop(ctx, 250*time.Millisecond, func() {
		l.try(ctx, Corpse, body(l.view(alive)))
		if last != nil {
			l.try(ctx, Corpse, last)
		}
		sv, _ := cluster.SignView(cluster.View{Cluster: clusterName, Node: corpse, Seq: l.nextSeq(), TimeMillis: time.Now().UnixMilli(), Alive: alive}, l.key)
		l.try(ctx, Corpse, body(sv))
	})
}

// floodWorker submits views as fast as it can until stop is closed.
func (l *liar) floodWorker(ctx context.Context, g *group) {
	all := l.h.members()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case <-g.stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			l.try(ctx, Flood, body(l.view(all)))
		}
	}()
}

// forge gossips certificates that must not verify to every live honest
// node. It returns how many deliveries it made.
func (l *liar) forge(ctx context.Context) uint64 {
	h := l.h
	nodes := h.live()
	genuine := l.latest(ctx)
	if genuine == nil {
		h.rep.note(Forge, "no genuine certificate to start from")
		return 0
	}
	var o election.TermOutcome
	_ = json.Unmarshal(genuine.Output, &o)
	evil := o
	evil.Term, evil.Leader = o.Term+1000, l.name
	evilOut, _ := json.Marshal(evil)
	clone := func() *election.Certificate {
		c := *genuine
		c.Output = bytes.Clone(genuine.Output)
		c.Receipt.Signature = bytes.Clone(genuine.Receipt.Signature)
		return &c
	}
	var variants []struct {
		name string
		cert *election.Certificate
	}
	add := func(name string, c *election.Certificate) {
		if c != nil {
			variants = append(variants, struct {
				name string
				cert *election.Certificate
			}{name, c})
		}
	}
	// The output says the liar leads a far higher term; the receipt is
	// the genuine one.
	c := clone()
	c.Output = evilOut
	add("output replaced, receipt kept", c)
	// The same, with the receipt's output hash updated.
	c = clone()
	c.Output = evilOut
	c.Receipt.OutputSHA256 = sha256Hex(evilOut)
	add("output replaced, output_sha256 updated", c)
	// The receipt's seq and time moved forward.
	c = clone()
	c.Receipt.Seq += 1000
	c.Receipt.Time = c.Receipt.Time.Add(time.Hour)
	add("receipt seq and time bumped", c)
	// Signed with the liar's own key.
	c = clone()
	c.Output = evilOut
	c.Receipt.OutputSHA256 = sha256Hex(evilOut)
	if err := c.Receipt.Sign(l.key); err == nil {
		add("re-signed with the liar's key", c)
		// ... claiming the runtime's key ID.
		c2 := *c
		c2.Receipt.KeyID = genuine.Receipt.KeyID
		add("re-signed with the liar's key, runtime key ID", &c2)
	}
	// A random signature.
	c = clone()
	c.Receipt.Signature = h.random(ed25519.SignatureSize)
	add("random signature", c)
	// A genuine receipt of another function the liar may run.
	if res, class := l.submit(ctx, l.otherRef, []byte("{}")); class == "ok" {
		add("genuine receipt of another function", res)
	} else {
		h.rep.note(Forge, "could not run the other function: %s", class)
	}
	// A genuine certificate of a cluster the liar owns, on the same
	// function: it names the liar leader of term 1 there.
	if cert := l.ownCluster(ctx); cert != nil {
		add("genuine certificate of another cluster", cert)
	}
	var sent uint64
	for _, v := range variants {
		sent += l.sendCert(nodes, v.cert)
	}
	// Malformed wire forms: a truncated certificate and random bytes.
	wire := genuine.Encode()
	sent += l.sendRaw(nodes, append([]byte{1}, wire[:len(wire)/2]...))
	sent += l.sendRaw(nodes, append([]byte{1}, h.random(300)...))
	names := make([]string, 0, len(variants)+2)
	for _, v := range variants {
		names = append(names, v.name)
	}
	names = append(names, "truncated wire form", "random bytes")
	h.rep.note(Forge, "%d variants to each of %d honest nodes over TCP: %s", len(names), len(nodes), strings.Join(names, "; "))
	h.rep.count(Forge, "attempt", sent)
	return sent
}

// ownCluster configures a cluster of the liar's own (owner: the liar) on
// the same runtime and function and returns its certificate.
func (l *liar) ownCluster(ctx context.Context) *election.Certificate {
	name := clusterName + "-" + l.name
	cfg := cluster.Config{Cluster: name, Version: 1, Owner: l.key.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: leaseMs, ViewTTLMillis: viewTTLMs, Members: []cluster.Member{{ID: l.name, Key: l.key.Public().(ed25519.PublicKey)}}}
	sc, err := cluster.Sign(cfg, l.key)
	if err != nil {
		return nil
	}
	sv, err := cluster.SignView(cluster.View{Cluster: name, Node: l.name, Seq: l.nextSeq(), TimeMillis: time.Now().UnixMilli(), Alive: []string{l.name}}, l.key)
	if err != nil {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"config": sc, "view": sv})
	cert, class := l.submit(ctx, l.ref, b)
	if class != "ok" {
		l.h.rep.note(Forge, "own cluster refused: %s", class)
		return nil
	}
	return cert
}

var errNoCert = errors.New("no certificate captured")

// replay gossips the captured certificates of every term below current to
// every live honest node, and resubmits one of the liar's own old views.
func (l *liar) replay(ctx context.Context, current uint64) (uint64, error) {
	h := l.h
	var certs []*election.Certificate
	var terms []string
	for t := uint64(1); t < current; t++ {
		if c := h.capturedCerts(t); len(c) > 0 {
			certs = append(certs, c...)
			terms = append(terms, strconv.FormatUint(t, 10))
		}
	}
	if len(certs) == 0 {
		return 0, errNoCert
	}
	nodes := h.live()
	var sent uint64
	for _, c := range certs {
		sent += l.sendCert(nodes, c)
	}
	h.rep.count(Replay, "attempt", sent)
	h.rep.note(Replay, "%d genuine certificates of term(s) %s (distinct receipts) to each of %d honest nodes, once they held term %d", len(certs), strings.Join(terms, ","), len(nodes), current)
	l.mu.Lock()
	old := l.oldView
	l.mu.Unlock()
	if old != nil {
		l.try(ctx, Replay, old)
		h.rep.note(Replay, "one of its own earlier views resubmitted to the runtime")
	}
	return sent, nil
}

// equivocateCerts gossips genuine certificates of two terms to the two
// halves of the honest nodes, then the other way round, rounds times.
// It returns deliveries, and how many carried the old term.
func (l *liar) equivocateCerts(oldTerm, newTerm uint64, rounds int) (sent, old uint64) {
	h := l.h
	olds, news := h.capturedCerts(oldTerm), h.capturedCerts(newTerm)
	if len(olds) == 0 || len(news) == 0 {
		h.rep.note(Equivocate, "no certificates of terms %d and %d captured", oldTerm, newTerm)
		return 0, 0
	}
	nodes := h.live()
	for r := range rounds {
		perm := make([]*honestNode, len(nodes))
		copy(perm, nodes)
		for i := len(perm) - 1; i > 0; i-- {
			j := h.intN(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		half := len(perm) / 2
		a, b := perm[:half], perm[half:]
		if r%2 == 1 {
			a, b = b, a
		}
		n := l.sendCert(a, olds[r%len(olds)])
		sent += n
		old += n
		sent += l.sendCert(b, news[r%len(news)])
	}
	h.rep.count(Equivocate, "attempt", sent)
	h.rep.note(Equivocate, "%d rounds: term %d to one half of the honest nodes and term %d to the other, halves drawn anew each round", rounds, oldTerm, newTerm)
	return sent, old
}

func sha256Hex(b []byte) string { return receipt.SHA256Hex(b) }

// squat binds the cluster's name in the runtime to a configuration of the
// liar's own (the liar as owner and only member) before the real owner's
// configuration arrives, and returns the certificate that names it leader.
func (l *liar) squat(ctx context.Context) (*election.Certificate, string) {
	cfg := cluster.Config{Cluster: clusterName, Version: 1, Owner: l.key.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: leaseMs, ViewTTLMillis: viewTTLMs, Members: []cluster.Member{{ID: l.name, Key: l.key.Public().(ed25519.PublicKey)}}}
	sc, err := cluster.Sign(cfg, l.key)
	if err != nil {
		return nil, err.Error()
	}
	b, _ := json.Marshal(map[string]any{"config": sc, "view": l.view([]string{l.name})})
	return l.submit(ctx, l.ref, b)
}
