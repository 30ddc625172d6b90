package election

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/internal/canon"
	"github.com/vouch-dev/vouch/receipt"
)

// CertTag starts a certificate's wire encoding.
const CertTag = "vouch/cert/v1"

// MaxCertSize bounds an encoded certificate.
const MaxCertSize = 1 << 20

// Certificate is the election function's output with the runtime's receipt
// for it. Peers check it offline.
type Certificate struct {
	// Output is the function's output, byte for byte as the receipt hashes
	// it: {"cluster","leader","members","members_digest"}.
	Output  []byte
	Receipt receipt.Receipt
}

// Outcome is a certificate's parsed output.
type Outcome struct {
	Cluster       string   `json:"cluster"`
	Leader        string   `json:"leader"`
	Members       []string `json:"members"`
	MembersDigest string   `json:"members_digest"`
}

// Seq returns the receipt's sequence number, which orders certificates.
func (c *Certificate) Seq() uint64 { return c.Receipt.Seq }

// Encode returns the certificate's wire form:
//
//	String("vouch/cert/v1") Bytes(output) String(function_id)
//	String(function_checksum) String(input_sha256) String(output_sha256)
//	Uint64(seq) Int64(time, Unix ns) String(key_id) Bytes(signature)
func (c *Certificate) Encode() []byte {
	r := &c.Receipt
	return canon.New(CertTag).
		Bytes(c.Output).
		String(r.FunctionID).
		String(r.FunctionChecksum).
		String(r.InputSHA256).
		String(r.OutputSHA256).
		Uint64(r.Seq).
		Int64(r.Time.UnixNano()).
		String(r.KeyID).
		Bytes(r.Signature).
		Message()
}

// ErrMalformed is wrapped by errors about undecodable certificates.
var ErrMalformed = errors.New("malformed certificate")

// DecodeCertificate parses a certificate's wire form. It checks the form of
// every field but verifies nothing; see Verify.
func DecodeCertificate(b []byte) (*Certificate, error) {
	if len(b) > MaxCertSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	rd := canon.NewReader(b)
	if tag := rd.String(); rd.Err() == nil && tag != CertTag {
		return nil, fmt.Errorf("%w: tag %q", ErrMalformed, truncate(tag))
	}
	c := &Certificate{Output: bytes.Clone(rd.Bytes())}
	r := &c.Receipt
	r.FunctionID = rd.String()
	r.FunctionChecksum = rd.String()
	r.InputSHA256 = rd.String()
	r.OutputSHA256 = rd.String()
	r.Seq = rd.Uint64()
	r.Time = time.Unix(0, rd.Int64()).UTC()
	r.KeyID = rd.String()
	r.Signature = bytes.Clone(rd.Bytes())
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := r.Message(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}

// Trust is what a node checks certificates against.
type Trust struct {
	// Key is the runtime's attested receipt key.
	Key ed25519.PublicKey
	// FunctionID and Checksum name the election function (node.Config.FunctionID and Checksum).
	FunctionID string
	Checksum   string
	// Cluster is the cluster's name.
	Cluster string
	// ConfigDigest, for term certificates, is the digest of the cluster
	// configuration the node was given: a certificate issued under any
	// other configuration (say, one a squatter registered first under the
	// same cluster name) is refused.
	ConfigDigest string
}

// Reason says why a certificate was refused. Its values label metrics.
type Reason string

// Rejection reasons.
const (
	ReasonMalformed      Reason = "malformed"
	ReasonBadSignature   Reason = "bad_signature"
	ReasonUnknownKey     Reason = "unknown_key"
	ReasonWrongFunction  Reason = "wrong_function"
	ReasonWrongChecksum  Reason = "wrong_checksum"
	ReasonOutputMismatch Reason = "output_mismatch"
	ReasonInputMismatch  Reason = "input_mismatch"
	ReasonWrongCluster   Reason = "wrong_cluster"
	ReasonBadOutcome     Reason = "bad_outcome"
	ReasonStale          Reason = "stale"
	ReasonMembers        Reason = "members_mismatch"
	ReasonWrongConfig    Reason = "wrong_config"
)

// Reasons lists every rejection reason, for metrics and status.
var Reasons = []Reason{ReasonMalformed, ReasonBadSignature, ReasonUnknownKey, ReasonWrongFunction, ReasonWrongChecksum,
	ReasonOutputMismatch, ReasonInputMismatch, ReasonWrongCluster, ReasonBadOutcome, ReasonStale, ReasonMembers, ReasonWrongConfig,
	ReasonNoLeader, ReasonEquivocation}

// RejectError is a refused certificate.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Verify checks everything about a certificate that does not depend on the
// node's state, and returns its outcome.
func Verify(c *Certificate, t Trust) (*Outcome, *RejectError) {
	if rej := verifyReceipt(c, t); rej != nil {
		return nil, rej
	}
	r := &c.Receipt
	o, err := parseOutcome(c.Output)
	if err != nil {
		return nil, reject(ReasonBadOutcome, "output is not an election outcome: %v", err)
	}
	if o.Cluster != t.Cluster {
		return nil, reject(ReasonWrongCluster, "certificate is for cluster %q, this node is in %q", o.Cluster, t.Cluster)
	}
	set, err := members.New(o.Members)
	if err != nil {
		return nil, reject(ReasonBadOutcome, "%v", err)
	}
	if !slices.Equal(set.IDs(), o.Members) || set.Digest() != o.MembersDigest || !set.Contains(o.Leader) {
		return nil, reject(ReasonBadOutcome, "members are unsorted, their digest is wrong, or the leader is not a member")
	}
	if sum := sha256.Sum256(Request(o.Cluster, o.Members)); hex.EncodeToString(sum[:]) != r.InputSHA256 {
		return nil, reject(ReasonInputMismatch, "receipt is not for the canonical request over these members")
	}
	return o, nil
}

// verifyReceipt checks the receipt's signature and what it names: the
// trusted runtime key, the expected function and checksum, and the output.
func verifyReceipt(c *Certificate, t Trust) *RejectError {
	r := &c.Receipt
	if r.KeyID != receipt.KeyID(t.Key) {
		return reject(ReasonUnknownKey, "signed by key %.16s…, the runtime's key is %.16s…", r.KeyID, receipt.KeyID(t.Key))
	}
	if err := r.Verify(t.Key); err != nil {
		return reject(ReasonBadSignature, "%v", err)
	}
	if r.FunctionChecksum != t.Checksum {
		return reject(ReasonWrongChecksum, "certificate is from checksum %s, expected %s", r.FunctionChecksum, t.Checksum)
	}
	if r.FunctionID != t.FunctionID {
		return reject(ReasonWrongFunction, "certificate is from function %s, expected %s", r.FunctionID, t.FunctionID)
	}
	if sum := sha256.Sum256(c.Output); hex.EncodeToString(sum[:]) != r.OutputSHA256 {
		return reject(ReasonOutputMismatch, "output does not hash to the receipt's output_sha256")
	}
	return nil
}

// Request returns the canonical election request a node sends for a
// cluster and its view: {"cluster":…,"node_list":[…]} with the IDs in
// member order and no spaces. Receivers recompute it to check input_sha256.
func Request(cluster string, sortedIDs []string) []byte {
	b := make([]byte, 0, 32+len(cluster)+len(sortedIDs)*8)
	b = append(b, `{"cluster":`...)
	b = members.AppendQuoted(b, cluster)
	b = append(b, `,"node_list":[`...)
	for i, id := range sortedIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = members.AppendQuoted(b, id)
	}
	return append(b, "]}"...)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
