// Package api holds the wire types of the runtime's HTTP API (docs/API.md):
// what the enclave server sends and what the client SDK reads. It has no
// logic beyond encoding and strict decoding, so both sides share one
// definition.
package api

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vouch-dev/vouch/internal/canon"
	"github.com/vouch-dev/vouch/internal/strictjson"
	"github.com/vouch-dev/vouch/receipt"
)

// Headers and content types.
const (
	// HeaderChecksum carries the checksum a caller expects the function to
	// have. The runtime refuses to run a function whose checksum differs.
	HeaderChecksum = "Vouch-Function-Checksum"
	// ContentTypeBundle is a deploy request's body: a canonical bundle.
	ContentTypeBundle = "application/vnd.vouch.bundle"
	// ContentTypeSealed is a run request's body sealed with HPKE to the
	// runtime's attested key (package seal).
	ContentTypeSealed = "application/vnd.vouch.sealed"
	// ContentTypeSession is a run request's body sealed in a session: one
	// HPKE setup to the runtime's attested key, then one AES-256-GCM
	// message per input (package seal, Session).
	ContentTypeSession = "application/vnd.vouch.session"
	// ContentTypePlain is a run request's body in the clear.
	ContentTypePlain = "application/octet-stream"
)

// Identity is the runtime's public identity (GET /v1/identity).
type Identity struct {
	// Platform is the attestation platform: "SIMULATED" or "aws-nitro".
	Platform string `json:"platform"`
	// ReceiptKey is the Ed25519 key that signs receipts and statements.
	ReceiptKey []byte `json:"receipt_key"`
	// KeyID is the receipt key's fingerprint (receipt.KeyID).
	KeyID string `json:"key_id"`
	// HPKEKey is the X25519 key inputs are sealed to.
	HPKEKey []byte `json:"hpke_key"`
	// Attestation is a COSE_Sign1 attestation document whose public_key is
	// ReceiptKey, whose user_data is IdentityUserData(ReceiptKey, HPKEKey)
	// and whose nonce is the one the request asked for.
	Attestation []byte `json:"attestation"`
	// RootFingerprint is the SHA-256 of the attestation root certificate.
	RootFingerprint string `json:"root_fingerprint"`
	// BootID names this run of the runtime process: 16 random bytes drawn
	// at start. Sealed inputs must carry it (seal.InputOptions.BootID); an
	// input sealed for another boot is refused with CodeStaleBoot, so none
	// can be replayed after a restart. It is not attested: a wrong one can
	// only make the runtime refuse the input.
	BootID []byte `json:"boot_id"`
	// Version is the runtime's software version.
	Version string `json:"version"`
	// ReplicaID names the replica that answered, when the runtime is a
	// replicated service; empty for a single runtime. It is attested: the
	// user_data is then IdentityUserDataReplica.
	ReplicaID string `json:"replica_id,omitempty"`
	// TLSKeySHA256 is the SHA-256 of the DER SubjectPublicKeyInfo of the
	// TLS certificate the runtime serves its API with (TLSKeyHash); empty
	// when it serves plain HTTP. It is attested: the user_data is then a
	// v2 form (IdentityUserDataTLS, IdentityUserDataReplicaTLS), and a
	// client pins the connection's key to it. This field only repeats it.
	TLSKeySHA256 []byte `json:"tls_key_sha256,omitempty"`
}

// IdentityTag starts the user_data of a runtime's attestation document
// that binds no TLS key (version 1).
const IdentityTag = "vouch/identity/v1"

// IdentityReplicaTag starts the user_data of a replica's attestation
// document that binds no TLS key (version 1).
const IdentityReplicaTag = "vouch/identity/replica/v1"

// IdentityTLSTag and IdentityReplicaTLSTag start the version 2 user_data,
// which also binds the runtime's TLS key (TLSKeyHash, or empty for plain
// HTTP).
const (
	IdentityTLSTag        = "vouch/identity/v2"
	IdentityReplicaTLSTag = "vouch/identity/replica/v2"
)

// IdentityUserData encodes the keys an attestation document binds:
// String("vouch/identity/v1") Bytes(receipt_key) Bytes(hpke_key).
func IdentityUserData(receiptKey, hpkeKey []byte) []byte {
	return canon.New(IdentityTag).Bytes(receiptKey).Bytes(hpkeKey).Message()
}

// IdentityUserDataReplica is IdentityUserData for one replica of a
// replicated service: String("vouch/identity/replica/v1") Bytes(receipt_key)
// Bytes(hpke_key) String(replica_id). Every replica binds the same service
// keys and its own ID.
func IdentityUserDataReplica(receiptKey, hpkeKey []byte, replicaID string) []byte {
	return canon.New(IdentityReplicaTag).Bytes(receiptKey).Bytes(hpkeKey).String(replicaID).Message()
}

// IdentityUserDataTLS is what a runtime attests since TLS:
// String("vouch/identity/v2") Bytes(receipt_key) Bytes(hpke_key)
// Bytes(tls_key_sha256), the last empty when it serves plain HTTP.
func IdentityUserDataTLS(receiptKey, hpkeKey, tlsKeySHA256 []byte) []byte {
	return canon.New(IdentityTLSTag).Bytes(receiptKey).Bytes(hpkeKey).Bytes(tlsKeySHA256).Message()
}

