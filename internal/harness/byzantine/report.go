package byzantine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Attack is one adversarial behaviour of the liars.
type Attack int

// The attacks. Each can be enabled on its own (Options.Attacks).
const (
	// Forge gossips certificates that do not verify: tampered outputs and
	// receipts, receipts signed with the liar's key, random signatures, a
	// genuine receipt of another function, a genuine certificate of
	// another cluster, malformed wire forms.
	Forge Attack = iota + 1
	// Replay captures genuine certificates of a term, waits for a newer
	// term and gossips them again; it also resubmits its own old views.
	Replay
	// Omit submits views that leave out the live leader.
	Omit
	// Corpse submits views that include the killed leader, replays the
	// corpse's last view and signs views in the corpse's name to renew its
	// lease.
	Corpse
	// Impersonate submits views in an honest member's name with the
	// liar's key, views with forged signatures, and replays of honest
	// members' views.
	Impersonate
	// Equivocate alternates contradictory views rapidly, sends two
	// different views with one seq at once, and gossips genuine
	// certificates of different terms to different peers.
	Equivocate
	// Flood submits views as fast as it can, concurrently, with the
	// liar's own token.
	Flood
	// Garbage sends random and malformed packets and streams to the honest
	// nodes' gossip ports, over UDP and TCP.
	Garbage
	// Poison attacks the failure detector rather than the election: the
	// liar gossips memberlist "dead" messages about the live leader to
	// the other honest nodes, with ever higher incarnation numbers, so
	// that their views drop it. Nodes defeat it by dropping a member from
	// their view only after their own direct ping fails.
	Poison
	// Expensive submits, as fast as its token allows, the inputs that cost
	// the serialized election function the most, each as large as the
	// function's input limit allows: configurations of the liar's own
	// (the liar as owner), configurations under the cluster owner's key
	// with a raised version and a signature that does not verify, and
	// views of its own listing thousands of strangers.
	Expensive
)

// AllAttacks lists every attack.
var AllAttacks = []Attack{Forge, Replay, Omit, Corpse, Impersonate, Equivocate, Flood, Garbage, Poison, Expensive}

var attackNames = map[Attack]string{
	Forge: "forge", Replay: "replay", Omit: "omit-leader", Corpse: "keep-corpse",
	Impersonate: "impersonate", Equivocate: "equivocate", Flood: "flood", Garbage: "garbage", Poison: "poison-gossip",
	Expensive: "expensive-input",
}

func (a Attack) String() string {
	if s, ok := attackNames[a]; ok {
		return s
	}
	return fmt.Sprintf("attack(%d)", int(a))
}

// AttackReport counts what one attack did and what became of it.
type AttackReport struct {
	Attack Attack
	// Attempts is how many messages the liars sent: submissions to the
	// runtime, and certificates, packets or streams times recipients.
	Attempts uint64
	// RuntimeAccepted counts submissions the runtime took: well-formed
	// views of the liar's own, which it may send but which decide nothing
	// against an honest majority. It must stay 0 for impersonate, forge
	// and replay, whose submissions are all invalid; a submission whose
	// configuration the runtime ignored while taking the liar's own view
	// counts as refused (config_ignored), not taken.
	RuntimeAccepted uint64
	// RuntimeRejected counts submissions the runtime refused, by reason
	// (rate_limited is an HTTP 429).
	RuntimeRejected map[string]uint64
	// NodeRejected counts what the honest nodes refused or dropped, by
	// reason (the nodes' own counters, summed over them, during the
	// attack's bursts); "uncounted" is what no counter saw: copies or
	// renewals of the certificate a node already held, and packets that
	// memberlist discards without a log line the node counts.
	NodeRejected map[string]uint64
	// Notes say what the attack did exactly.
	Notes []string
}

// Property is one checked guarantee.
type Property struct {
	Name   string
	OK     bool
	Detail string
	// Timing marks a property bounded by wall-clock time (how long a
	// leader may go without acting, how soon a failover completes): it
	// holds on a machine with headroom, and a loaded one can miss it
	// without any guarantee being broken. The tests enforce it only with
	// the chaos build tag.
	Timing bool
}

// SubmitStats are an honest node's submissions during a window.
type SubmitStats struct {
	Node        string
	OK          uint64
	RateLimited uint64
	// LeaseRefused counts answers that refused to renew the lease (the
	// runtime answered; a majority did not see the node).
	LeaseRefused uint64
	Failed       uint64
	// MaxGap is the longest time between two successful submissions;
	// MaxLatency the longest submission.
	MaxGap, MaxLatency time.Duration
}

