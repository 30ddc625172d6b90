// Package enclave is vouch's trusted function runtime: an HTTP server that
// deploys WebAssembly functions, runs them in package sandbox, and signs a
// receipt for every output.
//
// Serve serves HTTPS when Config.TLSCertificate is set (GenerateTLSCertificate
// makes a key inside the runtime); the identity's attestation then binds that
// key, so clients pin it without a CA (docs/API.md, "Transport").
//
// What the server does, in order, for a run (docs/ARCHITECTURE.md):
//
//  1. Look up the function; refuse if the caller's expected checksum
//     (Vouch-Function-Checksum) differs from the deployed one, before
//     reading the input.
//  2. Check the caller's function token (or owner credential).
//  3. Open the input: a sealed input is opened with HPKE under an info that
//     binds this function's ID and checksum, refused (stale_boot) unless it
//     was sealed for this run's boot ID, and checked against the replay
//     cache; a plaintext input is accepted only if the manifest allows it.
//  4. Run the function under its limits.
//  5. Take the next receipt sequence number. Sequence numbers are reserved
//     durably in blocks before they are handed out, so none is ever reused,
//     even after a crash.
//  6. Sign the receipt over the function's checksum, the input and output
//     digests, the sequence number and the time; seal the output if the
//     caller gave a reply key.
//
// Keys are created with crypto/rand at first start and kept under the data
// directory with mode 0600: the receipt key (Ed25519), the token key
// (Ed25519) and the HPKE key (X25519). No API returns a private key. The
// receipt and HPKE public keys are bound to an attestation document, which
// the identity endpoint returns for a fresh client nonce, with the boot ID:
// 16 random bytes drawn at every start, so that the in-memory replay cache
// needs no persistence (an input of a previous run is refused, never
// replayed). Internal errors reach the client as a generic message with an
// error ID; the details go to the log under that ID.
//
// # Replicated mode
//
// With Config.Replica the server is one replica of a replicated runtime
// (docs/ARCHITECTURE.md, "Replicated runtime"). The service keys come from a bootstrap
// (servicekeys.Generate), an attested join through a running member
// (package internal/join), or, for a SIMULATED replica that restarts, from
// the data directory (the key files plus service_secret, mode 0600). The
// durable state lives in the replicated state machine (internal/fsm) under
// raft (internal/replica, DATA/raft): the server reads it there and writes
// through the log. Runs, deploys, deletes, revocations and token minting
// are served by the leader only; another replica answers 421 not_leader
// with the leader's URL, or 503 no_leader. A stateful run commits its
// writes, counters and (when its block is used up) a new sequence ceiling
// as one log entry before the receipt is signed, and every run checks with
// a read index that the replica still leads before it signs. A replica
// that gains leadership first applies every earlier entry (a barrier),
// restarts its sequencer above the committed ceiling and clears the
// volatile state, as a restarted runtime would; only then does it serve.
// Every replica learns of applied deploys, deletes and revocations through
// the state machine's observer, and compiles deployed functions at once.
package enclave
