// Package attest produces and verifies attestation documents in the format
// of AWS Nitro Enclaves: a CBOR COSE_Sign1 structure, signed with ES384 by a
// leaf certificate that chains, through the document's own CA bundle, to a
// trusted root.
//
// vouch binds its Ed25519 receipt key and X25519 HPKE key into such a
// document (through [Request.PublicKey] and [Request.UserData]), and a client
// checks the document with [Verify] before it trusts either key.
//
// # Backends
//
// An [Attester] produces documents. There are two backends, and the caller
// always picks one explicitly: nothing in this package falls back from one to
// the other, so a deployment that asked for Nitro never silently runs with a
// simulated attestation.
//
//   - [NewNitro] asks the Nitro Secure Module (/dev/nsm) inside a real AWS
//     Nitro enclave. Its documents are signed by AWS; [Attester.Platform]
//     reports [PlatformNitro].
//   - [NewSimulated] signs documents locally, for development and tests on a
//     machine without Nitro. It keeps a private ECDSA P-384 root CA under a
//     data directory (created on first use, reloaded afterwards, files mode
//     0600) and issues from it an intermediate and a short-lived leaf, so its
//     documents have the same layout as real ones. [Attester.Platform]
//     reports [PlatformSimulated]. A simulated document proves nothing about
//     the machine that made it: whoever holds the data directory can sign
//     anything.
//
// # The SIMULATED rule
//
// A simulated document is never mistaken for a real one. Its root
// certificate's CommonName contains [SimulatedRootCommonName], its module_id
// starts with "SIMULATED-", [Claims.Platform] is [PlatformSimulated] and
// [Claims.String] starts with "SIMULATED". Anything that shows a simulated
// document to a person must show the word SIMULATED.
//
// [Verify] refuses simulated documents unless [Policy.AllowSimulated] is set;
// the error wraps [ErrSimulated] and tells the user how to allow them
// (for development only). When [Policy.RootFingerprint] is set as well, only
// documents from that one simulated root (see [Simulated.RootFingerprint])
// are accepted.
//
// # Verification
//
// [Verify] decodes the COSE_Sign1 document (tagged with CBOR tag 18 or
// untagged, as the Nitro Secure Module emits it), requires the protected
// header to name ES384 and nothing else, and decodes the payload strictly:
// exactly the fields of the Nitro attestation document, with their CBOR types
// and the size limits of AWS's specification (see [MaxUserDataLen] and the
// other limits). It then checks the certificate chain (leaf, then the CA
// bundle from its last entry back to its first, which must be the root) at
// [Policy.Now], requires the root to be the pinned AWS Nitro Enclaves root
// (compared byte for byte, see [NitroRootFingerprint]) or an allowed simulated
// root, and verifies the ES384 signature with the leaf's key. Last it applies
// the policy: debug enclaves, PCR allow-list, nonce and age.
//
// # PCR layout
//
// Nitro PCR values are 48 bytes (SHA-384), and a Nitro document's digest
// field is always "SHA384"; [Verify] insists on both for every document that
// chains to the AWS root. A simulated document instead declares the digest
// "SHA256" and carries 32-byte PCRs, PCR0 to PCR15 like Nitro; [Verify]
// accepts that only for a document it verifies as simulated, under a policy
// that allows simulated documents:
//
//   - PCR0 is the pcr0 argument of [NewSimulated]. vouch passes
//     [ExecutableDigest], the SHA-256 of its own executable file, so PCR0
//     identifies the running vouch binary byte for byte, and
//     `sha256sum vouch` reproduces it.
//   - PCR1 is SHA-256 of "vouch SIMULATED PCR1" and PCR2 is SHA-256 of
//     "vouch SIMULATED PCR2": fixed, non-zero markers standing where Nitro
//     measures the kernel and the application ([SimulatedPCRs] returns the
//     whole set for a given PCR0).
//   - PCR3 to PCR15 are 32 zero bytes.
//
// A Nitro enclave started in debug mode reports PCR0, PCR1 and PCR2 as all
// zeros; [Verify] sets [Claims.Debug] for such a document (or one without
// those PCRs) and refuses it unless [Policy.AllowDebug] is set.
package attest
