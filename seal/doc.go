// Package seal encrypts function inputs to the vouch runtime and function
// outputs back to the caller, with HPKE (RFC 9180).
//
// A client seals an input with [SealInput] to the runtime's attested X25519
// public key. The runtime opens it with [PrivateKey.OpenInput], and can only
// do so while it runs the exact function (ID and checksum) the client named:
// both are bound into the HPKE info. If the client included a reply key, the
// runtime seals the output to it with [SealOutput], and the client opens it
// with [PrivateKey.OpenOutput].
//
// # Suite
//
// Base mode (no PSK, no sender authentication), with
//
//	KEM   DHKEM(X25519, HKDF-SHA256)   0x0020
//	KDF   HKDF-SHA256                  0x0001
//	AEAD  ChaCha20-Poly1305            0x0003
//
// and an empty aad. One message is one single-shot HPKE context (sequence
// number 0).
//
// # Sealed message
//
// Inputs and outputs have the same wire form, the output of RFC 9180
// single-shot Seal:
//
//	enc         32 bytes   the encapsulated key: the sender's ephemeral X25519 public key
//	ciphertext  N+16 bytes ChaCha20-Poly1305 of the N-byte plaintext, with its 16-byte tag
//
// # Info
//
// All integers are big-endian; lp(s) is the 4-byte length of s followed by
// the bytes of s. The function ID is an ASCII string of 1 to 128 letters,
// digits, '.', '_' and '-'; the checksum is the 64 lowercase hex characters
// of the function's SHA-256 checksum, as text (64 bytes), not decoded.
//
//	input info  = "vouch/input/v1"  || 0x00 || lp(function_id) || lp(checksum)
//	output info = "vouch/output/v1" || 0x00 || lp(function_id) || lp(checksum) || input_sha256
//
// input_sha256 is the 32-byte SHA-256 of the plaintext input (the input
// bytes of the envelope below, which [OpenedInput.Input] returns), so an
// output can only be opened as the answer to that input.
//
// For example, function "fn" with checksum "00…00" (64 '0' characters) has
// the input info (hex)
//
//	766f7563682f696e7075742f7631 00 00000002 666e 00000040 3030…30
//
// # Input envelope
//
// The plaintext of a sealed input is an envelope:
//
//	offset  size  field
//	0       1     version: 0x02
//	1       16    boot_id: the runtime's boot ID (see below)
//	17      8     issued_at: int64, Unix time in milliseconds
//	25      1     reply flag: 0x00 no reply key, 0x01 a reply key follows;
//	              any other value is malformed
//	26      32    reply key: X25519 public key, present only if the flag is 0x01
//	26 or 58 ...  the input bytes, to the end (possibly empty)
//
// Version 0x01 (the same layout without boot_id) is refused with
// [ErrMalformed] and an error that says so: a runtime cannot tell a replay of
// such an input after a restart from a new one.
//
// The plaintext of a sealed output is the output bytes themselves, with no
// envelope.
//
// # Sizes
//
// Inputs and outputs are at most [MaxInputSize] and [MaxOutputSize] bytes.
// A sealed input is at least 74 bytes (32 + 16 + 26) and at most
// [MaxInputSize] + [InputOverhead] (106 bytes of overhead with a reply key);
// a sealed output is at least 48 bytes and at most [MaxOutputSize] +
// [OutputOverhead]. Sizes are checked before anything is decrypted; a server
// can enforce a function's smaller limit the same way (limit +
// InputOverhead).
//
// # Freshness and replay
//
// [PrivateKey.OpenInput] refuses, with [ErrStaleBoot], an envelope whose
// boot_id is not the [ReplayCache]'s [ReplayCache.BootID]: 16 random bytes
// drawn when the cache is made, that is, once per run of the runtime, which
// publishes them with its identity. It refuses, with [ErrStale], an envelope
// whose issued_at is more than the cache's window (by default
// [DefaultReplayWindow], 5 minutes) before or after the runtime's clock. It
// remembers the enc of every input it accepts in the cache: enc is fresh for
// every message, so a second input with the same enc is a replay and fails
// with [ErrReplay]. The cache forgets an entry once its issued_at has left
// the window, and holds at most a fixed number of entries; see [ReplayCache]
// for what happens when it is full.
//
// The cache lives in memory and is lost when the runtime restarts; the boot
// ID is what keeps that safe. An input accepted before a restart names the
// old boot ID, so the restarted runtime refuses it, however its issued_at
// compares with the clock; a client that gets [ErrStaleBoot] fetches the
// identity again (learning the new boot ID) and seals afresh. There is no
// window after a restart in which new inputs are refused.
//
// A client should use a fresh reply key for every input: the output info
// binds the function and the input, not the moment, so an output sealed to
// a reused key could be replayed as the answer to an identical input.
//
// # Sessions
//
// A [Session] pays for HPKE once per function and runtime boot instead of
// once per input: [NewSession] runs HPKE's SetupBaseS with the info
// "vouch/session/v1" || 0x00 || lp(function_id) || lp(checksum), takes two
// AES-256-GCM keys from the context's exporter, and [Session.Seal] seals
// each input envelope (as above; reply flag 0x02 asks for the output in the
// session) under its own counter. The runtime opens a message with
// [PrivateKey.OpenSessionInput], deriving the keys from the message's enc
// when its [SessionCache] does not hold them, and seals the answer with
// [OpenedInput.SealSessionOutput]; the client opens it with
// [Session.OpenOutput]. The boot ID, the freshness window and the replay
// cache (keyed by enc and counter) apply as for single-shot inputs. The
// wire form is in docs/FORMATS.md, "Sessions".
//
// # Errors
//
// Opening fails with an error wrapping [ErrMalformed] (wrong size, bad or
// old envelope), [ErrDecrypt] (wrong key, another function or checksum, or
// any modified byte), [ErrStaleBoot], [ErrStale] or [ErrReplay]. Sealing fails with an error
// wrapping [ErrInvalidKey] for a bad recipient or reply key. Errors name the
// function ID and checksum involved, which are public, and never contain
// plaintext or keys.
package seal