// Report is the outcome of a run.
type Report struct {
	Options Options
	Honest  []string
	Liars   []string
	// Majority is how many members' views must include a member for it to
	// count as alive: a strict majority of all members.
	Majority int

	Attacks    []*AttackReport
	Properties []Property

	// The run's milestones.
	InitialLeader                string
	InitialTerm                  uint64
	SteadyHeld                   time.Duration
	FailoverLeader               string
	FailoverTerm                 uint64
	Failover                     time.Duration
	FinalLeader                  string
	FinalTerm                    uint64
	Convergence                  time.Duration
	FloodStats                   []SubmitStats
	CertificatesChecked, Actions int
	Wall                         time.Duration

	mu sync.Mutex
}

// OK reports whether every property held.
func (r *Report) OK() bool { return len(r.Violations()) == 0 }

// Violations lists the properties that did not hold.
func (r *Report) Violations() []string {
	return append(r.SafetyViolations(), r.TimingViolations()...)
}

// SafetyViolations lists the properties that did not hold and do not
// depend on the machine's speed.
func (r *Report) SafetyViolations() []string { return r.violations(false) }

// TimingViolations lists the wall-clock bounded properties that did not
// hold (Property.Timing).
func (r *Report) TimingViolations() []string { return r.violations(true) }

func (r *Report) violations(timing bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.Properties {
		if !p.OK && p.Timing == timing {
			out = append(out, p.Name+": "+p.Detail)
		}
	}
	return out
}

// Attack returns the report of attack a, or nil if it did not run.
func (r *Report) Attack(a Attack) *AttackReport {
	for _, ar := range r.Attacks {
		if ar.Attack == a {
			return ar
		}
	}
	return nil
}

func (r *Report) property(name string, ok bool, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Properties = append(r.Properties, Property{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// timing records a wall-clock bounded property (Property.Timing).
func (r *Report) timing(name string, ok bool, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Properties = append(r.Properties, Property{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...), Timing: true})
}

// count adds n to a counter of attack a. kind is "attempt", "accepted",
// "runtime:<reason>" or "node:<reason>".
func (r *Report) count(a Attack, kind string, n uint64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ar := r.Attack(a)
	if ar == nil {
		return
	}
	switch {
	case kind == "attempt":
		ar.Attempts += n
	case kind == "accepted":
		ar.RuntimeAccepted += n
	case strings.HasPrefix(kind, "runtime:"):
		ar.RuntimeRejected[kind[len("runtime:"):]] += n
	case strings.HasPrefix(kind, "node:"):
		ar.NodeRejected[kind[len("node:"):]] += n
	}
}

func (r *Report) note(a Attack, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ar := r.Attack(a); ar != nil {
		ar.Notes = append(ar.Notes, fmt.Sprintf(format, args...))
	}
}

// String renders the report as Markdown tables.
func (r *Report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	tokens := "one token per member"
	if r.Options.SharedToken {
		tokens = "ONE TOKEN SHARED by all members"
	}
	fmt.Fprintf(&b, "%d honest (%s) + %d liars (%s) = %d members, alive needs %d views; policy %s; runtime limit %.0f runs/s per token, %s; seed %d; wall %v\n\n",
		len(r.Honest), strings.Join(r.Honest, " "), len(r.Liars), strings.Join(r.Liars, " "), len(r.Honest)+len(r.Liars), r.Majority,
		r.Options.Policy, r.Options.RateLimit, tokens, r.Options.Seed, r.Wall.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "| attack | attempts | runtime took (harmless) | runtime refused | honest nodes refused |\n|---|---:|---:|---|---|\n")
	for _, ar := range r.Attacks {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s |\n", ar.Attack, ar.Attempts, ar.RuntimeAccepted, counts(ar.RuntimeRejected), counts(ar.NodeRejected))
	}
	b.WriteString("\n| property | result | detail |\n|---|---|---|\n")
	for _, p := range r.Properties {
		res := "ok"
		switch {
		case !p.OK && p.Timing:
			res = "**MISSED** (timing)"
		case !p.OK:
			res = "**VIOLATED**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", p.Name, res, p.Detail)
	}
	if len(r.FloodStats) > 0 {
		b.WriteString("\n| honest node during flood | views taken | 429 | lease refused | failed | longest gap between taken views | slowest submission |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.FloodStats {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %v | %v |\n", s.Node, s.OK, s.RateLimited, s.LeaseRefused, s.Failed, s.MaxGap.Round(time.Millisecond), s.MaxLatency.Round(time.Millisecond))
		}
	}
	return b.String()
}

// Notes renders what each attack did, one line per note.
func (r *Report) Notes() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ar := range r.Attacks {
		for _, n := range ar.Notes {
			fmt.Fprintf(&b, "- %s: %s\n", ar.Attack, n)
		}
	}
	return b.String()
}

func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "–"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}