// IdentityUserDataReplicaTLS is IdentityUserDataTLS for one replica:
// String("vouch/identity/replica/v2") Bytes(receipt_key) Bytes(hpke_key)
// String(replica_id) Bytes(tls_key_sha256). Each replica binds its own TLS
// key.
func IdentityUserDataReplicaTLS(receiptKey, hpkeKey []byte, replicaID string, tlsKeySHA256 []byte) []byte {
	return canon.New(IdentityReplicaTLSTag).Bytes(receiptKey).Bytes(hpkeKey).String(replicaID).Bytes(tlsKeySHA256).Message()
}

// TLSKeyHash is what an identity binds of a TLS certificate: the SHA-256 of
// its DER SubjectPublicKeyInfo. A verifier computes it over the leaf
// certificate the TLS handshake presented.
func TLSKeyHash(cert *x509.Certificate) []byte {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return h[:]
}

// IdentityBinding is what an identity's user_data binds.
type IdentityBinding struct {
	ReceiptKey, HPKEKey []byte
	// ReplicaID is empty for a single runtime.
	ReplicaID string
	// TLSKeySHA256 is the TLSKeyHash of the runtime's API certificate:
	// nil for version 1 and for a runtime serving plain HTTP.
	TLSKeySHA256 []byte
	// Tag is the user_data's tag, which fixes its form.
	Tag string
}

// ParseIdentityBinding decodes any of the four user_data forms
// (IdentityUserData, IdentityUserDataReplica, IdentityUserDataTLS,
// IdentityUserDataReplicaTLS), strictly: one encoding per value.
func ParseIdentityBinding(b []byte) (*IdentityBinding, error) {
	r := canon.NewReader(b)
	tag := r.String()
	replica, tls := false, false
	switch {
	case r.Err() != nil:
	case tag == IdentityTag:
	case tag == IdentityReplicaTag:
		replica = true
	case tag == IdentityTLSTag:
		tls = true
	case tag == IdentityReplicaTLSTag:
		replica, tls = true, true
	default:
		return nil, fmt.Errorf("attestation user_data has tag %q, want %q, %q, %q or %q", tag, IdentityTLSTag, IdentityReplicaTLSTag, IdentityTag, IdentityReplicaTag)
	}
	out := &IdentityBinding{Tag: tag}
	out.ReceiptKey, out.HPKEKey = r.Bytes(), r.Bytes()
	if replica {
		out.ReplicaID = r.String()
	}
	if tls {
		out.TLSKeySHA256 = r.Bytes()
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("attestation user_data: %w", err)
	}
	if len(out.ReceiptKey) != 32 || len(out.HPKEKey) != 32 {
		return nil, errors.New("attestation user_data: keys must be 32 bytes each")
	}
	if replica && !ValidReplicaID(out.ReplicaID) {
		return nil, fmt.Errorf("attestation user_data: replica ID %q must be 1-64 characters of a-z 0-9 . _ -", out.ReplicaID)
	}
	switch len(out.TLSKeySHA256) {
	case 0:
		out.TLSKeySHA256 = nil
	case sha256.Size:
	default:
		return nil, fmt.Errorf("attestation user_data: the TLS key hash is %d bytes, want 32 (or none, for plain HTTP)", len(out.TLSKeySHA256))
	}
	return out, nil
}

// ParseIdentityUserData is ParseIdentityBinding without the TLS key hash;
// replicaID is empty for a single runtime.
func ParseIdentityUserData(b []byte) (receiptKey, hpkeKey []byte, replicaID string, err error) {
	id, err := ParseIdentityBinding(b)
	if err != nil {
		return nil, nil, "", err
	}
	return id.ReceiptKey, id.HPKEKey, id.ReplicaID, nil
}

// ValidReplicaID reports whether id is a valid replica ID: 1 to 64
// characters of a-z 0-9 . _ -.
func ValidReplicaID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Deployed answers a deploy.
type Deployed struct {
	FunctionID       string `json:"function_id"`
	FunctionChecksum string `json:"function_checksum"`
	FunctionName     string `json:"function_name"`
}

// Limits are a function's resolved limits.
type Limits struct {
	Timeout        string `json:"timeout"`
	MemoryMiB      uint32 `json:"memory_mib"`
	MaxInputBytes  int64  `json:"max_input_bytes"`
	MaxOutputBytes int64  `json:"max_output_bytes"`
	MaxLogBytes    int64  `json:"max_log_bytes"`
}

// Function describes a deployed function (GET /v1/functions/{id}).
type Function struct {
	FunctionID          string            `json:"function_id"`
	FunctionName        string            `json:"function_name"`
	FunctionChecksum    string            `json:"function_checksum"`
	CreatedAt           time.Time         `json:"created_at"`
	Size                int               `json:"size"`
	Mode                string            `json:"mode,omitempty"`
	Limits              *Limits           `json:"limits,omitempty"`
	AllowPlaintextInput bool              `json:"allow_plaintext_input"`
	Statement           receipt.Statement `json:"statement"`
}

