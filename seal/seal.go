package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

const (
	// KeySize is the size of an X25519 public or private key.
	KeySize = 32
	// EncSize is the size of the encapsulated key that starts a sealed
	// message.
	EncSize = 32

	// MaxInputSize is the largest input SealInput and OpenInput accept.
	MaxInputSize = 64 << 20
	// MaxOutputSize is the largest output SealOutput and OpenOutput accept.
	MaxOutputSize = 64 << 20

	// BootIDSize is the size of a runtime boot ID (see [ReplayCache.BootID]).
	BootIDSize = 16

	// InputOverhead is the most a sealed input adds to the input: enc, the
	// envelope header with a reply key, and the AEAD tag: 106 bytes.
	InputOverhead = EncSize + maxHeaderSize + tagSize
	// MinInputSize is the smallest sealed input: enc, the envelope header
	// without a reply key, an empty input and the AEAD tag: 74 bytes.
	MinInputSize = EncSize + headerSize + tagSize
	// OutputOverhead is what a sealed output adds to the output: enc and
	// the AEAD tag.
	OutputOverhead = EncSize + tagSize

	// MaxFunctionIDLen is the longest function ID accepted.
	MaxFunctionIDLen = 128

	tagSize = 16
	// envelopeVersion 0x02 binds the boot ID. Version 0x01 (no boot ID) is
	// refused: after a restart, the runtime could not tell a replay of one
	// from a new input.
	envelopeVersion   = 0x02
	envelopeVersionV1 = 0x01
	headerSize        = 1 + BootIDSize + 8 + 1 // version, boot_id, issued_at, reply flag
	headerSizeV1      = 1 + 8 + 1              // version, issued_at, reply flag
	maxHeaderSize     = headerSize + KeySize
	flagNoReply       = 0x00
	flagReply         = 0x01
	flagSessionReply  = 0x02 // session messages only: seal the output in the session

	inputLabel  = "vouch/input/v1"
	outputLabel = "vouch/output/v1"
)

// Sentinel errors. Errors from this package wrap at most one of them; test
// with [errors.Is].
var (
	// ErrMalformed: a sealed message has an impossible size, or its
	// envelope is not well formed.
	ErrMalformed = errors.New("seal: malformed sealed message")
	// ErrDecrypt: a sealed message does not open: it was sealed for
	// another function, checksum, input or key, or was modified.
	ErrDecrypt = errors.New("seal: cannot open sealed message: it was sealed for another function or checksum, or was tampered with")
	// ErrStale: a sealed input's issued_at is outside the accepted window.
	ErrStale = errors.New("seal: sealed input is outside the accepted time window")
	// ErrReplay: a sealed input was already accepted once.
	ErrReplay = errors.New("seal: sealed input was already used")
	// ErrStaleBoot: a sealed input names another boot ID than the
	// [ReplayCache]'s: it was sealed for an earlier run of the runtime
	// process (which has restarted since), or for another runtime. The
	// client should fetch the runtime's identity again and seal afresh.
	ErrStaleBoot = errors.New("seal: sealed input is for another boot of the runtime")
	// ErrInvalidKey: a public key is not a usable X25519 key.
	ErrInvalidKey = errors.New("seal: invalid X25519 public key")
)

// openError is the ErrDecrypt error, worded for what failed to open.
type openError struct {
	what                 string // "input" or "output"
	functionID, checksum string
	cause                error
}

func (e *openError) Error() string {
	reason := "it was sealed for another function or checksum, or to another key of the runtime (re-attest if its key changed), or was tampered with"
	if e.what == "output" {
		reason = "it was sealed for another function, checksum, input or key, or was tampered with"
	}
	return fmt.Sprintf("seal: cannot open sealed %s: %s (opened for function %q, checksum %s)",
		e.what, reason, e.functionID, e.checksum)
}

func (e *openError) Is(target error) bool { return target == ErrDecrypt }
func (e *openError) Unwrap() error        { return e.cause }

var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// PrivateKey is an X25519 key for opening sealed messages: the runtime's
// input key, or a client's reply key. It is safe for concurrent use.
// Printing it shows only its public key.
type PrivateKey struct {
	priv *ecdh.PrivateKey
	hpke hpke.PrivateKey
}

// GenerateKey returns a new key from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: cannot generate X25519 key: %w", err)
	}
	return newPrivateKey(priv)
}

