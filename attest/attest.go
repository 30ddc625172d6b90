package attest

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Platforms, as reported by [Attester.Platform] and [Claims.Platform].
const (
	// PlatformNitro is a document signed by the AWS Nitro Enclaves PKI.
	PlatformNitro = "aws-nitro"
	// PlatformSimulated is a document signed by a local simulated root. The
	// word SIMULATED must appear wherever a simulated document is shown.
	PlatformSimulated = "SIMULATED"
)

// Limits of the Nitro attestation document, from AWS's specification
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md, section 2.2 and
// 3.2.2) and the checks of blocky/nitrite.
const (
	// MaxPublicKeyLen is the largest public_key; when present it must
	// also be at least 1 byte.
	MaxPublicKeyLen = 1024
	// MaxUserDataLen is the largest user_data. (The prose of AWS's
	// attestation_process.md says 512 for user_data and nonce, but its CDDL
	// says 1024, and real documents carry 1024 bytes.)
	MaxUserDataLen = 1024
	// MaxNonceLen is the largest nonce.
	MaxNonceLen = 1024
	// MaxCertLen is the largest certificate or cabundle entry (DER).
	MaxCertLen = 1024
	// MaxPCRs is the largest number of PCRs in a document (at least 1).
	MaxPCRs = 32
	// MaxPayloadLen is the largest COSE payload (the attestation document
	// proper).
	MaxPayloadLen = 16384
	// MaxDocumentLen is the largest COSE_Sign1 document Verify decodes.
	MaxDocumentLen = MaxPayloadLen + 1024
	// ClockSkew is how far in the future a document's timestamp may be
	// when [Policy.MaxAge] is set.
	ClockSkew = time.Minute
)

// Sentinel errors. Errors returned by [Verify] and the attesters wrap one of
// these; test with errors.Is.
var (
	// ErrMalformed: the document is not a well-formed Nitro attestation
	// document (bad CBOR or COSE, missing, unknown or ill-typed field, size
	// limit exceeded).
	ErrMalformed = errors.New("attest: malformed attestation document")
	// ErrSignature: the COSE signature does not verify with the leaf key.
	ErrSignature = errors.New("attest: attestation signature does not verify")
	// ErrCertificate: the certificate chain is broken, or a certificate is
	// not valid at the verification time.
	ErrCertificate = errors.New("attest: attestation certificate chain is not valid")
	// ErrUntrustedRoot: the chain ends at a root that is neither the AWS
	// Nitro Enclaves root nor a simulated root, or not at the root pinned
	// by [Policy.RootFingerprint].
	ErrUntrustedRoot = errors.New("attest: attestation document is not signed by a trusted root")
	// ErrSimulated: the document is SIMULATED and the policy does not allow
	// simulated documents.
	ErrSimulated = errors.New("attest: attestation document is SIMULATED")
	// ErrDebug: the document comes from a debug enclave (PCR0..2 all zero)
	// and the policy does not allow debug enclaves.
	ErrDebug = errors.New("attest: attestation document is from a debug enclave")
	// ErrNonce: the document's nonce is not the expected one.
	ErrNonce = errors.New("attest: attestation nonce does not match")
	// ErrStale: the document's timestamp is older than [Policy.MaxAge], or
	// too far in the future.
	ErrStale = errors.New("attest: attestation document is stale")
	// ErrPCR: a PCR is not one of the values the policy allows.
	ErrPCR = errors.New("attest: attestation PCR not allowed by policy")
	// ErrPolicy: the policy itself is invalid.
	ErrPolicy = errors.New("attest: invalid verification policy")
	// ErrInvalidRequest: an attester was given a request it cannot bind
	// (for example user data over [MaxUserDataLen]).
	ErrInvalidRequest = errors.New("attest: invalid attestation request")
	// ErrUnavailable: the attestation backend is not available on this
	// machine (for example no /dev/nsm outside a Nitro enclave).
	ErrUnavailable = errors.New("attest: attestation backend unavailable")
)

// Request is what an [Attester] binds into a document. Empty fields are
// encoded as CBOR null, as the Nitro Secure Module does.
type Request struct {
	// Nonce is the fresh nonce of the client that asked for the document
	// (at most [MaxNonceLen] bytes).
	Nonce []byte
	// UserData is protocol-defined data (at most [MaxUserDataLen] bytes).
	UserData []byte
	// PublicKey is a key the verifier may use to encrypt to, or check
	// signatures of, the attested program (at most [MaxPublicKeyLen] bytes).
	PublicKey []byte
}

func (r Request) check() error {
	if len(r.Nonce) > MaxNonceLen {
		return fmt.Errorf("%w: nonce is %d bytes, at most %d allowed", ErrInvalidRequest, len(r.Nonce), MaxNonceLen)
	}
	if len(r.UserData) > MaxUserDataLen {
		return fmt.Errorf("%w: user data is %d bytes, at most %d allowed", ErrInvalidRequest, len(r.UserData), MaxUserDataLen)
	}
	if len(r.PublicKey) > MaxPublicKeyLen {
		return fmt.Errorf("%w: public key is %d bytes, at most %d allowed", ErrInvalidRequest, len(r.PublicKey), MaxPublicKeyLen)
	}
	return nil
}