// FunctionList answers GET /v1/functions.
type FunctionList struct {
	Functions []Function `json:"functions"`
}

// RunResult answers a successful run. At most one of Output and
// SealedOutput is set (SealedOutput when the sealed input carried a reply
// key); an empty output leaves Output out. The receipt's output_sha256 is
// over the plaintext output.
//
// Log is what the function wrote to stderr, cut at its log limit. It is
// set only when the input was plaintext (never for a sealed input), and
// the receipt does not cover it.
type RunResult struct {
	Output       []byte          `json:"output,omitempty"`
	SealedOutput []byte          `json:"sealed_output,omitempty"`
	Receipt      receipt.Receipt `json:"receipt"`
	Log          string          `json:"log,omitempty"`
}

// AttestationSummary says how the runtime behind a result attested, as the
// client verified it. A SIMULATED runtime has Simulated set and Platform
// "SIMULATED".
type AttestationSummary struct {
	Platform        string `json:"platform"`
	Simulated       bool   `json:"simulated"`
	RootFingerprint string `json:"root_fingerprint,omitempty"`
	KeyID           string `json:"key_id,omitempty"`
}

// RunRecord is what `vouch run -o json` prints: the output (opened, if it
// was sealed), its verified receipt, and how the runtime attested. `vouch
// verify` reads it, and also a bare RunResult.
type RunRecord struct {
	Output  []byte          `json:"output,omitempty"`
	Receipt receipt.Receipt `json:"receipt"`
	// Log is the function's stderr for a plaintext run; the receipt does
	// not cover it.
	Log         string              `json:"log,omitempty"`
	Attestation *AttestationSummary `json:"attestation,omitempty"`
}

// TokenRequest asks for a function token (POST /v1/functions/{id}/tokens).
type TokenRequest struct {
	FunctionChecksum string `json:"function_checksum"`
	// Expiry is a Go duration such as "24h"; empty means 24h.
	Expiry string `json:"expiry,omitempty"`
}

// TokenResponse answers a TokenRequest.
type TokenResponse struct {
	FunctionID       string    `json:"function_id"`
	FunctionChecksum string    `json:"function_checksum"`
	FunctionToken    string    `json:"function_token"`
	TokenID          string    `json:"token_id"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// RevokeRequest revokes a function token (POST /v1/tokens/revoke).
type RevokeRequest struct {
	FunctionToken string `json:"function_token"`
}

// Error codes, stable across versions.
const (
	CodeBadRequest       = "bad_request"
	CodeNoRoute          = "no_such_endpoint"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeCancelled        = "cancelled"
	CodeInvalidBundle    = "invalid_bundle"
	CodeInvalidModule    = "invalid_module"
	CodeTooLarge         = "too_large"
	CodeNotFound         = "function_not_found"
	CodeChecksumMismatch = "checksum_mismatch"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeSealedRequired   = "sealed_input_required"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeSealedInput      = "bad_sealed_input"
	CodeReplay           = "replayed_input"
	CodeStaleBoot        = "stale_boot"
	CodeFunctionFailed   = "function_failed"
	CodeUnavailable      = "unavailable"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal"
	// CodeNotLeader (421) comes from a replica that is not the raft
	// leader, for a request only the leader serves; Error.LeaderURL names
	// the leader's API when it is known.
	CodeNotLeader = "not_leader"
	// CodeNoLeader (503) means the replicas have no leader right now (an
	// election is under way or too few replicas run); retry shortly.
	CodeNoLeader = "no_leader"
)

// Error is the body of every error response: {"error": {...}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Kind and Log describe a failed function: how it failed (timeout,
	// out_of_memory, trap, exit, failed, ...) and its stderr.
	Kind string `json:"kind,omitempty"`
	Log  string `json:"log,omitempty"`
	// Refusal, with CodeFunctionFailed, is the code from the fixed list
	// RefusalTexts with which the function refused its input; it is sent
	// even when the input was sealed (see RefusalPrefix).
	Refusal string `json:"refusal,omitempty"`
	// LeaderURL, with CodeNotLeader, is the API URL of the replica that
	// leads, if known.
	LeaderURL string `json:"leader_url,omitempty"`
	// Status is the HTTP status; it is not sent.
	Status int `json:"-"`
	// RetryAfter, for a 429, is how long to wait (sent as Retry-After).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// ErrorResponse wraps Error on the wire.
type ErrorResponse struct {
	Error *Error `json:"error"`
}

// DecodeStrict decodes one JSON value from r into v, refusing unknown
// fields, trailing data and bodies over max bytes.
func DecodeStrict(r io.Reader, max int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > max {
		return fmt.Errorf("body is larger than %d bytes", max)
	}
	return UnmarshalStrict(data, v)
}

// UnmarshalStrict is DecodeStrict for bytes.
func UnmarshalStrict(data []byte, v any) error { return strictjson.Unmarshal(data, v) }
