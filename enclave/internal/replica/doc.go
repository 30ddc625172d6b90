// Package replica is the raft plumbing of the replicated runtime
// (docs/ARCHITECTURE.md, "Replicated runtime"): it runs hashicorp/raft for one replica over a
// sealed store, sealed snapshots and a mutually authenticated TLS
// transport, and offers leadership notifications, a read index,
// membership changes and metrics. It knows nothing of functions: the
// caller's raft.FSM gives the log its meaning.
//
// # Files
//
// Config.Dir (mode 0700) holds raft.db, the log and stable store of
// internal/raftstore under Keys.StorageKey() with store identity
// "<service key ID>/<replica ID>", and snapshots/, raft's file snapshot
// store (the two newest kept) whose state.bin files are sealed as below.
//
// # Snapshots
//
// A snapshot's bytes are buffered in memory while the FSM writes them and
// sealed when the sink closes (at most 1 GiB). The key is
// HKDF-SHA256(StorageKey, no salt, info "vouch replica snapshot v1", 32
// bytes), the cipher AES-256-GCM with a random 96-bit nonce. state.bin is
//
//	0x01 (format version) || nonce (12) || ciphertext || tag (16)
//
// with associated data, integers big-endian, strings as a 4-byte length
// then the bytes:
//
//	"vouch replica snapshot v1" || 0x00 || string(store identity) ||
//	string(snapshot ID) || version (8) || index (8) || term (8) ||
//	configuration index (8) || server count (4) ||
//	per server: suffrage (1) || string(server ID) || string(address)
//
// so that meta.json's index, term and configuration are authenticated
// too: raft uses a snapshot's metadata only after Open accepted it. A
// snapshot that does not authenticate makes Open fail with an error
// wrapping raftstore.ErrTampered. A snapshot sent to another replica
// travels in plaintext inside the TLS connection and is sealed again by
// the receiver under its own store identity.
//
// # Transport
//
// raft's NetworkTransport over TCP with TLS 1.3, both sides
// authenticated. Each Node makes an ephemeral Ed25519 key and a
// certificate for it (CN and DNS name = replica ID, valid one year)
// signed by Keys.TLSAuthority(). A peer is accepted only with a
// certificate the authority signed, currently valid, naming a valid
// replica ID; a dialler also requires the ID that the configuration lists
// at the address it dials. Without the service keys nobody can dial,
// vote or append.
//
// # Tampering
//
// A value of the store or a snapshot that does not authenticate is
// recorded (Tampered, vouch_replica_tampered_total, an error log line)
// and raft is shut down: the replica neither leads nor votes, and the
// server must stop serving it. Open reads the whole log first and fails
// with raftstore.ErrTampered on a file edited while the replica was
// stopped. raft panics when it cannot read an entry it is applying; a
// tampered GetLog therefore never returns instead, so nothing corrupted is
// applied and the process lives on to answer 503.
//
// # Metrics
//
// With Config.Registerer: vouch_replica_state{state} (1 for the current
// raft state: Follower, Candidate, Leader, Shutdown), vouch_replica_commit_index,
// vouch_replica_applied_index, vouch_replica_apply_seconds (Apply latency
// on the leader) and vouch_replica_tampered_total. Shutdown unregisters
// them.
package replica
