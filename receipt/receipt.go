// Package receipt defines what a vouch runtime signs: run receipts and
// function statements.
//
// A receipt proves that one run of one function, identified by its checksum,
// turned one input into one output:
//
//	{function_id, function_checksum, input_sha256, output_sha256, seq, time, key_id}
//
// A statement says which checksum a function ID has:
//
//	{function_id, function_checksum, key_id}
//
// Both are signed with Ed25519 over canonical bytes (package canon,
// docs/FORMATS.md), never over JSON, so that anyone can check them offline
// with the runtime's public key. The JSON forms below are only transport.
package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/internal/canon"
)

// Domain tags of the signed messages.
const (
	ReceiptTag   = "vouch/receipt/v1"
	StatementTag = "vouch/statement/v1"
)

// ErrInvalid is wrapped by every error about a malformed receipt or
// statement; ErrSignature by every failed signature check.
var (
	ErrInvalid   = errors.New("invalid receipt")
	ErrSignature = errors.New("signature does not verify")
)

// Receipt is a signed record of one run.
type Receipt struct {
	FunctionID       string    `json:"function_id"`
	FunctionChecksum string    `json:"function_checksum"`
	InputSHA256      string    `json:"input_sha256"`
	OutputSHA256     string    `json:"output_sha256"`
	Seq              uint64    `json:"seq"`
	Time             time.Time `json:"time"`
	KeyID            string    `json:"key_id"`
	Signature        []byte    `json:"signature"`
}

// Statement is a signed claim that a function ID has a checksum.
type Statement struct {
	FunctionID       string `json:"function_id"`
	FunctionChecksum string `json:"function_checksum"`
	KeyID            string `json:"key_id"`
	Signature        []byte `json:"signature"`
}

// KeyID returns the identifier of a public key: the lowercase hex SHA-256
// of its 32 raw bytes, also called its fingerprint.
func KeyID(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		sum := sha256.Sum256(pub)
		return hex.EncodeToString(sum[:])
	}
	if e := lastKeyID.Load(); e != nil && e.pub == [ed25519.PublicKeySize]byte(pub) {
		return e.id
	}
	sum := sha256.Sum256(pub)
	e := &keyIDEntry{pub: [ed25519.PublicKeySize]byte(pub), id: hex.EncodeToString(sum[:])}
	lastKeyID.Store(e)
	return e.id
}

// lastKeyID is the last key KeyID saw, and its ID: a runtime signs, and a
// client verifies, with one key again and again.
var lastKeyID atomic.Pointer[keyIDEntry]

type keyIDEntry struct {
	pub [ed25519.PublicKeySize]byte
	id  string
}

// publicKey is key.Public() without the copy.
func publicKey(key ed25519.PrivateKey) ed25519.PublicKey {
	if len(key) == ed25519.PrivateKeySize {
		return ed25519.PublicKey(key[ed25519.SeedSize:])
	}
	return key.Public().(ed25519.PublicKey)
}

// SHA256Hex returns the lowercase hex SHA-256 of p.
func SHA256Hex(p []byte) string {
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:])
}

// Message returns the canonical bytes a receipt's signature covers:
//
//	String("vouch/receipt/v1") String(function_id) Bytes(function_checksum)
//	Bytes(input_sha256) Bytes(output_sha256) Uint64(seq)
//	Int64(time as Unix nanoseconds) String(key_id)
//
// where the three digests are their 32 raw bytes.
func (r *Receipt) Message() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var checksum, in, out [32]byte
	decodeDigest(&checksum, r.FunctionChecksum)
	decodeDigest(&in, r.InputSHA256)
	decodeDigest(&out, r.OutputSHA256)
	return canon.New(ReceiptTag).
		String(r.FunctionID).
		Bytes(checksum[:]).
		Bytes(in[:]).
		Bytes(out[:]).
		Uint64(r.Seq).
		Int64(r.Time.UnixNano()).
		String(r.KeyID).
		Message(), nil
}