// NewPrivateKey returns the key whose 32 raw bytes are raw, as returned by
// [PrivateKey.Bytes].
func NewPrivateKey(raw []byte) (*PrivateKey, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("seal: X25519 private key is %d bytes, want %d", len(raw), KeySize)
	}
	priv, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("seal: invalid X25519 private key: %w", err)
	}
	return newPrivateKey(priv)
}

func newPrivateKey(priv *ecdh.PrivateKey) (*PrivateKey, error) {
	k, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("seal: cannot use X25519 key: %w", err)
	}
	return &PrivateKey{priv: priv, hpke: k}, nil
}

// Bytes returns a copy of the 32 raw bytes of the private key. Keep them
// secret.
func (k *PrivateKey) Bytes() []byte { return k.priv.Bytes() }

// PublicKey returns the 32 raw bytes of the public key, to seal to.
func (k *PrivateKey) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// String describes the key by its public half, so that printing a key by
// mistake reveals nothing secret.
func (k *PrivateKey) String() string {
	return "seal.PrivateKey(public " + hex.EncodeToString(k.PublicKey()) + ")"
}

// GoString is like String, for %#v.
func (k *PrivateKey) GoString() string { return k.String() }

// InputOptions are the optional parts of a sealed input.
type InputOptions struct {
	// ReplyKey is the X25519 public key (32 bytes) the runtime seals the
	// output to. Use a fresh key (see [GenerateKey]) for every input. Nil
	// means no reply key: the output is not sealed.
	ReplyKey []byte
	// BootID is the runtime's boot ID (BootIDSize bytes, from its identity,
	// GET /v1/identity): the runtime opens the input only while that boot
	// lasts, so it cannot be replayed after a restart. Required.
	BootID []byte
	// IssuedAt is the time written in the envelope. The zero value means
	// time.Now(); set it only in tests.
	IssuedAt time.Time
}

// SealInput encrypts input to the runtime whose public key is recipientPub,
// for the function functionID whose checksum is checksum (64 lowercase hex
// characters), during the runtime boot opts.BootID.
func SealInput(recipientPub []byte, functionID, checksum string, input []byte, opts *InputOptions) ([]byte, error) {
	if opts == nil || len(opts.BootID) != BootIDSize {
		n := 0
		if opts != nil {
			n = len(opts.BootID)
		}
		return nil, fmt.Errorf("seal: boot ID is %d bytes, want %d: take it from the runtime's identity (GET /v1/identity)", n, BootIDSize)
	}
	pub, err := publicKey("recipient", recipientPub)
	if err != nil {
		return nil, err
	}
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	if len(input) > MaxInputSize {
		return nil, fmt.Errorf("seal: input is %d bytes, more than the limit of %d", len(input), MaxInputSize)
	}
	if opts.ReplyKey != nil {
		if _, err := publicKey("reply", opts.ReplyKey); err != nil {
			return nil, err
		}
	}
	issuedAt := opts.IssuedAt
	if issuedAt.IsZero() {
		issuedAt = time.Now()
	}

	flag := byte(flagNoReply)
	if opts.ReplyKey != nil {
		flag = flagReply
	}
	env := appendEnvelope(make([]byte, 0, maxHeaderSize+len(input)), opts.BootID, issuedAt, flag, opts.ReplyKey, input)

	sealed, err := hpke.Seal(pub, kdf, aead, inputInfo(functionID, checksum), env)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot seal to the recipient key: %w", ErrInvalidKey, err)
	}
	return sealed, nil
}

// OpenedInput is an input opened by [PrivateKey.OpenInput].
type OpenedInput struct {
	// Input is the plaintext input.
	Input []byte
	// IssuedAt is when the client sealed the input, by its clock, to the
	// millisecond.
	IssuedAt time.Time
	// BootID is the boot ID the input was sealed for: the cache's.
	BootID []byte
	// ReplyKey is the X25519 public key to seal the output to with
	// [SealOutput], or nil if the client sent none.
	ReplyKey []byte

	// Set for an input that came in a session (see [Session]).
	sessionReply bool
	session      *sessionKeys
	counter      uint64
}

// SessionReply reports whether the input came in a session message that
// asks for the output to be sealed in the same session: seal it with
// [OpenedInput.SealSessionOutput].
func (in *OpenedInput) SessionReply() bool { return in.sessionReply }

