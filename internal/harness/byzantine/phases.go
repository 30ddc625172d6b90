package byzantine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/harness/chaos"
	"github.com/vouch-dev/vouch/node"
)

// steady: the honest leader is alive while the liars omit it from their
// views, impersonate it, equivocate, forge certificates and send garbage.
// The leader must keep its term.
func (h *harness) steady(ctx context.Context) error {
	d := h.o.Duration * 4 / 10
	leader, term := h.rep.InitialLeader, h.rep.InitialTerm
	start := time.Now()
	g := newGroup()
	defer g.halt()
	if h.enabled(Omit) {
		for _, l := range h.liars {
			l.omitLoop(ctx, g, leader)
		}
		h.rep.note(Omit, "every liar submits, every 250 ms (the honest view interval), a valid view of its own listing every member but the leader %s", leader)
	}
	if h.enabled(Impersonate) {
		h.liars[0].impersonateLoop(ctx, g, leader)
		h.rep.note(Impersonate, "every 400 ms, views listing only the victim and the liars: in the leader %s's name signed with the liar's key; the same with %s's public key in the view; the liar's own with a random signature; %s's last view replayed byte for byte; every third round also a configuration of the cluster signed by the liar as owner (only the liars as members, version 99) and the owner's configuration with a sybil member added and the version raised, signature kept", leader, leader, leader)
	}
	if h.enabled(Equivocate) {
		h.liars[len(h.liars)-1].equivocateLoop(ctx, g)
		h.rep.note(Equivocate, "views alternating every 100 ms between all members and only itself; every 10th round, two different views with one seq sent at once")
	}
	// Watch for the first sign of a new term.
	var evicted time.Duration
	var evictedBy string
	g.loop(ctx, 10*time.Millisecond, func() {
		if evicted != 0 {
			return
		}
		if rt, rl := h.runtimeHeld(); rt != term {
			evicted, evictedBy = time.Since(start), rl
		}
	})
	if h.enabled(Poison) {
		h.liars[0].poisonLoop(ctx, g, leader)
		h.rep.note(Poison, "every 30 ms, a memberlist dead message about the leader %s (incarnation raised by 1024 each time, From another honest node) over UDP to every other honest node", leader)
	}
	if h.enabled(Replay) {
		// Capture a few genuine certificates of this term (distinct
		// receipts) with harmless views; not the attack itself, so not
		// counted.
		l := h.liars[0]
		for range 3 {
			l.submit(ctx, l.ref, body(l.view([]string{l.name})))
		}
	}
	if h.enabled(Forge) {
		h.measure(ctx, Forge, func() (uint64, uint64) {
			n := h.liars[0].forge(ctx)
			return n, n
		})
	}
	if h.enabled(Garbage) {
		h.measure(ctx, Garbage, func() (uint64, uint64) {
			n := h.liars[len(h.liars)-1].garbage()
			// What reaches the nodes' decoders: 25 UDP and 6 TCP user
			// messages per node.
			return n, uint64(31 * len(h.live()))
		})
	}
	pause(ctx, nil, time.Until(start.Add(d)))
	g.halt()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h.rep.SteadyHeld = time.Since(start)

	// The leader kept its term: every honest node still holds it, the
	// runtime issued no later term, and the leader still acts (its lease
	// may lapse for a moment under load: wait for it).
	var bad []string
	for _, hn := range h.live() {
		if l := hn.n.Leader(); l.Seq != term || l.Leader != leader {
			bad = append(bad, fmt.Sprintf("%s holds term %d led by %s", hn.name, l.Seq, l.Leader))
		}
	}
	if rt, rl := h.runtimeHeld(); rt != term {
		bad = append(bad, fmt.Sprintf("the runtime issued term %d led by %s", rt, rl))
		if evicted != 0 {
			bad = append(bad, fmt.Sprintf("the first new term (leader %s) came %v into the attacks", evictedBy, evicted.Round(time.Millisecond)))
		}
	}
	if len(bad) == 0 {
		if _, _, _, err := h.waitAgree(ctx, term-1, 3*time.Second); err != nil {
			bad = append(bad, err.Error())
		}
	}
	// Timing: the runtime also replaces a leader whose own views come
	// late (3 × lease without a renewal) or whose supporters' views go
	// stale, which a loaded machine causes without any liar's help.
	h.rep.timing("a live leader is not evicted", len(bad) == 0, "%s led term %d through %v of attacks (%s) on all %d honest nodes%s",
		leader, term, h.rep.SteadyHeld.Round(100*time.Millisecond), h.steadyAttacks(), len(h.live()), problems(bad))
	return nil
}