func (r *Receipt) check() error {
	if err := checkID(r.FunctionID); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"function_checksum", r.FunctionChecksum},
		{"input_sha256", r.InputSHA256},
		{"output_sha256", r.OutputSHA256},
		{"key_id", r.KeyID},
	} {
		if !isDigest(f.v) {
			return fmt.Errorf("%w: %s %q is not 64 lowercase hex digits", ErrInvalid, f.name, truncate(f.v))
		}
	}
	if r.Time.IsZero() || r.Time.Year() < 2000 || r.Time.Year() > 2200 {
		return fmt.Errorf("%w: time %s is out of range", ErrInvalid, r.Time)
	}
	if r.Seq == 0 {
		return fmt.Errorf("%w: seq is 0 (sequence numbers start at 1)", ErrInvalid)
	}
	return nil
}

// Sign fills r.KeyID and r.Signature.
func (r *Receipt) Sign(key ed25519.PrivateKey) error {
	r.KeyID = KeyID(publicKey(key))
	r.Time = r.Time.UTC()
	msg, err := r.Message()
	if err != nil {
		return err
	}
	r.Signature = ed25519.Sign(key, msg)
	return nil
}

// Verify checks that r is well formed and signed by pub.
func (r *Receipt) Verify(pub ed25519.PublicKey) error {
	msg, err := r.Message()
	if err != nil {
		return err
	}
	return verify(pub, r.KeyID, msg, r.Signature)
}

// Message returns the canonical bytes a statement's signature covers:
//
//	String("vouch/statement/v1") String(function_id)
//	Bytes(function_checksum) String(key_id)
func (s *Statement) Message() ([]byte, error) {
	if err := checkID(s.FunctionID); err != nil {
		return nil, err
	}
	if !isDigest(s.FunctionChecksum) {
		return nil, fmt.Errorf("%w: function_checksum %q is not 64 lowercase hex digits", ErrInvalid, truncate(s.FunctionChecksum))
	}
	if !isDigest(s.KeyID) {
		return nil, fmt.Errorf("%w: key_id %q is not 64 lowercase hex digits", ErrInvalid, truncate(s.KeyID))
	}
	var checksum [32]byte
	decodeDigest(&checksum, s.FunctionChecksum)
	return canon.New(StatementTag).
		String(s.FunctionID).
		Bytes(checksum[:]).
		String(s.KeyID).
		Message(), nil
}

// Sign fills s.KeyID and s.Signature.
func (s *Statement) Sign(key ed25519.PrivateKey) error {
	s.KeyID = KeyID(publicKey(key))
	msg, err := s.Message()
	if err != nil {
		return err
	}
	s.Signature = ed25519.Sign(key, msg)
	return nil
}

// Verify checks that s is well formed and signed by pub.
func (s *Statement) Verify(pub ed25519.PublicKey) error {
	msg, err := s.Message()
	if err != nil {
		return err
	}
	return verify(pub, s.KeyID, msg, s.Signature)
}

func verify(pub ed25519.PublicKey, keyID string, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrSignature, len(pub), ed25519.PublicKeySize)
	}
	if keyID != KeyID(pub) {
		return fmt.Errorf("%w: signed by key %s, not by %s", ErrSignature, short(keyID), short(KeyID(pub)))
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w under key %s", ErrSignature, short(keyID))
	}
	return nil
}

// checkID accepts function IDs of 1 to 128 characters from [A-Za-z0-9._-].
func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: function_id must be 1-128 characters", ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: function_id %q has a character outside A-Z a-z 0-9 . _ -", ErrInvalid, truncate(id))
		}
	}
	return nil
}

// IsDigest reports whether s is 64 lowercase hex digits, the form of every
// checksum and digest in vouch.
func IsDigest(s string) bool { return isDigest(s) }

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// decodeDigest writes the 32 bytes of s, which isDigest accepted, to d.
func decodeDigest(d *[32]byte, s string) {
	if len(s) != 64 {
		panic("receipt: unchecked digest")
	}
	for i := range d {
		d[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
}

// unhex is the value of a lowercase hex digit.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