// OpenInput decrypts an input sealed for the function functionID whose
// checksum is checksum, and checks that it was sealed for cache's boot ID,
// that it is fresh at now and that it is not a replay: cache, which must not
// be nil, records it. See the package documentation for the errors.
func (k *PrivateKey) OpenInput(functionID, checksum string, sealed []byte, cache *ReplayCache, now time.Time) (*OpenedInput, error) {
	if cache == nil {
		return nil, errors.New("seal: OpenInput needs a ReplayCache (see NewReplayCache)")
	}
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	if len(sealed) < MinInputSize {
		return nil, fmt.Errorf("%w: sealed input is %d bytes, less than the minimum of %d", ErrMalformed, len(sealed), MinInputSize)
	}
	if len(sealed) > MaxInputSize+InputOverhead {
		return nil, fmt.Errorf("%w: sealed input is %d bytes, more than the limit of %d", ErrMalformed, len(sealed), MaxInputSize+InputOverhead)
	}
	env, err := hpke.Open(k.hpke, kdf, aead, inputInfo(functionID, checksum), sealed)
	if err != nil {
		return nil, &openError{what: "input", functionID: functionID, checksum: checksum, cause: err}
	}

	in, err := parseEnvelope(env, cache, false)
	if err != nil {
		return nil, err
	}
	if err := cache.admit(sealed[:EncSize], in.IssuedAt.UnixMilli(), now.UnixMilli()); err != nil {
		return nil, err
	}
	return in, nil
}

// SealOutput encrypts the output of the function functionID whose checksum
// is checksum to replyPub, the [OpenedInput.ReplyKey] of the input whose
// SHA-256 is inputSHA256 (sha256.Sum256 of [OpenedInput.Input]).
func SealOutput(replyPub []byte, functionID, checksum string, inputSHA256 [32]byte, output []byte) ([]byte, error) {
	pub, err := publicKey("reply", replyPub)
	if err != nil {
		return nil, err
	}
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	if len(output) > MaxOutputSize {
		return nil, fmt.Errorf("seal: output is %d bytes, more than the limit of %d", len(output), MaxOutputSize)
	}
	sealed, err := hpke.Seal(pub, kdf, aead, outputInfo(functionID, checksum, inputSHA256), output)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot seal to the reply key: %w", ErrInvalidKey, err)
	}
	return sealed, nil
}

// OpenOutput decrypts an output sealed with [SealOutput] to k by the
// function functionID whose checksum is checksum, in answer to the input
// whose SHA-256 is inputSHA256.
func (k *PrivateKey) OpenOutput(functionID, checksum string, inputSHA256 [32]byte, sealed []byte) ([]byte, error) {
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	if len(sealed) < OutputOverhead {
		return nil, fmt.Errorf("%w: sealed output is %d bytes, less than the minimum of %d", ErrMalformed, len(sealed), OutputOverhead)
	}
	if len(sealed) > MaxOutputSize+OutputOverhead {
		return nil, fmt.Errorf("%w: sealed output is %d bytes, more than the limit of %d", ErrMalformed, len(sealed), MaxOutputSize+OutputOverhead)
	}
	out, err := hpke.Open(k.hpke, kdf, aead, outputInfo(functionID, checksum, inputSHA256), sealed)
	if err != nil {
		return nil, &openError{what: "output", functionID: functionID, checksum: checksum, cause: err}
	}
	return out, nil
}

// publicKey parses a 32-byte X25519 public key; role names it in errors.
func publicKey(role string, raw []byte) (hpke.PublicKey, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("%w: %s key is %d bytes, want %d", ErrInvalidKey, role, len(raw), KeySize)
	}
	pub, err := kem.NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s key: %w", ErrInvalidKey, role, err)
	}
	return pub, nil
}

// inputInfo returns "vouch/input/v1" || 0x00 || lp(functionID) || lp(checksum).
func inputInfo(functionID, checksum string) []byte {
	b := make([]byte, 0, len(inputLabel)+1+4+len(functionID)+4+len(checksum))
	b = append(b, inputLabel...)
	b = append(b, 0)
	b = appendLP(b, functionID)
	return appendLP(b, checksum)
}

// outputInfo returns "vouch/output/v1" || 0x00 || lp(functionID) ||
// lp(checksum) || inputSHA256.
func outputInfo(functionID, checksum string, inputSHA256 [32]byte) []byte {
	b := make([]byte, 0, len(outputLabel)+1+4+len(functionID)+4+len(checksum)+len(inputSHA256))
	b = append(b, outputLabel...)
	b = append(b, 0)
	b = appendLP(b, functionID)
	b = appendLP(b, checksum)
	return append(b, inputSHA256[:]...)
}

