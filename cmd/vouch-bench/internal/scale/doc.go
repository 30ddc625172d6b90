// Package scale measures vouch clusters as they grow: failover time against
// hashicorp/raft, certificate dissemination against a gossip model, the
// cost of an idle cluster, messages per election, and false positives of
// failure detection.
//
// Everything runs in one process on loopback: a runtime (enclave server
// with SIMULATED attestation, serving its HTTP API on 127.0.0.1) and N
// nodes (package node) gossiping over real UDP and TCP sockets. The raft
// baseline is hashicorp/raft with in-memory stores on raft's own
// NetworkTransport (raft.NewNetworkTransport, the type raft.NewTCPTransport
// returns) over real TCP on 127.0.0.1, through a stream layer of ours that
// does what raft.TCPStreamLayer does but remembers every connection, so
// that a kill closes all of a server's sockets at once, as a crash would
// (raft's own Close leaves pooled connections open).
//
// Every measurement is bounded in time and returns a result that
// serialises to JSON, partial results included when its context ends
// first; `vouch-bench failover|dissemination|rest|messages|plot` wrap
// them (cmd/vouch/bench_scale.go) and rewrite the JSON after every trial.
// docs/BENCHMARKS.md has the figures and the commands that reproduced
// them.
//
// Quantiles are nearest rank (Summarize): with fewer than 100 samples p99
// is the maximum, and tables say so. Failed trials are counted apart
// (start failures, where nothing was killed, and failover timeouts), and
// censored quantiles (SummarizeCensored) count the timeouts as "more than
// the bound" instead of leaving them out.
//
// Procedure common to the failover measurements: a fresh cluster per
// trial (new sockets, new cluster name, so no state carries over), waited
// on until every node sees all N members alive and holds one certificate,
// then left to settle; the leader is killed abruptly (node.Kill: sockets
// closed, no leave message) and the harness polls every survivor's
// node.Leader() every PollEvery until all of them hold one certificate for
// a new leader.
package scale
