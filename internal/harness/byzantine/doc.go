// Package byzantine runs honest vouch nodes next to Byzantine insiders and
// checks that the insiders cannot break the election's guarantees.
//
// Run starts, in one process and over real loopback sockets, a runtime
// (internal/harness/enclavetest) with the built-in "election" function, N honest
// nodes in signed-views mode (package node) and f liars: configured
// members with their own keys and their own function tokens, which attack
// the runtime with views and the honest nodes with gossip (see Attack).
// Every function token is its own rate-limit bucket in the runtime, so a
// flooding liar only exhausts its own.
//
// The liars do not join the gossip pool: honest nodes never see them alive,
// so they can never be elected. They only use memberlist as a transport to
// inject messages, and the runtime as any member may.
//
// The run goes through phases:
//
//  1. steady: the honest leader is alive; liars omit it from their views,
//     impersonate members, equivocate, forge certificates and send
//     garbage. The leader must keep its term.
//  2. expensive: liars send, at their tokens' rate, the inputs that cost
//     the serialized election function most, as large as its input limit
//     allows. The leader must keep its term and keep acting.
//  3. flood: liars flood the runtime with their own tokens. They must get
//     429s; honest nodes must keep submitting and keep a leader.
//  4. corpse: the honest leader is killed; liars keep vouching for it and
//     try to renew its lease. The survivors must move to a new term with a
//     live leader within Options.FailoverBound.
//  5. after: liars replay certificates of the old term and gossip
//     contradictory (genuine, different-term) certificates.
//  6. converge: the attacks stop; the honest nodes must agree on one
//     leader and term within Options.ConvergeBound.
//
// Then every certificate an honest node accepted (its event log) is
// verified again offline, the leaders per term are compared, the logs are
// run through the chaos checker (chaos.Check: among others, every node's
// terms only increase), and the runtime must have taken none of the
// impersonation, forgery and replay submissions.
//
// Properties bounded by wall-clock time (how long the leader may go
// without acting, how fast a failover or convergence completes) are
// marked Timing in the report: the tests enforce them only with the chaos
// build tag, so that the default run holds on a loaded machine; the
// safety properties are enforced in every run.
//
// TestSquatting checks that a liar that binds the cluster's name in the
// runtime to its own configuration first leads no honest node. The
// experiments in experiments_test.go (BYZ_EXPERIMENTS=1) run the harness
// where properties are expected to suffer: a token shared by all members,
// and the runtime's default rate limit.
// docs/BENCHMARKS.md, "Byzantine harness", has their results.
package byzantine