// appendLP appends the 4-byte big-endian length of s, then s.
func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// checkFunction validates a function ID (1 to MaxFunctionIDLen ASCII
// letters, digits, '.', '_' and '-') and checksum (64 lowercase hex).
func checkFunction(functionID, checksum string) error {
	if functionID == "" {
		return errors.New("seal: function ID is empty")
	}
	if len(functionID) > MaxFunctionIDLen {
		return fmt.Errorf("seal: function ID is %d bytes, more than the limit of %d", len(functionID), MaxFunctionIDLen)
	}
	for i := 0; i < len(functionID); i++ {
		c := functionID[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("seal: function ID %q contains %q; only letters, digits, '.', '_' and '-' are allowed", functionID, c)
		}
	}
	ok := len(checksum) == 64
	for i := 0; ok && i < len(checksum); i++ {
		c := checksum[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
	}
	if !ok {
		if len(checksum) > 80 {
			checksum = checksum[:80] + "..."
		}
		return fmt.Errorf("seal: function checksum %q is not 64 lowercase hex characters (a SHA-256)", checksum)
	}
	return nil
}

// appendEnvelope appends an input envelope (see the package documentation)
// to b. replyKey is written only when flag is flagReply.
func appendEnvelope(b, bootID []byte, issuedAt time.Time, flag byte, replyKey, input []byte) []byte {
	b = append(b, envelopeVersion)
	b = append(b, bootID...)
	b = binary.BigEndian.AppendUint64(b, uint64(issuedAt.UnixMilli()))
	b = append(b, flag)
	if flag == flagReply {
		b = append(b, replyKey...)
	}
	return append(b, input...)
}

// parseEnvelope reads an authentic envelope and checks that it was sealed
// for cache's boot. session allows the reply flag flagSessionReply, which
// only a session message may carry.
func parseEnvelope(env []byte, cache *ReplayCache, session bool) (*OpenedInput, error) {
	// The envelope is authentic from here on; a bad one comes from a
	// broken client.
	if len(env) == 0 {
		return nil, fmt.Errorf("%w: envelope is empty", ErrMalformed)
	}
	switch env[0] {
	case envelopeVersion:
	case envelopeVersionV1:
		return nil, fmt.Errorf("%w: envelope version 1 does not bind the runtime's boot ID, so it could be replayed after a restart, and is no longer accepted; seal with a current vouch client (envelope version %d)",
			ErrMalformed, envelopeVersion)
	default:
		return nil, fmt.Errorf("%w: envelope version is %d, want %d", ErrMalformed, env[0], envelopeVersion)
	}
	if len(env) < headerSize {
		return nil, fmt.Errorf("%w: envelope is %d bytes, less than its %d-byte header", ErrMalformed, len(env), headerSize)
	}
	const (
		bootAt   = 1
		issuedAt = bootAt + BootIDSize
		flagAt   = issuedAt + 8
	)
	bootID := env[bootAt:issuedAt]
	at := int64(binary.BigEndian.Uint64(env[issuedAt:flagAt]))
	in := &OpenedInput{IssuedAt: time.UnixMilli(at), BootID: bytes.Clone(bootID)}
	switch env[flagAt] {
	case flagNoReply:
		in.Input = env[headerSize:]
	case flagReply:
		if len(env) < maxHeaderSize {
			return nil, fmt.Errorf("%w: envelope announces a reply key but is only %d bytes", ErrMalformed, len(env))
		}
		in.ReplyKey = bytes.Clone(env[headerSize:maxHeaderSize])
		in.Input = env[maxHeaderSize:]
	case flagSessionReply:
		if !session {
			return nil, fmt.Errorf("%w: envelope reply flag is 0x02 (reply in the session), which only a session message may carry", ErrMalformed)
		}
		in.sessionReply = true
		in.Input = env[headerSize:]
	default:
		return nil, fmt.Errorf("%w: envelope reply flag is 0x%02x, want 0x00, 0x01 or (in a session) 0x02", ErrMalformed, env[flagAt])
	}
	if want := cache.boot(); !bytes.Equal(bootID, want) {
		return nil, fmt.Errorf("%w: it was sealed for boot %x, but the runtime is now in boot %x (it restarted); fetch its identity again and seal afresh",
			ErrStaleBoot, bootID, want)
	}
	return in, nil
}
