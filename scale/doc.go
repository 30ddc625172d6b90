// Package scale measures vouch clusters as they grow: failover time against
// hashicorp/raft, certificate dissemination against a gossip model, the
// cost of an idle cluster, messages per election, and false positives of
// failure detection.
//
// Everything runs in one process on loopback: a runtime (enclave server
// with SIMULATED attestation, serving its HTTP API on 127.0.0.1) and N
// nodes (package node) gossiping over real UDP and TCP sockets. The raft
// baseline uses raft.NewTCPTransport on 127.0.0.1 with in-memory stores.
// Every measurement is bounded in time and returns a result that
// serialises to JSON; `vouch bench failover|dissemination|rest|messages|
// plot` wrap them (cmd/vouch/bench_scale.go), and docs/BENCHMARKS.md has
// the figures and the commands that reproduced them.
//
// Procedure common to the failover measurements: a fresh cluster per
// trial (new sockets, new cluster name, so no state carries over), waited
// on until every node sees all N members alive and holds one certificate,
// then left to settle; the leader is killed abruptly (node.Kill: sockets
// closed, no leave message) and the harness polls every survivor's
// node.Leader() every PollEvery until all of them hold one certificate for
// a new leader.
package scale
