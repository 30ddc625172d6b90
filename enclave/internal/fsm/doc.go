// Package fsm is the replicated runtime's state machine (docs/FORMATS.md,
// "Replicated state machine"): what every replica holds in memory and rebuilds
// from a raft snapshot plus the log. It is pure: no raft transport, no
// sockets, no clock, no randomness. It implements raft.FSM.
//
// State: deployed functions (store.Function record plus canonical bundle),
// revocations (token ID -> expiry, Unix seconds), each function's durable
// key-value state and counters, the receipt sequence ceiling, and the
// replica directory (replica ID -> API URL, raft address).
//
// # Commands
//
// A log entry is one JSON object, decoded strictly (internal/strictjson:
// unknown or duplicate members, trailing data and misplaced nulls are
// refused), at most MaxCommand bytes. "type" names the command and the member
// of the same name carries its payload; no other payload member may be set.
// Byte strings are standard base64.
//
//	{"type":"deploy","deploy":{"function":{"id","name","checksum","created_at","size"},"bundle":B64}}
//	{"type":"delete","delete":{"function_id":ID}}
//	{"type":"revoke","revoke":{"jti":JTI,"expires":UNIX}}
//	{"type":"prune","prune":{"now":UNIX}}
//	{"type":"commit","commit":{"function_id":ID,"writes":[{"key":B64,"value":B64|null}],
//	                           "counters":[{"name":B64,"value":N}],"seq_ceiling":N,"leader_term":N}}
//	{"type":"seq","seq":{"ceiling":N}}
//	{"type":"replica","replica":{"id":ID,"api_url":URL,"raft_addr":HOST:PORT}}
//	{"type":"replica_removed","replica_removed":{"id":ID}}
//
// Apply is deterministic: the same entries in the same order give the same
// state on every replica. It returns nil for an applied command, an int
// (how many revocations were forgotten) for prune, and an error for a
// refused command, which changes nothing: malformed bytes, a deploy whose
// bundle does not match its checksum or whose ID exists, a delete or commit
// of a function that is not deployed (wrapping store.ErrNotFound), a
// counter that would not grow. Sequence ceilings only rise: a lower one is
// kept as it is.
//
// # Snapshots
//
// A snapshot is one JSON object, with every list sorted by its key so that
// two replicas with the same state write the same bytes:
//
//	{"version":1,
//	 "functions":[{"function":{...},"bundle":B64,
//	               "state":[{"key":B64,"value":B64}],"counters":[{"name":B64,"value":N}]}],
//	 "revocations":[{"jti":JTI,"expires":UNIX}],
//	 "seq_ceiling":N,
//	 "replicas":[{"id":ID,"api_url":URL,"raft_addr":HOST:PORT}]}
//
// Restore refuses a snapshot of another version, one that is not sorted or
// repeats a key, or a bundle that does not match its record's checksum, and
// then leaves the state as it was.
//
// # Observer
//
// The Observer given to New learns of deploys, deletes, revocations and
// restores after the state changed, outside the FSM's lock, on raft's apply
// goroutine: it must not block for long and must never wait for a later
// entry to apply.
package fsm