func (h *harness) steadyAttacks() string {
	var names []string
	for _, a := range []Attack{Omit, Impersonate, Equivocate, Forge, Garbage, Poison} {
		if h.enabled(a) {
			names = append(names, a.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func problems(bad []string) string {
	if len(bad) == 0 {
		return ""
	}
	return "; but " + strings.Join(bad, "; ")
}

// expensive: the liars send the costliest inputs the election function
// takes, as fast as their tokens allow. The function runs one call at a
// time, so if these were costly the honest submissions would queue behind
// them, the leader's renewals would come late, and it would stop acting.
// The leader must keep its term and keep acting.
func (h *harness) expensive(ctx context.Context) error {
	if !h.enabled(Expensive) {
		return nil
	}
	d := h.o.Duration * 2 / 10
	leader, term, _, err := h.waitAgree(ctx, 0, max(h.o.ConvergeBound, livenessBound))
	if err != nil {
		h.rep.timing("expensive submissions do not stop the leader", false, "no agreed leader to start from: %v", err)
		return nil
	}
	sets := make([]*expensiveSet, len(h.liars))
	for i, l := range h.liars {
		if sets[i], err = l.prepareExpensive(h.maxInput); err != nil {
			return fmt.Errorf("preparing expensive inputs: %w", err)
		}
	}
	for _, hn := range h.live() {
		hn.rt.window()
	}
	workers := h.o.FloodWorkers
	// Each liar submits at its token's rate, spread over its workers.
	interval := time.Duration(float64(workers) * float64(time.Second) / h.o.RateLimit)
	g := newGroup()
	defer g.halt()
	start := time.Now()
	for i, l := range h.liars {
		for range workers {
			l.expensiveWorker(ctx, g, sets[i], interval)
		}
	}
	// How long the leader did not act, polled every 10 ms.
	var idle, longest, stretch time.Duration
	last := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		pause(ctx, nil, 10*time.Millisecond)
		now := time.Now()
		if hn := h.byName[leader]; hn == nil || !hn.n.Leader().Self {
			idle += now.Sub(last)
			stretch += now.Sub(last)
			longest = max(longest, stretch)
		} else {
			stretch = 0
		}
		last = now
	}
	took := time.Since(start)
	g.halt()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var bad []string
	var slowest time.Duration
	for _, hn := range h.live() {
		s := hn.rt.window()
		slowest = max(slowest, s.MaxLatency)
	}
	if rt, rl := h.runtimeHeld(); rt != term {
		bad = append(bad, fmt.Sprintf("the runtime moved to term %d led by %s", rt, rl))
	}
	// The leader may miss a renewal under load, but not for long: at most
	// a quarter of the phase, and never for more than two leases at once.
	if idle > took/4 || longest > 2*leaseMs*time.Millisecond {
		bad = append(bad, fmt.Sprintf("%s did not act for %v of %v (longest stretch %v)", leader, idle.Round(time.Millisecond), took.Round(time.Millisecond), longest.Round(time.Millisecond)))
	}
	ar := h.rep.Attack(Expensive)
	h.rep.mu.Lock()
	attempts, adopted := ar.Attempts, ar.RuntimeRejected["config_ignored"]
	h.rep.mu.Unlock()
	h.rep.note(Expensive, "%d liars × %d workers, one submission per %v each (the token's rate): in turn a configuration of the liar's own (%d members, %d bytes), one under the owner's key with version 1000 and a random signature (%d bytes), a view listing %d strangers and one listing %d, for %v",
		len(h.liars), workers, interval, sets[0].members, len(sets[0].rogue), len(sets[0].forged), len(sets[0].strangers), len(sets[0].fewerStrangers), took.Round(100*time.Millisecond))
	h.rep.timing("expensive submissions do not stop the leader", len(bad) == 0,
		"%s kept term %d through %d expensive submissions (%d forged configurations ignored); it did not act for %v of %v (longest %v); slowest honest submission %v%s",
		leader, term, attempts, adopted, idle.Round(time.Millisecond), took.Round(time.Millisecond), longest.Round(time.Millisecond), slowest.Round(time.Millisecond), problems(bad))
	return nil
}

// flood: the liars flood the runtime, each with its own token.
func (h *harness) flood(ctx context.Context) error {
	if !h.enabled(Flood) {
		return nil
	}
	d := h.o.Duration * 2 / 10
	workers := h.o.FloodWorkers
	for _, hn := range h.live() {
		hn.rt.window()
	}
	termBefore, _ := h.runtimeHeld()
	g := newGroup()
	defer g.halt()
	began := time.Now()
	for _, l := range h.liars {
		for range workers {
			l.floodWorker(ctx, g)
		}
	}
	pause(ctx, nil, d)
	// While the flood goes on, the honest nodes must hold a leader.
	leader, term, _, err := h.waitAgree(ctx, 0, h.o.FailoverBound)
	g.halt()
	flooded := time.Since(began)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var honestOK, honest429 uint64
	var gap, slowest time.Duration
	var bad, slow []string
	for _, hn := range h.live() {
		s := hn.rt.window()
		h.rep.FloodStats = append(h.rep.FloodStats, s)
		honestOK += s.OK
		honest429 += s.RateLimited
		gap = max(gap, s.MaxGap)
		slowest = max(slowest, s.MaxLatency)
		if s.OK == 0 {
			slow = append(slow, hn.name+" had no view taken")
		}
	}
	ar := h.rep.Attack(Flood)
	h.rep.mu.Lock()
	limited, attempts := ar.RuntimeRejected["rate_limited"], ar.Attempts
	h.rep.mu.Unlock()
	// A token's bucket holds 2 s of its rate (the runtime's burst) and
	// refills at the rate: a liar that sent more than that in the phase
	// must have got 429s. One that could not send that much (a loaded
	// machine, a slow function) proves nothing either way.
	budget := h.o.RateLimit * (2 + flooded.Seconds()) * float64(len(h.liars))
	switch {
	case limited == 0 && float64(attempts) > budget:
		bad = append(bad, fmt.Sprintf("the runtime never answered the flooders 429, though they sent %d submissions, over their tokens' %.0f", attempts, budget))
	case limited == 0:
		slow = append(slow, fmt.Sprintf("the flooders sent only %d submissions, within their tokens' %.0f: none had to be refused", attempts, budget))
	}
	if honest429 > 0 {
		bad = append(bad, fmt.Sprintf("honest nodes got %d 429s", honest429))
	}
	if err != nil {
		slow = append(slow, err.Error())
	}
	h.rep.note(Flood, "%d liars × %d workers, each submitting valid views of its own back to back with its own token, for %v", len(h.liars), workers, d)
	moved := ""
	if term != termBefore {
		moved = fmt.Sprintf(" (the term moved from %d)", termBefore)
	}
	h.rep.property("flooding is contained", len(bad) == 0, "%d of %d flood submissions answered 429; honest nodes got %d 429s%s",
		limited, attempts, honest429, problems(bad))
	h.rep.timing("honest nodes keep a leader during a flood", len(slow) == 0, "honest nodes had %d views taken, longest gap %v, slowest submission %v; leader %s, term %d%s within %v%s",
		honestOK, gap.Round(time.Millisecond), slowest.Round(time.Millisecond), leader, term, moved, h.o.FailoverBound, problems(slow))
	return nil
}

// corpse: the honest leader is killed; the liars vouch for it. The
// survivors must move to a new term with a live leader.
func (h *harness) corpse(ctx context.Context) error {
	leader, term, _, err := h.waitAgree(ctx, 0, max(h.o.ConvergeBound, livenessBound))
	if err != nil {
		h.rep.property("a dead leader is replaced", false, "no agreed leader to kill: %v", err)
		return nil
	}
	victim := h.byName[leader]
	last := victim.rt.last()
	if len(h.capturedCerts(term)) == 0 {
		l := h.liars[0]
		l.submit(ctx, l.ref, body(l.view([]string{l.name})))
	}
	killed := time.Now()
	victim.n.Kill()
	victim.dead = true
	h.killedTerm = term
	h.logf("killed leader %s of term %d", leader, term)
	if h.enabled(Corpse) {
		h.corpseGroup = newGroup()
		for i, l := range h.liars {
			replay := last
			if i > 0 {
				replay = nil
			}
			l.corpseLoop(ctx, h.corpseGroup, leader, replay)
		}
		h.rep.note(Corpse, "after %s (leader of term %d) was killed, every liar submits every 250 ms a view listing only %s and the liars, and a view in %s's name signed with its own key (to renew the lease); one also replays %s's last view",
			leader, term, leader, leader, leader)
	}
	// Whether it happens at all is checked with a generous bound; how
	// fast, against FailoverBound, is a timing property.
	next, nterm, _, err := h.waitAgree(ctx, term, max(h.o.FailoverBound, livenessBound))
	took := time.Since(killed)
	if err != nil {
		h.rep.property("a dead leader is replaced", false, "killed %s (term %d): %v", leader, term, err)
		return nil
	}
	h.rep.FailoverLeader, h.rep.FailoverTerm, h.rep.Failover = next, nterm, took
	h.logf("failover to %s, term %d, in %v", next, nterm, took.Round(time.Millisecond))
	h.rep.property("a dead leader is replaced", next != leader,
		"killed %s (term %d); all %d survivors hold term %d led by %s, acting, %v later",
		leader, term, len(h.live()), nterm, next, took.Round(time.Millisecond))
	h.rep.timing("failover within its bound", took <= h.o.FailoverBound, "%v (bound %v)", took.Round(time.Millisecond), h.o.FailoverBound)
	return nil
}

// after: the liars replay the old term's certificates and gossip genuine
// certificates of two terms to different halves of the honest nodes.
func (h *harness) after(ctx context.Context) error {
	d := h.o.Duration * 2 / 10
	start := time.Now()
	current := h.rep.FailoverTerm
	if current == 0 {
		return nil
	}
	// Genuine certificates of the current term, with distinct receipts.
	l := h.liars[0]
	for range 2 {
		l.submit(ctx, l.ref, body(l.view([]string{l.name})))
	}
	if h.enabled(Replay) {
		h.measure(ctx, Replay, func() (uint64, uint64) {
			n, err := l.replay(ctx, current)
			if err != nil {
				h.rep.note(Replay, "nothing to replay: %v", err)
			}
			return n, n
		})
	}
	if h.enabled(Equivocate) {
		h.measure(ctx, Equivocate, func() (uint64, uint64) {
			return h.liars[len(h.liars)-1].equivocateCerts(h.killedTerm, current, 10)
		})
	}
	pause(ctx, nil, time.Until(start.Add(d)))
	return ctx.Err()
}

// converge: the attacks stop; the honest nodes must agree.
func (h *harness) converge(ctx context.Context) error {
	h.corpseGroup.halt()
	leader, term, took, err := h.waitAgree(ctx, 0, max(h.o.ConvergeBound, livenessBound))
	if err != nil {
		h.rep.property("convergence after the attacks stop", false, "%v", err)
		return nil
	}
	h.rep.FinalLeader, h.rep.FinalTerm, h.rep.Convergence = leader, term, took
	h.rep.property("convergence after the attacks stop", true, "all %d live honest nodes on leader %s, term %d, acting, %v after the attacks stopped",
		len(h.live()), leader, term, took.Round(time.Millisecond))
	h.rep.timing("convergence within its bound", took <= h.o.ConvergeBound, "%v (bound %v)", took.Round(time.Millisecond), h.o.ConvergeBound)
	return nil
}

// finish stops the nodes and checks their event logs offline.
func (h *harness) finish() {
	for _, hn := range h.honest {
		hn.n.Kill()
	}
	type entry struct {
		node string
		ev   node.Event
	}
	var accepted, acted []entry
	for _, hn := range h.honest {
		evs, err := node.ReadEvents(bytes.NewReader(hn.events.Bytes()))
		if err != nil {
			h.rep.property("event logs are readable", false, "%s: %v", hn.name, err)
		}
		for _, ev := range evs {
			switch ev.Event {
			case "cert_accepted":
				accepted = append(accepted, entry{hn.name, ev})
			case "leader_acted":
				acted = append(acted, entry{hn.name, ev})
			}
		}
	}
	h.rep.CertificatesChecked, h.rep.Actions = len(accepted), len(acted)

	// 1. Every accepted certificate verifies offline, says what the node
	// logged, and was issued under the cluster's configuration.
	digest := h.config.Config.Digest()
	var invalid []string
	type held struct {
		leader, node string
		output       []byte
	}
	byTerm := map[uint64]held{}
	var split []string
	accTerms := map[string]bool{}
	for _, e := range accepted {
		cert, err := election.DecodeCertificate(e.ev.Cert)
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("%s term %d: %v", e.node, e.ev.Term, err))
			continue
		}
		o, rej := election.VerifyTerm(cert, h.trust)
		switch {
		case rej != nil:
			invalid = append(invalid, fmt.Sprintf("%s term %d: %v", e.node, e.ev.Term, rej))
			continue
		case o.Term != e.ev.Term || o.Leader != e.ev.Leader:
			invalid = append(invalid, fmt.Sprintf("%s logged term %d leader %s for a certificate of term %d leader %s", e.node, e.ev.Term, e.ev.Leader, o.Term, o.Leader))
		case o.ConfigDigest != digest:
			invalid = append(invalid, fmt.Sprintf("%s term %d: issued under configuration %.12s…, not the cluster's %.12s…", e.node, o.Term, o.ConfigDigest, digest))
		}
		accTerms[fmt.Sprintf("%s@%d@%s", e.node, o.Term, o.Leader)] = true
		// 2. One leader, and one certificate output, per term.
		if p, ok := byTerm[o.Term]; ok {
			if p.leader != o.Leader || !bytes.Equal(p.output, cert.Output) {
				split = append(split, fmt.Sprintf("term %d: %s accepted leader %s, %s accepted %s", o.Term, p.node, p.leader, e.node, o.Leader))
			}
		} else {
			byTerm[o.Term] = held{o.Leader, e.node, cert.Output}
		}
	}
	h.rep.property("no honest node accepts an invalid certificate", len(invalid) == 0 && len(accepted) > 0,
		"%d accepted certificates re-verified offline (runtime key, function, checksum, cluster, configuration digest)%s", len(accepted), problems(invalid))
	h.rep.property("one leader per term (accepted)", len(split) == 0, "%d terms, each accepted with one leader and one output by every node that accepted it%s", len(byTerm), problems(split))

	// 3. One acting leader per term, and only one that accepted a
	// certificate naming it for that term.
	actor := map[uint64]string{}
	var twice []string
	for _, e := range acted {
		if p, ok := actor[e.ev.Seq]; ok && p != e.node {
			twice = append(twice, fmt.Sprintf("term %d: %s and %s both acted", e.ev.Seq, p, e.node))
		}
		actor[e.ev.Seq] = e.node
		if !accTerms[fmt.Sprintf("%s@%d@%s", e.node, e.ev.Seq, e.node)] {
			twice = append(twice, fmt.Sprintf("%s acted in term %d without accepting a certificate naming it", e.node, e.ev.Seq))
		}
	}
	h.rep.property("one acting leader per term", len(twice) == 0 && len(acted) > 0, "%d leader_acted events over %d terms%s", len(acted), len(actor), problems(twice))

	// 4. No two honest nodes act at the same time (the leases).
	deadline := time.Now().Add(3 * time.Second)
	for {
		h.actMu.Lock()
		n := len(h.acting)
		h.actMu.Unlock()
		if n >= len(acted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ov, n := h.overlaps()
	h.rep.property("no two honest nodes lead at once", len(ov) == 0, "%d stretches of leadership (OnStartedLeading until its context ends) compared%s", n, problems(ov))

	// 5. The chaos checker's rules over the same logs: among them, every
	// node accepted strictly increasing terms (a replayed older term
	// accepted shows here) and acted only on the term it held.
	var logs []chaos.Log
	for _, hn := range h.honest {
		logs = append(logs, chaos.Log{Node: hn.name, Data: hn.events.Bytes()})
	}
	cr := chaos.Check(logs, chaos.Trust{Keys: []ed25519.PublicKey{h.trust.Key}, FunctionID: h.trust.FunctionID, Checksum: h.trust.Checksum, Cluster: h.trust.Cluster, Terms: true})
	h.rep.property("event logs pass the chaos checker", cr.OK() && cr.Accepted > 0, "%d events, %d accepted certificates over %d terms, %d acted: terms increase on every node, one certificate per term, actions only on the held term%s",
		cr.Events, cr.Accepted, cr.Elections, cr.Acted, problems(cr.Violations))

	// 6. Nothing the impersonation, forgery and replay attacks sent to
	// the runtime was taken.
	var took []string
	for _, a := range []Attack{Impersonate, Forge, Replay} {
		if ar := h.rep.Attack(a); ar != nil && ar.RuntimeAccepted > 0 {
			took = append(took, fmt.Sprintf("the runtime took %d %s submissions", ar.RuntimeAccepted, a))
		}
	}
	h.rep.property("the runtime refuses impersonation, forgery and replay", len(took) == 0, "every view in another member's name or with a bad signature, every replayed view and every forged configuration refused%s", problems(took))
}
