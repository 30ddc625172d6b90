// Package replica is the raft plumbing of the replicated runtime
// (docs/REPLICATION.md). It knows nothing of functions.
package replica
