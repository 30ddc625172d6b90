// Package join is the attested join protocol of a replicated vouch service
// (docs/FORMATS.md, "Join protocol"): a new replica proves with a fresh
// attestation document that it runs the service's code, and a member seals
// the service keys to a key bound in that document.
//
// The member side is [Member]: [Member.Challenge] hands out single-use
// nonces, [Member.Admit] checks a join request and seals the keys, and
// [Member.Handler] serves both over HTTP (POST /v1/replicas/challenge and
// POST /v1/replicas/join). The joiner side is [Joiner.Join].
//
// # Messages
//
// A joiner draws an ephemeral X25519 key and attests with
//
//	nonce       the member's challenge (32 bytes)
//	public_key  the ephemeral X25519 public key (32 bytes)
//	user_data   String("vouch/join/v1") String(replica_id) String(raft_addr) String(api_url)
//
// in the canonical encoding of internal/canon. The member answers with the
// service keys ([servicekeys.Keys.Marshal]) sealed with HPKE (RFC 9180,
// base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, empty
// aad) to that key, with
//
//	info        String("vouch/join/keys/v1") String(replica_id) Bytes(nonce)
//
// as enc (32 bytes) || ciphertext, and with its own identity document over
// the joiner's nonce: public_key is the service's receipt key and user_data
// is api.IdentityUserDataReplica(receipt_key, hpke_key, member_replica_id).
// The joiner accepts the keys only if that document verifies under its
// policy and binds the very keys it opened.
//
// # What a member checks
//
// In this order, refusing (with an error wrapping [ErrRefused]) and
// changing nothing but the consumed challenge:
//
//  1. the document verifies: a real AWS Nitro document, or a SIMULATED one
//     only when the member itself is SIMULATED and then only under the
//     member's own simulated root;
//  2. its nonce is a challenge this member issued less than
//     [ChallengeTTL] ago and that was not used: it is consumed, so a
//     replayed document is refused;
//  3. its platform is the member's;
//  4. its PCRs equal the member's own (Nitro: PCR0, 1 and 2; SIMULATED:
//     PCR0) or one entry of [Policy.AllowPCRs];
//  5. its public_key is a 32-byte X25519 key;
//  6. its user_data decodes, with a valid replica ID (api.ValidReplicaID),
//     a raft address HOST:PORT and an http or https API URL.
//
// Whether the replica ID may join (not already a member at another
// address) is the server's call, in the admit function given to
// [Member.Handler].
package join
