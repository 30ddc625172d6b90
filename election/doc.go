// Package election is the deterministic core of a vouch node: which leader
// certificate a node holds, which it rejects and why, and when it must ask
// the runtime for a new one.
//
// The core does no I/O: no sockets, no clocks, no goroutines, no
// randomness. The node (package node) feeds it inputs — its membership view,
// certificates received from peers, certificates returned by the runtime,
// and the current time — and carries out the Actions each input returns, in
// this order (see docs/ELECTION.md):
//
//  1. Verify before you accept: a certificate counts only if its receipt
//     signature verifies under the runtime identity the node attested, the
//     receipt names the expected function and checksum, the output hash
//     matches, the input hash matches the canonical request for the
//     output's members, and the output is well formed.
//  2. Order by seq: a certificate replaces the held one only if its receipt
//     seq is higher. The seq is the fencing token a leader hands to storage.
//  3. Match the view: a certificate is accepted only if its member set is
//     the node's own view. One whose members differ waits (pending) for the
//     view to converge to it, for at most Config.PendingFor, and is then
//     rejected.
//  4. Broadcast what you accept, so that peers learn it epidemically; ask
//     the runtime for a new certificate (Actions.Elect) when the held one
//     does not match the view.
//  5. Act on leadership only after accepting: Actions.LeaderChanged tells
//     the node to start or stop leading.
package election
