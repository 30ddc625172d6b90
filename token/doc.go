// Package token mints and verifies vouch function tokens, and manages the
// runtime's owner credential.
//
// # Function tokens
//
// A function token authorises running exactly one function. It is a JSON Web
// Token (RFC 7519) in compact form, signed with Ed25519 (JWS "alg": "EdDSA",
// RFC 8037) by the runtime's token key. The runtime owns that key; this
// package never stores it. An [Issuer] mints tokens and a [Verifier] checks
// them.
//
// The header is exactly
//
//	{"alg":"EdDSA","typ":"JWT"}
//
// and the claims are
//
//	iss                the issuer string the runtime chose, e.g. "vouch:<fingerprint>"
//	sub                the function ID the token is for
//	aud                "vouch-run" (a single JSON string)
//	iat, nbf, exp      integer Unix seconds; nbf = iat, exp = iat + ttl
//	jti                32 lowercase hex characters: 128 bits from crypto/rand
//	function_checksum  64 lowercase hex characters: the SHA-256 checksum of
//	                   the function the token was minted for
//
// All of them are required. Timestamps must be JSON integers.
//
// # Verification
//
// [Verifier.Verify] refuses a token longer than [MaxTokenLen] before parsing
// it. It accepts the algorithm EdDSA and nothing else: "none", HS256 (including
// the key-confusion attack that uses the Ed25519 public key as an HMAC
// secret), RS256 and every other algorithm fail with [ErrBadSignature], as
// does a token signed by another key. After the signature it checks, in this
// order: that every claim is present and well formed, iss, aud, that sub is
// the function being run, exp (a token is expired from the second exp names;
// no leeway), nbf and iat (both may be up to [Leeway] in the future, for clock
// skew), and finally that jti is not revoked.
//
// Verify does not compare function_checksum with the function's current
// checksum: whether a token survives a redeploy is the caller's policy. The
// checksum is returned in [Claims.FunctionChecksum].
//
// Every error Verify returns wraps one sentinel, except a failure of the
// [Revocations] store, which is returned wrapped as is (a server error).
// [HTTPStatus] maps them to a status code:
//
//	ErrMissing, ErrMalformed, ErrBadSignature, ErrExpired,
//	ErrNotYetValid, ErrWrongIssuer, ErrWrongAudience      401 Unauthorized
//	ErrWrongFunction, ErrRevoked                          403 Forbidden
//	any other error                                       500 Internal Server Error
//
// Error messages name the problem (which function the token is for, when it
// expired) but never contain the token itself: a token is a bearer secret.
//
// [Parse] decodes a token WITHOUT verifying anything, for display and for
// finding the jti of a token to revoke. Never make an authorisation decision
// from its result.
//
// # Owner credential
//
// The owner credential is the runtime administrator's secret. It has the form
//
//	vouch_owner_<43 characters: unpadded base64url of 32 random bytes>
//
// [GenerateOwnerToken] makes one, [CheckOwner] compares a presented
// credential with the expected one in constant time, and
// [LoadOrCreateOwnerToken] and [LoadOwnerTokenFile] keep it in a file that
// only its owner may read (mode 0600): a file readable or writable by group
// or others is refused with [ErrInsecureFile] and a message that says how to
// fix it.
package token