// Attester produces an attestation document (CBOR COSE_Sign1 bytes).
// Implementations are safe for concurrent use.
type Attester interface {
	// Platform is PlatformNitro or PlatformSimulated.
	Platform() string
	// Attest returns a fresh document binding req.
	Attest(ctx context.Context, req Request) ([]byte, error)
}

// Policy says what [Verify] accepts. The zero value is the strictest useful
// policy: only real (non-debug) Nitro documents whose leaf certificate is
// valid now.
type Policy struct {
	// AllowSimulated accepts simulated documents; they are refused with
	// ErrSimulated otherwise. For development only.
	AllowSimulated bool
	// AllowDebug accepts documents from Nitro debug enclaves (PCR0, PCR1
	// and PCR2 all zero); they are refused with ErrDebug otherwise.
	AllowDebug bool
	// Nonce, if non-nil, must equal the document's nonce (compared in
	// constant time; an absent nonce equals an empty one).
	Nonce []byte
	// MaxAge, if positive, bounds the document's age: its timestamp must
	// be no older than MaxAge and no more than ClockSkew in the future.
	MaxAge time.Duration
	// PCRs is an allow-list: for each index listed, the document must carry
	// that PCR and it must equal one of the values. An index listed with no
	// values matches nothing.
	PCRs map[int][][]byte
	// RootFingerprint, if non-nil, is the SHA-256 of the only root
	// certificate (DER) accepted. For simulated documents it pins the local
	// simulated root (see Simulated.RootFingerprint); it applies to Nitro
	// documents too, whose root is always NitroRootFingerprint.
	RootFingerprint []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (p *Policy) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Policy) check() error {
	if p.RootFingerprint != nil && len(p.RootFingerprint) != 32 {
		return fmt.Errorf("%w: RootFingerprint must be a 32-byte SHA-256, not %d bytes", ErrPolicy, len(p.RootFingerprint))
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("%w: negative MaxAge", ErrPolicy)
	}
	for i := range p.PCRs {
		if i < 0 || i >= MaxPCRs {
			return fmt.Errorf("%w: PCR index %d out of range [0, %d)", ErrPolicy, i, MaxPCRs)
		}
	}
	return nil
}

// Claims is what a verified document says.
type Claims struct {
	// Platform is PlatformNitro or PlatformSimulated.
	Platform string
	// Simulated is true for a simulated document (Platform is
	// PlatformSimulated).
	Simulated bool
	// Debug is true when PCR0, PCR1 and PCR2 are all zero (or absent), as
	// for a Nitro enclave run in debug mode.
	Debug bool
	// ModuleID is the document's module_id (the Nitro enclave ID, or
	// "SIMULATED-..." for a simulated document).
	ModuleID string
	// Digest is the PCR digest function: "SHA384" for a Nitro document,
	// "SHA256" for a simulated one.
	Digest string
	// Timestamp is when the document was made (millisecond precision).
	Timestamp time.Time
	// PCRs maps PCR index (0..31) to value: 48 bytes (SHA-384) in a Nitro
	// document, 32 bytes (SHA-256) in a simulated one. For a simulated
	// document PCR0 is what NewSimulated was given (vouch uses
	// ExecutableDigest, the SHA-256 of its executable), and PCR1, PCR2
	// and PCR3..15 are as SimulatedPCRs says.
	PCRs map[int][]byte
	// PublicKey, UserData and Nonce are the document's fields; nil when the
	// document has null there.
	PublicKey, UserData, Nonce []byte
	// RootFingerprint is the SHA-256 of the chain's root certificate DER.
	RootFingerprint [32]byte
	// LeafCertificate is the certificate that signed the document.
	LeafCertificate *x509.Certificate
}

// String summarises the claims on one line. For a simulated document it
// starts with "SIMULATED".
func (c *Claims) String() string {
	if c == nil {
		return "<nil claims>"
	}
	var b strings.Builder
	if c.Simulated {
		b.WriteString("SIMULATED attestation (not a real enclave)")
	} else {
		b.WriteString("attestation")
	}
	fmt.Fprintf(&b, " platform=%s module_id=%s timestamp=%s", c.Platform, c.ModuleID, c.Timestamp.UTC().Format(time.RFC3339Nano))
	if c.Debug {
		b.WriteString(" DEBUG")
	}
	idx := make([]int, 0, len(c.PCRs))
	for i := range c.PCRs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if i > 2 {
			break
		}
		fmt.Fprintf(&b, " pcr%d=%s", i, hex.EncodeToString(c.PCRs[i]))
	}
	fmt.Fprintf(&b, " root=%s", hex.EncodeToString(c.RootFingerprint[:]))
	return b.String()
}
